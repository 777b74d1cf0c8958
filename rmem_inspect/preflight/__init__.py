# SPDX-License-Identifier: GPL-2.0-or-later
"""
preflight
---------

Predict, from a devicetree blob alone, what a kernel generation will do with
its /reserved-memory node: which regions it tracks, where it places the dynamic
ones, which it drops and why. No drgn, no kernel: the boot-time code of
drivers/of/of_reserved_mem.c (and, for the static-array kernels,
drivers/of/fdt.c) is replayed step by step over a small memblock model built
from the DT's memory nodes and /memreserve/ entries.

The result is a synthetic :class:`~rmem_inspect.model.Snapshot` (the
``reserved_mem`` array, memblock, CMA areas and the kernel log lines the kernel
would have printed), on which :func:`rmem_inspect.checks.run` produces the same
findings, with the same codes and causes, as on a dump of that kernel::

    >>> from rmem_inspect.preflight import preflight
    >>> result = preflight(open("board.dtb", "rb").read(), "static-array")
    >>> for f in result.report.findings: print(f.code, f.region, f.message)

Three layouts (SPEC §1):

``static-array`` (6.1 and older)
    one DT-order pass reserves every static range and saves static and
    dynamic nodes into a fixed 64-entry array; the array is then sorted by
    base (the kernel's heapsort, which is not stable) and the dynamic entries
    are allocated in that order. A dynamic entry whose allocation fails stays
    in the array with size 0.
``dynamic-array`` (6.12)
    the early pass reserves every static range and collects up to 64 dynamic
    nodes, allocates and saves them; after paging the array is sized from the
    count, and the static nodes are saved (first ``reg`` entry only).
``node-ops`` (7.x)
    as 6.12, but only a node's first ``reg`` entry is reserved, a ``reg`` or
    ``alloc-ranges`` of a bad length counts as absent, and CMA nodes are
    validated through ``reserved_mem_ops.node_validate``.

What a DTB cannot say: where the boot loader put the kernel, the initramfs and
the DTB itself (all memblock-reserved before the scan), the ``cma=`` command
line, and which reserved-memory drivers the kernel was built with. Pass the
first as ``extra_reserved``; the generic ``shared-dma-pool`` and
``restricted-dma-pool`` drivers are assumed built in.

The package: :mod:`~rmem_inspect.preflight.memblock` (the memblock model),
:mod:`~rmem_inspect.preflight.sort` (lib/sort.c) and the replay here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rmem_inspect import __version__, checks
from rmem_inspect.errors import InputError
from rmem_inspect.formats.devicetree import RawNode, decode_tree
from rmem_inspect.formats.fdt import FdtError, parse_fdt
from rmem_inspect.kernel import messages
from rmem_inspect.kernel.arch import ARCHES
from rmem_inspect.kernel.constants import MAX_RESERVED_REGIONS
from rmem_inspect.kernel.layouts import (  # LAYOUTS: the layouts preflight replays
    KERNEL_LAYOUT_HELP,
    LAYOUT_ALIASES,
    LAYOUTS,
    Layout,
    kernel_layout,
)
from rmem_inspect.kernel.messages import FDT_PREFIX, RMEM_PREFIX
from rmem_inspect.model import (
    CmaArea,
    DtInfo,
    KernelInfo,
    LogLine,
    ReservedMemState,
    RmemEntry,
    Snapshot,
)
from rmem_inspect.preflight.memblock import ANYWHERE, Memblock, memblock_state
from rmem_inspect.preflight.sort import kernel_sort

__all__ = [
    "LAYOUTS",
    "LAYOUT_ALIASES",
    "Placement",
    "PreflightResult",
    "kernel_sort",
    "mem_limit",
    "memparse",
    "preflight",
    "resolve_layout",
]

#: The architecture preflight replays (kernel/arch.py holds its alignments).
_ARCH = ARCHES["arm64"]
assert _ARCH.smp_cache_bytes and _ARCH.page_size and _ARCH.cma_min_alignment_bytes
#: SMP_CACHE_BYTES on arm64 (L1_CACHE_BYTES): the default alignment.
SMP_CACHE_BYTES: int = _ARCH.smp_cache_bytes
#: memblock_find_in_range_node() never returns the first page.
PAGE_SIZE: int = _ARCH.page_size
#: CMA_MIN_ALIGNMENT_BYTES on arm64 with 4 KiB pages.
CMA_MIN_ALIGNMENT_BYTES: int = _ARCH.cma_min_alignment_bytes


def resolve_layout(name: str) -> Layout:
    """A layout name, series alias or X.Y[.Z] -> one of :data:`LAYOUTS`; InputError otherwise."""
    layout = kernel_layout(name)
    if layout is None:
        raise InputError(f"unknown kernel {name!r}: give {KERNEL_LAYOUT_HELP}")
    return layout


@dataclass
class Placement:
    """What the replayed kernel did with one okay /reserved-memory child."""

    name: str
    kind: str
    #: tracked, unallocated (tracked with size 0), dropped.
    outcome: str
    base: int | None = None
    size: int | None = None
    reason: str = ""


@dataclass
class PreflightResult:
    layout: str
    snapshot: Snapshot
    report: checks.Report
    placements: list[Placement] = field(default_factory=list)

    @property
    def log(self) -> list[str]:
        return [line.text for line in self.snapshot.log or []]


# --------------------------------------------------------------------------
# The node as the flat-DT accessors of the kernel read it


@dataclass
class _Node:
    name: str
    props: dict[str, bytes]
    fdt_node: int

    def has(self, prop: str) -> bool:
        return prop in self.props

    @property
    def available(self) -> bool:
        status = self.props.get("status")
        if status is None:
            return True
        text = status.split(b"\0", 1)[0].decode(errors="replace")
        return text in ("okay", "ok")

    def compatible(self, compat: str) -> bool:
        value = self.props.get("compatible", b"")
        return compat in [c.decode(errors="replace") for c in value.split(b"\0")]

    @property
    def nomap(self) -> bool:
        return "no-map" in self.props

    @property
    def reusable(self) -> bool:
        return "reusable" in self.props


def _cells(data: bytes, n: int, offset: int) -> int:
    """dt_mem_next_cell(): ``n`` cells at ``offset`` bytes, truncated to 64 bits."""
    v = int.from_bytes(data[offset : offset + 4 * n], "big") if n else 0
    return v & ANYWHERE


def _pairs(data: bytes, ac: int, sc: int) -> list[tuple[int, int]]:
    t = (ac + sc) * 4
    return [(_cells(data, ac, i), _cells(data, sc, i + ac * 4)) for i in range(0, len(data), t)]


# --------------------------------------------------------------------------
# The replay


@dataclass
class _Entry:
    node: _Node
    name: str
    base: int
    size: int
    ops: str | None = None


class _Kernel:
    def __init__(
        self,
        layout: Layout,
        root: RawNode,
        mem_reserve: list[tuple[int, int]],
        extra_reserved: list[tuple[int, int]],
        cma_alignment: int,
        memory: list[tuple[int, int]],
    ) -> None:
        self.layout = layout
        self.ac = _root_cells(root, "#address-cells", 1)
        self.sc = _root_cells(root, "#size-cells", 1)
        self.t_len = (self.ac + self.sc) * 4
        self.cma_alignment = cma_alignment
        self.memblock = Memblock(memory)
        for b, s in extra_reserved:
            self.memblock.reserve(b, s)
        self.mem_reserve = mem_reserve
        #: ``cma=`` on the command line (kernel/dma/contiguous.c size_cmdline != -1).
        self.cma_cmdline = False
        self.log: list[LogLine] = []
        self.entries: list[_Entry] = []
        self.capacity = MAX_RESERVED_REGIONS
        self.cma: list[CmaArea] = []
        self.placements: dict[str, Placement] = {}
        self.rmem = _find_rmem(root)
        self.children: list[_Node] = []
        if self.rmem is not None:
            self.children = [_Node(c.name, c.props, i) for i, c in enumerate(self.rmem.children)]

    def cma_gives_way(self, node: _Node) -> bool:
        """7.x __rmem_cma_verify_node(): a reusable linux,cma-default node is skipped,
        with -EBUSY, when cma= is on the command line (it logs why, every time)."""
        if not (
            self.cma_cmdline
            and node.compatible("shared-dma-pool")
            and node.reusable
            and not node.nomap
            and node.has("linux,cma-default")
        ):
            return False
        self.pr('Skipping dt linux,cma-default node in favor for "cma=" kernel param.', "")
        return True

    # -- log --------------------------------------------------------------
    def pr(self, text: str, prefix: str = RMEM_PREFIX) -> None:
        self.log.append(LogLine(text=prefix + text))

    def place(self, node: _Node, outcome: str, reason: str, base: int = 0, size: int = 0) -> None:
        kind = "static" if "reg" in node.props else "dynamic"
        self.placements[node.name] = Placement(
            node.name,
            kind,
            outcome,
            base if outcome == "tracked" else None,
            size if outcome == "tracked" else None,
            reason,
        )

    # -- shared pieces ----------------------------------------------------
    def check_root(self) -> bool:
        assert self.rmem is not None
        for prop, want in (("#size-cells", self.sc), ("#address-cells", self.ac)):
            v = self.rmem.props.get(prop)
            if v is None or len(v) < 4 or int.from_bytes(v[:4], "big") != want:
                return False
        return "ranges" in self.rmem.props

    def reserve_memory(self, base: int, size: int, nomap: bool) -> bool:
        """early_init_dt_reserve_memory(); False for -EBUSY."""
        mb = self.memblock
        if nomap:
            if mb.overlaps_memory(base, size) and mb.is_region_reserved(base, size):
                return False
            mb.mark_nomap(base, size)
            return True
        mb.reserve(base, size)
        return True

    def reserve_one(self, node: _Node, base: int, size: int) -> None:
        if size and self.reserve_memory(base, size, node.nomap):
            return
        prefix = RMEM_PREFIX if self.layout is not Layout.STATIC_ARRAY else FDT_PREFIX
        self.pr(
            f"Reserved memory: failed to reserve memory for node '{node.name}': base "
            f"{base:#018x}, size {size >> 20} MiB",
            prefix,
        )

    def alloc_arch(self, size: int, align: int, start: int, end: int, nomap: bool) -> int:
        """early_init_dt_alloc_reserved_memory_arch(): the base, or 0."""
        end = ANYWHERE if not end else end
        align = align or SMP_CACHE_BYTES
        base = self.memblock.phys_alloc_range(size, align, start, end)
        if base and nomap:
            self.memblock.mark_nomap(base, size)
        return base

    def alloc_in_range(self, size: int, align: int, start: int, end: int, nomap: bool) -> int:
        """__reserved_mem_alloc_in_range() (6.12+): direction from saved neighbours."""
        bottom_up = top_down = False
        for e in self.entries:
            if e.size == 0:
                continue
            if e.base <= start <= e.base + e.size:
                bottom_up = True
            if e.base <= end <= e.base + e.size:
                top_down = True
        prev = self.memblock.bottom_up
        if bottom_up != top_down:
            self.memblock.bottom_up = bottom_up
        base = self.alloc_arch(size, align, start, end, nomap)
        self.memblock.bottom_up = prev
        return base

    def alloc_size(self, node: _Node) -> tuple[int, int, str]:
        """__reserved_mem_alloc_size(): (base, size, why) with base 0 on failure."""
        name = node.name
        prop = node.props.get("size")
        if prop is None:
            return 0, 0, "no size property"
        if len(prop) != self.sc * 4:
            self.pr(f"invalid size property in '{name}' node.")
            return 0, 0, f"invalid size property (length {len(prop)})"
        size = _cells(prop, self.sc, 0)
        align = 0
        prop = node.props.get("alignment")
        if prop is not None:
            if len(prop) != self.ac * 4:
                self.pr(f"invalid alignment property in '{name}' node.")
                return 0, 0, f"invalid alignment property (length {len(prop)})"
            align = _cells(prop, self.ac, 0)
        nomap = node.nomap
        if self.layout is Layout.NODE_OPS and self.cma_gives_way(node):
            return 0, 0, "skipped in favour of cma= on the command line"
        if node.compatible("shared-dma-pool") and node.reusable and not nomap:
            align = max(align, self.cma_alignment)
        ranges = node.props.get("alloc-ranges")
        base = 0
        window = "all memory"
        if ranges is not None and len(ranges) % self.t_len:
            if self.layout is not Layout.NODE_OPS:
                self.pr(f"invalid alloc-ranges property in '{name}', skipping node.")
                return 0, 0, f"invalid alloc-ranges property (length {len(ranges)})"
            ranges = None  # of_flat_dt_get_addr_size_prop() returns NULL
        if ranges is not None:
            pairs = _pairs(ranges, self.ac, self.sc)
            window = ", ".join(f"{b:#x}..{b + s - 1:#x}" for b, s in pairs) or "no range"
            for start, length in pairs:
                end = (start + length) & ANYWHERE
                if self.layout is Layout.STATIC_ARRAY:
                    base = self.alloc_arch(size, align, start, end, nomap)
                else:
                    base = self.alloc_in_range(size, align, start, end, nomap)
                if base:
                    break
        else:
            base = self.alloc_arch(size, align, 0, 0, nomap)
        if base == 0:
            self.pr(messages.alloc_failed(name, size))
            return (
                0,
                0,
                (
                    f"allocation of {size:#x} bytes (alignment {align or SMP_CACHE_BYTES:#x}) "
                    f"failed in {window}"
                ),
            )
        return base, size, ""

    def init_node(self, e: _Entry) -> None:
        """__reserved_mem_init_node(): the generic drivers' setup and its failure path."""
        node = e.node
        ops: str | None = None
        failed = False
        if node.compatible("shared-dma-pool"):
            if (
                self.layout is not Layout.NODE_OPS
                and self.cma_cmdline
                and node.reusable
                and node.has("linux,cma-default")
            ):
                # rmem_cma_setup() (6.1, 6.12) tests the command line first
                self.pr(
                    f"Reserved memory: bypass {e.name} node, using cmdline CMA params instead", ""
                )
                failed = True
            elif node.reusable and not node.nomap:
                if (e.base | e.size) % self.cma_alignment:
                    self.pr("Reserved memory: incorrect alignment of CMA region", "")
                    failed = True
                else:
                    ops = "rmem_cma_ops"
                    self.cma.append(
                        CmaArea(
                            name=e.name,
                            base=e.base,
                            size=e.size,
                            is_default=node.has("linux,cma-default"),
                        )
                    )
            elif not node.reusable:
                ops = "rmem_dma_ops"
            else:
                failed = True
        elif node.compatible("restricted-dma-pool"):
            if node.reusable or node.nomap:
                failed = True
            else:
                ops = "rmem_swiotlb_ops"
        if failed:
            self.pr(messages.match_fail(e.name))
            if node.nomap:
                self.memblock.clear_nomap(e.base, e.size)
            else:
                self.memblock.free(e.base, e.size)
            return
        e.ops = ops
        if ops == "rmem_cma_ops":
            self.pr(
                f"Reserved memory: created CMA memory pool at {e.base:#018x}, size "
                f"{e.size >> 20} MiB",
                "",
            )
        elif ops == "rmem_dma_ops":
            size = (
                f"{e.size >> 10} KiB" if self.layout is Layout.NODE_OPS else f"{e.size >> 20} MiB"
            )
            self.pr(f"Reserved memory: created DMA memory pool at {e.base:#018x}, size {size}", "")
        if ops is not None:
            compat = "restricted-dma-pool" if ops == "rmem_swiotlb_ops" else "shared-dma-pool"
            self.pr(f"initialized node {e.name}, compatible id {compat}")
        if self.layout is not Layout.STATIC_ARRAY:
            self.pr(messages.region_line(e.base, e.size, node.nomap, node.reusable, e.name))

    def save(self, node: _Node, base: int, size: int) -> _Entry | None:
        if len(self.entries) == self.capacity:
            if self.layout is Layout.NODE_OPS:
                self.pr(f"not enough space for all defined regions, skip '{node.name}'")
            else:
                self.pr("not enough space for all defined regions.")
            self.place(node, "dropped", f"reserved_mem array full ({self.capacity} entries)")
            return None
        e = _Entry(node, node.name, base, size)
        self.entries.append(e)
        return e

    def check_overlap(self, cmp_: Callable[[_Entry, _Entry], int]) -> None:
        if len(self.entries) < 2:
            return
        kernel_sort(self.entries, cmp_)
        for this, nxt in zip(self.entries, self.entries[1:], strict=False):
            if this.base + this.size > nxt.base:
                self.pr("OVERLAP DETECTED!")
                self.log.append(
                    LogLine(
                        text=f"{this.name} ({this.base:#018x}--{this.base + this.size:#018x}) "
                        f"overlaps with {nxt.name} ({nxt.base:#018x}--{nxt.base + nxt.size:#018x})"
                    )
                )

    # -- 6.1 --------------------------------------------------------------
    def run_static(self) -> None:
        for b, s in self.mem_reserve:
            self.memblock.reserve(b, s)
        if self.rmem is None:
            return
        if not self.check_root():
            self.pr("Reserved memory: unsupported node format, ignoring", FDT_PREFIX)
            for n in self.children:
                if n.available:
                    self.place(n, "dropped", "/reserved-memory has unsupported cells/ranges")
            return
        for node in self.children:
            if not node.available:
                continue
            reg = node.props.get("reg")
            if reg is not None:
                if len(reg) and len(reg) % self.t_len:
                    self.pr(
                        f"Reserved memory: invalid reg property in '{node.name}', skipping node.",
                        FDT_PREFIX,
                    )
                    self.place(node, "dropped", f"invalid reg property (length {len(reg)})")
                    continue
                pairs = _pairs(reg, self.ac, self.sc)
                for i, (b, s) in enumerate(pairs):
                    self.reserve_one(node, b, s)
                    if i == 0:
                        e = self.save(node, b, s)
                        if e is not None:
                            self.place(node, "tracked", "", b, s)
                if not pairs:
                    self.place(node, "dropped", "reg is empty")
            elif node.has("size"):
                if self.save(node, 0, 0) is not None:
                    self.place(node, "unallocated", "not allocated yet")

        def cmp(a: _Entry, b: _Entry) -> int:
            return (a.base > b.base) - (a.base < b.base) or (a.size > b.size) - (a.size < b.size)

        self.check_overlap(cmp)
        for e in self.entries:
            if e.size == 0:
                base, size, why = self.alloc_size(e.node)
                if not base:
                    self.place(e.node, "unallocated", why or "size 0")
                    continue
                e.base, e.size = base, size
                self.place(e.node, "tracked", "", base, size)
            self.init_node(e)

    # -- 6.12 / 7.x -------------------------------------------------------
    def reg_entries(self, node: _Node) -> list[tuple[int, int]] | None:
        """The node's reg as this layout's early scan sees it; None: absent (-ENOENT)."""
        reg = node.props.get("reg")
        if reg is None:
            return None
        if self.layout is Layout.NODE_OPS and (not reg or len(reg) % self.t_len):
            return None
        return _pairs(reg, self.ac, self.sc)

    def run_dynamic(self) -> None:
        node_ops = self.layout is Layout.NODE_OPS
        # fdt_reserve_elfcorehdr() comes first (no elfcorehdr here); /memreserve/ after the scan.
        if self.rmem is None:
            self._memreserve()
            # fdt_scan_reserved_mem() sets total_reserved_mem_cnt to 0 here from 7.x on;
            # 6.12 returns -ENODEV and leaves it at MAX_RESERVED_REGIONS
            self.capacity = 0 if node_ops else MAX_RESERVED_REGIONS
            self.pr("Reserved memory: No reserved-memory node in the DT")
            return
        if not self.check_root():
            self.pr("Reserved memory: unsupported node format, ignoring")
            for n in self.children:
                if n.available:
                    self.place(n, "dropped", "/reserved-memory has unsupported cells/ranges")
            self._memreserve()
            self.capacity = 0 if node_ops else MAX_RESERVED_REGIONS
            return
        count = 0
        dynamic: list[_Node] = []
        for node in self.children:
            if not node.available:
                continue
            reg = node.props.get("reg")
            pairs = self.reg_entries(node)
            if pairs is None:
                err = "ENOENT"
            elif node_ops and self.cma_gives_way(node):
                self.place(node, "dropped", "skipped in favour of cma= on the command line")
                err = "EBUSY"
            elif not node_ops and len(reg or b"") % self.t_len:
                self.pr(f"Reserved memory: invalid reg property in '{node.name}', skipping node.")
                self.place(node, "dropped", f"invalid reg property (length {len(reg or b'')})")
                err = "EINVAL"
            else:
                if node_ops and len(pairs) > 1:
                    self.pr(
                        f"Reserved memory: node '{node.name}' has {len(pairs)} <base size> "
                        "entries, only the first is used"
                    )
                for b, s in pairs[:1] if node_ops else pairs:
                    self.reserve_one(node, b, s)
                err = ""
                count += 1
            if err != "ENOENT" or not node.has("size"):
                if err == "ENOENT":
                    why = (
                        f"invalid reg property (length {len(reg)}) and no size"
                        if reg is not None
                        else "neither reg nor size"
                    )
                    self.place(node, "dropped", why)
                continue
            if len(dynamic) == MAX_RESERVED_REGIONS:
                self.pr(f"too many defined dynamic regions, skip '{node.name}'")
                self.place(
                    node,
                    "dropped",
                    f"more than {MAX_RESERVED_REGIONS} dynamic regions: skipped by the early "
                    "scan, never allocated",
                )
                continue
            dynamic.append(node)
        for node in dynamic:
            base, size, why = self.alloc_size(node)
            if not base:
                self.place(node, "dropped", why)
                continue
            e = self.save(node, base, size)
            if e is not None:
                self.init_node(e)
                self.place(node, "tracked", "", base, size)
            count += 1
        self.capacity = count
        self._memreserve()
        # After paging: fdt_scan_reserved_mem_reg_nodes() / fdt_scan_reserved_mem_late().
        for node in self.children:
            reg = node.props.get("reg")
            if reg is None or not node.available:
                continue
            pairs = self.reg_entries(node)
            if pairs is None or (not node_ops and len(reg) % self.t_len):
                continue
            if node_ops and self.cma_gives_way(node):
                continue
            if not pairs:
                # 6.12 reads past an empty reg: what it saves is undefined.
                self.place(node, "dropped", "reg is empty")
                continue
            if not node_ops and len(pairs) > 1:
                self.pr(
                    f"fdt_scan_reserved_mem_reg_nodes() ignores {len(pairs) - 1} regions in "
                    f"node '{node.name}'"
                )
            b, s = pairs[0]
            if not s:
                self.place(node, "dropped", "reg size is 0")
                continue
            e = self.save(node, b, s)
            if e is not None:
                self.init_node(e)
                self.place(node, "tracked", "", b, s)

        def cmp(a: _Entry, b: _Entry) -> int:
            return (
                (a.base > b.base) - (a.base < b.base)
                or (a.size > b.size) - (a.size < b.size)
                or (
                    0
                    if node_ops
                    else (a.node.fdt_node > b.node.fdt_node) - (a.node.fdt_node < b.node.fdt_node)
                )
            )

        self.check_overlap(cmp)

    def _memreserve(self) -> None:
        for b, s in self.mem_reserve:
            self.memblock.reserve(b, s)


