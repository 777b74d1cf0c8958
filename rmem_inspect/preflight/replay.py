# SPDX-License-Identifier: GPL-2.0-or-later
"""
replay
------

What every generation's replay shares: the node as the kernel's flat-DT accessors
read it, the saved entries, and :class:`Replay`, the steps of
drivers/of/of_reserved_mem.c (drivers/of/fdt.c up to 6.11) that all generations
take, with the rules that differ as attributes. One module per generation
subclasses it (static_array, dynamic_array, node_ops).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rmem_inspect.formats.devicetree import RawNode
from rmem_inspect.kernel import messages
from rmem_inspect.kernel.arch import ARCHES
from rmem_inspect.kernel.constants import MAX_RESERVED_REGIONS
from rmem_inspect.kernel.handlers import GENERIC_DECLARATIONS, Declaration
from rmem_inspect.kernel.layouts import Layout
from rmem_inspect.kernel.messages import RMEM_PREFIX
from rmem_inspect.model import CmaArea, LogLine
from rmem_inspect.preflight.memblock import ANYWHERE, Memblock
from rmem_inspect.preflight.sort import kernel_sort

__all__ = [
    "ARCH",
    "CMA_MIN_ALIGNMENT_BYTES",
    "PAGE_SIZE",
    "REPLAYS",
    "SMP_CACHE_BYTES",
    "Entry",
    "Node",
    "Placement",
    "Replay",
    "cells",
    "find_rmem",
    "cell_pairs",
    "register_replay",
    "root_cells",
]

#: The architecture preflight replays (kernel/arch.py holds its alignments).
ARCH = ARCHES["arm64"]
assert ARCH.smp_cache_bytes and ARCH.page_size and ARCH.cma_min_alignment_bytes
#: SMP_CACHE_BYTES on arm64 (L1_CACHE_BYTES): the default alignment.
SMP_CACHE_BYTES: int = ARCH.smp_cache_bytes
#: memblock_find_in_range_node() never returns the first page.
PAGE_SIZE: int = ARCH.page_size
#: CMA_MIN_ALIGNMENT_BYTES on arm64 with 4 KiB pages.
CMA_MIN_ALIGNMENT_BYTES: int = ARCH.cma_min_alignment_bytes


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


# --------------------------------------------------------------------------
# The node as the flat-DT accessors of the kernel read it


@dataclass
class Node:
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


def cells(data: bytes, n: int, offset: int) -> int:
    """dt_mem_next_cell(): ``n`` cells at ``offset`` bytes, truncated to 64 bits."""
    v = int.from_bytes(data[offset : offset + 4 * n], "big") if n else 0
    return v & ANYWHERE


def cell_pairs(data: bytes, ac: int, sc: int) -> list[tuple[int, int]]:
    t = (ac + sc) * 4
    return [(cells(data, ac, i), cells(data, sc, i + ac * 4)) for i in range(0, len(data), t)]


# --------------------------------------------------------------------------
# The replay


@dataclass
class Entry:
    node: Node
    name: str
    base: int
    size: int
    ops: str | None = None


class Replay:
    """
    One kernel generation's boot-time reserved-memory code, replayed over a DTB.

    The steps every generation shares are here; a subclass per generation (one
    module each, registered with :func:`register_replay` under its
    :class:`~rmem_inspect.kernel.layouts.Layout`) gives :meth:`run`, the scan's order,
    and sets the rule attributes below to what its kernel does, citing the source.
    """

    #: The generation replayed.
    LAYOUT: Layout
    #: pr_fmt of early_init_dt_reserve_memory()'s caller: drivers/of/fdt.c ("OF: fdt: ")
    #: up to 6.11, drivers/of/of_reserved_mem.c ("OF: reserved mem: ") from 6.12.
    RESERVE_FAILED_PREFIX = RMEM_PREFIX
    #: 7.x __rmem_cma_verify_node(): a linux,cma-default pool gives way to cma= in the
    #: early scan; before, rmem_cma_setup() bypasses it at init time.
    CMA_GIVES_WAY_EARLY = False
    #: Up to 7.0 a ragged alloc-ranges skips the node; 7.1's
    #: of_flat_dt_get_addr_size_prop() returns NULL and it is allocated anywhere.
    BAD_ALLOC_RANGES_SKIPS_NODE = True
    #: __reserved_mem_alloc_in_range() (6.12+) picks the direction from the saved
    #: neighbours; 6.1 calls early_init_dt_alloc_reserved_memory_arch() directly.
    ALLOC_BY_NEIGHBOURS = True
    #: rmem_dma_setup() prints the pool size in KiB from 7.1 on, in MiB before.
    DMA_POOL_SIZE_KIB = False
    #: fdt_init_reserved_mem_node() logs each region's placement (6.12+).
    LOGS_REGION_LINE = True
    #: fdt_reserved_mem_save_node() names the node it skips when the array is full (7.1+).
    ARRAY_FULL_NAMES_NODE = False
    #: rmem_dma_setup() refuses a reusable node, rmem_cma_setup() one without reusable,
    #: with -EINVAL (6.1, 6.12: "compatible matching fail"); from 7.1 on with -ENODEV,
    #: which __reserved_mem_init_node() treats as "no handler" (kernel/dma/coherent.c,
    #: contiguous.c).
    COHERENT_REFUSAL_FAILS = True

    def __init__(
        self,
        root: RawNode,
        mem_reserve: list[tuple[int, int]],
        extra_reserved: list[tuple[int, int]],
        cma_alignment: int,
        memory: list[tuple[int, int]],
    ) -> None:
        self.ac = root_cells(root, "#address-cells", 1)
        self.sc = root_cells(root, "#size-cells", 1)
        self.t_len = (self.ac + self.sc) * 4
        self.cma_alignment = cma_alignment
        self.memblock = Memblock(memory)
        for b, s in extra_reserved:
            self.memblock.reserve(b, s)
        self.mem_reserve = mem_reserve
        #: ``cma=`` on the command line (kernel/dma/contiguous.c size_cmdline != -1).
        self.cma_cmdline = False
        self.log: list[LogLine] = []
        self.entries: list[Entry] = []
        self.capacity = MAX_RESERVED_REGIONS
        self.cma: list[CmaArea] = []
        self.placements: dict[str, Placement] = {}
        #: The kernel's reserved-memory handlers (its __reservedmem_of_table); None:
        #: assume the generic ones (cma, coherent, restricted) built in.
        self.handlers: set[Declaration] | None = None
        self.rmem = find_rmem(root)
        self.children: list[Node] = []
        if self.rmem is not None:
            self.children = [Node(c.name, c.props, i) for i, c in enumerate(self.rmem.children)]

    def cma_gives_way(self, node: Node) -> bool:
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

    def place(self, node: Node, outcome: str, reason: str, base: int = 0, size: int = 0) -> None:
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

    def reserve_one(self, node: Node, base: int, size: int) -> None:
        if size and self.reserve_memory(base, size, node.nomap):
            return
        prefix = self.RESERVE_FAILED_PREFIX
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

    def alloc_size(self, node: Node) -> tuple[int, int, str]:
        """__reserved_mem_alloc_size(): (base, size, why) with base 0 on failure."""
        name = node.name
        prop = node.props.get("size")
        if prop is None:
            return 0, 0, "no size property"
        if len(prop) != self.sc * 4:
            self.pr(f"invalid size property in '{name}' node.")
            return 0, 0, f"invalid size property (length {len(prop)})"
        size = cells(prop, self.sc, 0)
        align = 0
        prop = node.props.get("alignment")
        if prop is not None:
            if len(prop) != self.ac * 4:
                self.pr(f"invalid alignment property in '{name}' node.")
                return 0, 0, f"invalid alignment property (length {len(prop)})"
            align = cells(prop, self.ac, 0)
        nomap = node.nomap
        if self.CMA_GIVES_WAY_EARLY and self.cma_gives_way(node):
            return 0, 0, "skipped in favour of cma= on the command line"
        if node.compatible("shared-dma-pool") and node.reusable and not nomap:
            align = max(align, self.cma_alignment)
        ranges = node.props.get("alloc-ranges")
        base = 0
        window = "all memory"
        if ranges is not None and len(ranges) % self.t_len:
            if self.BAD_ALLOC_RANGES_SKIPS_NODE:
                self.pr(f"invalid alloc-ranges property in '{name}', skipping node.")
                return 0, 0, f"invalid alloc-ranges property (length {len(ranges)})"
            ranges = None  # of_flat_dt_get_addr_size_prop() returns NULL
        if ranges is not None:
            windows = cell_pairs(ranges, self.ac, self.sc)
            window = ", ".join(f"{b:#x}..{b + s - 1:#x}" for b, s in windows) or "no range"
            for start, length in windows:
                end = (start + length) & ANYWHERE
                if self.ALLOC_BY_NEIGHBOURS:
                    base = self.alloc_in_range(size, align, start, end, nomap)
                else:
                    base = self.alloc_arch(size, align, start, end, nomap)
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

    def init_node(self, e: Entry) -> None:
        """__reserved_mem_init_node(): the generic drivers' setup and its failure path."""
        node = e.node
        ops: str | None = None
        failed = False
        cma, coherent, restricted = (self.has_handler(d) for d in GENERIC_DECLARATIONS)
        if node.compatible("shared-dma-pool") and not (cma or coherent):
            pass  # no handler matches: -ENOENT (-ENODEV on 7.x), kept without ops
        elif node.compatible("shared-dma-pool"):
            if (
                not self.CMA_GIVES_WAY_EARLY
                and self.cma_cmdline
                and node.reusable
                and node.has("linux,cma-default")
            ):
                # rmem_cma_setup() (6.1, 6.12) tests the command line first
                self.pr(
                    f"Reserved memory: bypass {e.name} node, using cmdline CMA params instead", ""
                )
                failed = True
            elif node.reusable and not node.nomap and not cma:
                # rmem_dma_setup() refuses reusable nodes
                failed = self.COHERENT_REFUSAL_FAILS
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
            elif not node.reusable and coherent:
                ops = "rmem_dma_ops"
            elif not node.reusable:
                # rmem_cma_setup() refuses nodes without reusable
                failed = self.COHERENT_REFUSAL_FAILS
            else:
                failed = True
        elif node.compatible("restricted-dma-pool") and restricted:
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
            size = f"{e.size >> 10} KiB" if self.DMA_POOL_SIZE_KIB else f"{e.size >> 20} MiB"
            self.pr(f"Reserved memory: created DMA memory pool at {e.base:#018x}, size {size}", "")
        if ops is not None:
            compat = "restricted-dma-pool" if ops == "rmem_swiotlb_ops" else "shared-dma-pool"
            self.pr(f"initialized node {e.name}, compatible id {compat}")
        if self.LOGS_REGION_LINE:
            self.pr(messages.region_line(e.base, e.size, node.nomap, node.reusable, e.name))

    def has_handler(self, d: Declaration) -> bool:
        return self.handlers is None or d in self.handlers

    def save(self, node: Node, base: int, size: int) -> Entry | None:
        if len(self.entries) == self.capacity:
            if self.ARRAY_FULL_NAMES_NODE:
                self.pr(f"not enough space for all defined regions, skip '{node.name}'")
            else:
                self.pr("not enough space for all defined regions.")
            self.place(node, "dropped", f"reserved_mem array full ({self.capacity} entries)")
            return None
        e = Entry(node, node.name, base, size)
        self.entries.append(e)
        return e

    def check_overlap(self, cmp_: Callable[[Entry, Entry], int]) -> None:
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

    def memreserve(self) -> None:
        for b, s in self.mem_reserve:
            self.memblock.reserve(b, s)

    def run(self) -> None:
        """The generation's scan, from the early reserved-memory scan to the late one."""
        raise NotImplementedError


#: The replay of each generation (filled by :func:`register_replay`).
REPLAYS: dict[Layout, type[Replay]] = {}


def register_replay(cls: type[Replay]) -> type[Replay]:
    """Make ``cls`` the replay of ``cls.LAYOUT``."""
    if cls.LAYOUT in REPLAYS:
        raise ValueError(f"two replays of {cls.LAYOUT}")
    REPLAYS[cls.LAYOUT] = cls
    return cls


def root_cells(root: RawNode, prop: str, default: int) -> int:
    v = root.props.get(prop)
    return int.from_bytes(v[:4], "big") if v is not None and len(v) >= 4 else default


def find_rmem(root: RawNode) -> RawNode | None:
    for c in root.children:
        if c.name == "reserved-memory" or c.name.startswith("reserved-memory@"):
            return c
    return None
