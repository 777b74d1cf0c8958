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
first as ``extra_reserved`` and the last as ``handlers`` (read from the kernel's vmlinux
or .config); without them the generic ``shared-dma-pool`` and ``restricted-dma-pool``
drivers are assumed built in.

The package: :mod:`~rmem_inspect.preflight.memblock` (the memblock model),
:mod:`~rmem_inspect.preflight.sort` (lib/sort.c) and the replay here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rmem_inspect import checks
from rmem_inspect.errors import InputError
from rmem_inspect.formats.devicetree import RawNode, decode_tree
from rmem_inspect.formats.fdt import FdtError, parse_fdt
from rmem_inspect.kernel import messages
from rmem_inspect.kernel.constants import MAX_RESERVED_REGIONS
from rmem_inspect.kernel.handlers import identify
from rmem_inspect.kernel.layouts import (  # LAYOUTS: the layouts preflight replays
    KERNEL_LAYOUT_HELP,
    LAYOUT_ALIASES,
    LAYOUTS,
    Layout,
    kernel_layout,
)
from rmem_inspect.model import (
    DtInfo,
    KernelInfo,
    LogLine,
    ReservedMemState,
    RmemEntry,
    RmemHandler,
    Snapshot,
)
from rmem_inspect.preflight import dynamic_array, node_ops, static_array  # noqa: F401 (register)
from rmem_inspect.preflight.assumed_ram import assume_ram, mark_assumed
from rmem_inspect.preflight.memblock import memblock_state
from rmem_inspect.preflight.replay import (
    ARCH,
    CMA_MIN_ALIGNMENT_BYTES,
    PAGE_SIZE,
    REPLAYS,
    Placement,
    cell_pairs,
    root_cells,
)
from rmem_inspect.preflight.sort import kernel_sort
from rmem_inspect.version import __version__

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


def resolve_layout(name: str) -> Layout:
    """A layout name, series alias or X.Y[.Z] -> one of :data:`LAYOUTS`; InputError otherwise."""
    layout = kernel_layout(name)
    if layout is None:
        raise InputError(f"unknown kernel {name!r}: give {KERNEL_LAYOUT_HELP}")
    return layout


@dataclass
class PreflightResult:
    layout: str
    snapshot: Snapshot
    report: checks.Report
    placements: list[Placement] = field(default_factory=list)

    @property
    def log(self) -> list[str]:
        return [line.text for line in self.snapshot.log or []]


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
    ac = root_cells(root, "#address-cells", 1)
    sc = root_cells(root, "#size-cells", 1)
    return [(b, s) for b, s in cell_pairs(prop, ac, sc) if s][:2]


def _bootargs(root: RawNode) -> str:
    chosen = next((c for c in root.children if c.name == "chosen"), None)
    raw = chosen.props.get("bootargs", b"") if chosen is not None else b""
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def preflight(
    dtb: bytes,
    layout: str,
    *,
    extra_reserved: Iterable[tuple[int, int]] = (),
    memory: Iterable[tuple[int, int]] | None = None,
    cmdline: str | None = None,
    cma_alignment: int = CMA_MIN_ALIGNMENT_BYTES,
    source: str = "",
    handlers: list[RmemHandler] | None = None,
    handlers_from: str = "",
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
    :param handlers: The target kernel's reserved-memory handlers (its
        __reservedmem_of_table, from its vmlinux or .config; ``handlers_from`` says which);
        None: the generic DMA handlers are assumed built in.
    :raises InputError: the blob is not a valid DTB, or the layout is unknown. A DTB
        whose memory nodes give no size is replayed on assumed RAM
        (:mod:`~rmem_inspect.preflight.assumed_ram`), said in the header and the findings.
    """
    layout = resolve_layout(layout)
    try:
        blob = parse_fdt(dtb)
    except FdtError as e:
        raise InputError(f"not a valid devicetree blob: {e}") from None
    dt: DtInfo = decode_tree(blob.root, "fdt")
    dt.mem_reserve = list(blob.mem_reserve)
    banks = list(memory) if memory is not None else [r for r in dt.memory if r[1]]
    assumed = None
    if not banks:
        # the memory node's size is left for the boot loader: answer on a stated
        # assumption (assumed_ram.py) rather than refuse
        assumed = assume_ram(blob.root, dt, cma_alignment)
        banks = [(assumed.base, assumed.size)]
    k = REPLAYS[layout](blob.root, blob.mem_reserve, list(extra_reserved), cma_alignment, banks)
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
    if handlers is not None:
        k.handlers = {
            d for h in handlers if (d := identify(h.name, h.compatible, h.data)) is not None
        }
    k.run()
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
            release=f"preflight ({layout})",
            arch=ARCH.name,
            page_size=PAGE_SIZE,
            cmdline=cmdline,
            rmem_handlers=handlers,
        ),
        source={"kind": "preflight", "dtb": source, "layout": layout}
        | ({"rmem_handlers": handlers_from} if handlers_from else {}),
        reserved_mem=rm,
        memblock=memblock_state(k.memblock),
        dt=None,
        fdt=dt,
        cma=k.cma,
        log=k.log,
        tool_version=__version__,
    )
    if assumed is not None:
        snap.source["memory"] = assumed.sentence()
    report = checks.run(snap)
    placements = [k.placements[n.name] for n in k.children if n.name in k.placements]
    if assumed is not None:
        mark_assumed(report, assumed, placements)
    return PreflightResult(layout=layout, snapshot=snap, report=report, placements=placements)