#: memparse() suffixes (lib/cmdline.c).
_MEMPARSE = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}


def memparse(text: str) -> int:
    """lib/cmdline.c memparse(): a number (0x.. or decimal) with an optional K/M/G/T/P/E."""
    m = re.match(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgGtTpPeE]?)", text)
    if m is None:
        raise InputError(f"cannot parse memory size {text!r} (like the kernel's memparse)")
    digits, suffix = m.groups()
    value = (
        int(digits, 0)
        if not digits.startswith("0") or digits.lower().startswith("0x")
        else int(digits, 8)
    )
    return value << _MEMPARSE.get(suffix.lower(), 0)


def mem_limit(cmdline: str) -> int | None:
    """``memory_limit`` from the command line: arm64's early_mem() (arch/arm64/mm/init.c)
    parses every ``mem=``, the last one wins, rounded down to a page."""
    found = re.findall(r"(?:^|\s)mem=(\S+)", cmdline)
    return (memparse(found[-1]) & ~(PAGE_SIZE - 1)) if found else None


def _usable_memory(root: RawNode) -> list[tuple[int, int]]:
    """/chosen/linux,usable-memory-range in root cells, at most MAX_USABLE_RANGES (2)
    entries (drivers/of/fdt.c early_init_dt_check_for_usable_mem_range())."""
    chosen = next((c for c in root.children if c.name == "chosen"), None)
    prop = chosen.props.get("linux,usable-memory-range") if chosen is not None else None
    if not prop:
        return []
    ac = _root_cells(root, "#address-cells", 1)
    sc = _root_cells(root, "#size-cells", 1)
    return [(b, s) for b, s in _pairs(prop, ac, sc) if s][:2]


def _bootargs(root: RawNode) -> str:
    chosen = next((c for c in root.children if c.name == "chosen"), None)
    raw = chosen.props.get("bootargs", b"") if chosen is not None else b""
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _root_cells(root: RawNode, prop: str, default: int) -> int:
    v = root.props.get(prop)
    return int.from_bytes(v[:4], "big") if v is not None and len(v) >= 4 else default


def _find_rmem(root: RawNode) -> RawNode | None:
    for c in root.children:
        if c.name == "reserved-memory" or c.name.startswith("reserved-memory@"):
            return c
    return None


def preflight(
    dtb: bytes,
    layout: str,
    *,
    extra_reserved: Iterable[tuple[int, int]] = (),
    memory: Iterable[tuple[int, int]] | None = None,
    cmdline: str | None = None,
    cma_alignment: int = CMA_MIN_ALIGNMENT_BYTES,
    source: str = "",
) -> PreflightResult:
    """
    Replay the boot-time reserved-memory code of ``layout`` over ``dtb``.

    :param layout: One of :data:`LAYOUTS`, a series alias (``6.1``, ``6.12``, ``7.x``) or
        a kernel version number (``7.3``, ``6.12.4``, ``5.15``; see :func:`kernel_layout`).
    :param extra_reserved: Ranges memblock-reserved before the scan (kernel image,
        initramfs, the DTB itself), which a DTB does not describe.
    :param memory: RAM banks (base, size), instead of the DT's memory nodes (boot
        loaders often fill those in at boot). /chosen/linux,usable-memory-range is
        applied on top, as the kernel does.
    :param cmdline: The kernel command line (default: /chosen/bootargs); its ``mem=``
        cuts memory before the scan, as arm64_memblock_init() does.
    :param cma_alignment: CMA_MIN_ALIGNMENT_BYTES of the target kernel.
    :raises InputError: the blob is not a valid DTB, has no memory and none was
        given, or the layout is unknown.
    """
    layout = resolve_layout(layout)
    try:
        blob = parse_fdt(dtb)
    except FdtError as e:
        raise InputError(f"not a valid devicetree blob: {e}") from None
    dt: DtInfo = decode_tree(blob.root, "fdt")
    dt.mem_reserve = list(blob.mem_reserve)
    banks = list(memory) if memory is not None else [r for r in dt.memory if r[1]]
    if not banks:
        raise InputError(
            "the DTB describes no memory (boot loaders usually fill the memory node in at "
            "boot): give the RAM banks with --memory BASE:SIZE"
        )
    k = _Kernel(layout, blob.root, blob.mem_reserve, list(extra_reserved), cma_alignment, banks)
    # setup_machine_fdt() -> early_init_dt_scan(): the usable ranges cap memory first;
    # then arm64_memblock_init() applies mem= and ends with the reserved-memory scan.
    usable = _usable_memory(blob.root)
    if usable:
        k.memblock.cap(*usable[0])
        for b, s in usable[1:]:
            k.memblock.add(b, s)
    cmdline = _bootargs(blob.root) if cmdline is None else cmdline
    k.cma_cmdline = re.search(r"(?:^|\s)cma=", cmdline) is not None
    limit = mem_limit(cmdline)
    if limit is not None:
        k.log.append(LogLine(text=messages.mem_limit(limit)))
        k.memblock.limit(limit)
    if layout is Layout.STATIC_ARRAY:
        k.run_static()
    else:
        k.run_dynamic()
    entries = [
        RmemEntry(
            index=i,
            address=0,
            name=e.name,
            base=e.base,
            size=e.size,
            ops=e.ops,
            fdt_node=e.node.fdt_node,
        )
        for i, e in enumerate(k.entries)
    ]
    rm = ReservedMemState(
        layout=(
            Layout.STATIC_ARRAY if layout is Layout.STATIC_ARRAY else Layout.DYNAMIC_ARRAY
        ).value,
        ops_layout="node" if layout is Layout.NODE_OPS else "device",
        count=len(entries),
        capacity=MAX_RESERVED_REGIONS if layout is Layout.STATIC_ARRAY else k.capacity,
        max_regions=MAX_RESERVED_REGIONS,
        array_address=0,
        entry_size=0,
        # alloc_reserved_mem_array() allocates nothing when total_reserved_mem_cnt is 0,
        # and the late scan returns before it when there is no /reserved-memory node
        points_to_init_array=(
            None if layout is Layout.STATIC_ARRAY else (k.capacity == 0 or k.rmem is None)
        ),
        entries=entries,
    )
    snap = Snapshot(
        kernel=KernelInfo(
            release=f"preflight ({layout})", arch=_ARCH.name, page_size=PAGE_SIZE, cmdline=cmdline
        ),
        source={"kind": "preflight", "dtb": source, "layout": layout},
        reserved_mem=rm,
        memblock=memblock_state(k.memblock),
        dt=None,
        fdt=dt,
        cma=k.cma,
        log=k.log,
        tool_version=__version__,
    )
    report = checks.run(snap)
    placements = [k.placements[n.name] for n in k.children if n.name in k.placements]
    return PreflightResult(layout=layout, snapshot=snap, report=report, placements=placements)
