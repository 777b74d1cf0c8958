# SPDX-License-Identifier: GPL-2.0-or-later
"""
placement
---------

Where a tracked region sits: as the devicetree says (RMEM-SIZE-MISMATCH, RMEM-ALLOC-RANGE,
RMEM-ALIGNMENT), reserved or no-map in memblock (RMEM-NOT-RESERVED, RMEM-NOMAP-MISSING),
inside RAM (RMEM-OUTSIDE-RAM), and initialised (RMEM-NO-INIT).
"""

from __future__ import annotations

import re

from rmem_inspect.checks.codes import Need, code
from rmem_inspect.checks.context import GENERIC_INIT, Context
from rmem_inspect.checks.findings import RegionView
from rmem_inspect.checks.handlers import check_no_handler
from rmem_inspect.checks.registry import Check, register
from rmem_inspect.kernel.layouts import Layout
from rmem_inspect.model import DtRegion, RmemEntry
from rmem_inspect.ranges import RangeSet, fmt_range, human_size

__all__ = [
    "CHECK",
    "MEM_LIMIT",
    "check_outside_ram",
    "check_placement",
    "check_tracked",
    "mem_limit",
    "reserved_before",
    "reserved_first",
    "unplaced",
]


def unplaced(c: Context, e: RmemEntry) -> bool:
    """A log-derived entry whose placement the log does not give (base left 0)."""
    return c.derived and e.base == 0


def check_tracked(c: Context, r: DtRegion, kind: str, e: RmemEntry, view: RegionView) -> None:
    if c.derived and e.base == 0:  # unplaced(), inlined: this runs for every region
        view.tracked = True  # placement not in the log: nothing to check it against
        return
    if kind == "static":
        base, size = r.reg[0]
        if (e.base, e.size) != (base, size):
            c.add(
                "RMEM-SIZE-MISMATCH",
                r.name,
                f"{r.name} is tracked at {fmt_range(e.base, e.size)} but the devicetree says "
                f"{fmt_range(base, size)}.",
                dt=fmt_range(base, size),
                reserved_mem=fmt_range(e.base, e.size),
            )
    elif kind == "dynamic" and e.size:
        if r.size is not None and e.size != r.size:
            c.add(
                "RMEM-SIZE-MISMATCH",
                r.name,
                f"{r.name} got {human_size(e.size)} but the "
                f"devicetree asks for {human_size(r.size)}.",
                dt_size=r.size,
                reserved_mem=fmt_range(e.base, e.size),
            )
        if r.alloc_ranges and not any(
            b <= e.base and e.base + e.size <= b + s for b, s in r.alloc_ranges
        ):
            c.add(
                "RMEM-ALLOC-RANGE",
                r.name,
                f"{r.name} was placed at {fmt_range(e.base, e.size)}, outside its alloc-ranges "
                f"{', '.join(fmt_range(b, s) for b, s in r.alloc_ranges)}.",
                alloc_ranges=[fmt_range(b, s) for b, s in r.alloc_ranges],
            )
        if r.alignment and e.base % r.alignment:
            c.add(
                "RMEM-ALIGNMENT",
                r.name,
                f"{r.name} at {e.base:#x} is not aligned to {r.alignment:#x} as its "
                "devicetree node requires.",
                alignment=r.alignment,
                base=e.base,
            )
    if e.size and c.memblock_ok:
        # check_placement() says what is wrong; most regions are right: test here first
        # (the view already knows the coverage when it shows the entry's own placement)
        covered = (
            view.reserved
            if view.base == e.base and view.size == e.size and view.reserved is not None
            else c.covered.covers(e.base, e.size)
        )
        if not covered or (r.nomap and not c.nomap.covers(e.base, e.size)):
            check_placement(c, r.name, e, nomap=r.nomap)
        if not c.memory.covers(e.base, e.size):
            check_outside_ram(c, r.name, e, r.nomap)
    if check_no_handler(c, r, e):
        view.tracked = True
        return
    failed = c.log.named("match_fail", r.name) if c.log.events["match_fail"] else []
    if failed or (
        e.ops is None and e.size and not c.derived and not GENERIC_INIT.isdisjoint(r.compatible)
    ):
        c.add(
            "RMEM-NO-INIT",
            r.name,
            f"{r.name} is compatible with {', '.join(r.compatible)} but no reserved-memory "
            "driver initialised it (ops is NULL"
            + ("; the kernel log says its init failed" if failed else "")
            + "): devices cannot use it.",
            ops=e.ops,
            log=failed,
        )
    view.tracked = True


def check_placement(c: Context, name: str, e: RmemEntry, nomap: bool) -> None:
    if not c.memblock_ok:
        return
    # early_init_dt_reserve_memory() (drivers/of/fdt.c up to 6.11, of_reserved_mem.c
    # from 6.12 on) never memblock_reserve()s a no-map range: it only
    # memblock_mark_nomap()s it, which flags the memory that exists and skips the rest
    # ("don't worry if the region isn't memory as it won't be mapped"). So only the
    # parts of a no-map region inside memblock.memory can be reserved or NOMAP.
    ram = c.memory.pieces(e.base, e.size) if nomap else [(e.base, e.size)]
    if not all(c.covered.covers(b, s) for b, s in ram):
        c.add(
            "RMEM-NOT-RESERVED",
            name,
            f"{name} {fmt_range(e.base, e.size)} is tracked but neither memblock-reserved nor "
            "no-map: the page allocator may hand its pages out.",
            memblock=c.memblock_region_evidence(e.base, e.size),
            log=c.log.named("match_fail", name),
        )
    if nomap and not all(c.nomap.covers(b, s) for b, s in ram):
        refused = c.log.named("reserve_failed", name)
        cause = (
            "the kernel refused the no-map with -EBUSY: the range was already memblock-reserved "
            "when the early scan reached it"
            if refused
            else None
        )
        c.add(
            "RMEM-NOMAP-MISSING",
            name,
            f"{name} has no-map in the devicetree but memblock.memory has no MEMBLOCK_NOMAP "
            f"over {fmt_range(e.base, e.size)}: the kernel maps it and may touch it"
            + (f" ({cause}{reserved_first(c, name, e)})" if cause else "")
            + ".",
            memblock=c.memblock_region_evidence(e.base, e.size),
            cause=cause,
            reserved_before=reserved_before(c, name, e) if cause else None,
            log=refused,
        )


def reserved_before(c: Context, name: str, e: RmemEntry) -> list[str]:
    """What memblock had reserved over ``e`` before the early scan reached its node:
    /memreserve/ entries (reserved before the scan up to 6.11, after it from 6.12 on:
    early_init_fdt_scan_reserved_mem() in drivers/of/fdt.c) and the static regions
    earlier in devicetree order (fdt_scan_reserved_mem() reserves in that order)."""
    out = []
    rm = c.snap.reserved_mem
    fdt = c.snap.fdt
    if fdt is not None and rm is not None and rm.layout == Layout.STATIC_ARRAY:
        for b, s in fdt.mem_reserve:
            if b < e.base + e.size and e.base < b + s:
                out.append(f"/memreserve/ {fmt_range(b, s)}")
    for r, kind, ok, ranges in c.regions:
        if r.name == name:
            break
        if ok and kind == "static" and not r.nomap:
            for n, b, s in ranges:
                if s and b < e.base + e.size and e.base < b + s:
                    out.append(f"{n} {fmt_range(b, s)}")
    return out


def reserved_first(c: Context, name: str, e: RmemEntry) -> str:
    first = reserved_before(c, name, e)
    return f", by {', '.join(first[:3])}" if first else ""


def check_outside_ram(c: Context, name: str, e: RmemEntry, nomap: bool) -> None:
    """RMEM-OUTSIDE-RAM (info): a tracked region that is not all RAM. The kernel
    accepts such a no-map region on purpose (see check_placement()); a mapped one is
    memblock_reserve()d all the same, and the page allocator never sees it."""
    inside = sum(s for _, s in c.memory.pieces(e.base, e.size))
    if inside == e.size:
        return
    part = "" if inside == 0 else f" ({human_size(e.size - inside)} of {human_size(e.size)})"
    mb = c.snap.memblock
    banks = RangeSet.of_memblock(mb.memory if mb else [])
    end = banks.ends[-1] if banks.ends else 0
    limit = mem_limit(c.snap.kernel.cmdline)
    limited = c.log.event_lines["mem_limit"][-1:]
    why = ""
    if (limit or limited) and e.base + e.size > end:
        said = limit + " on the kernel command line" if limit else f"'{limited[0]}' (kernel log)"
        why = (
            f"; {said} cut memblock.memory at {end:#x} before the reserved-memory scan "
            "(arm64_memblock_init())"
        )
    c.add(
        "RMEM-OUTSIDE-RAM",
        name,
        f"{name} {fmt_range(e.base, e.size)} lies outside RAM{part}: no memblock.memory bank "
        f"covers it{why}; "
        + (
            "the kernel accepts a no-map region there on purpose and neither reserves nor "
            "marks it."
            if nomap
            else "memblock_reserve() records it all the same and the page allocator never "
            "sees it."
        ),
        memory=[fmt_range(b, end - b) for b, end in zip(banks.starts, banks.ends, strict=True)][:8],
        cmdline=limit or None,
        log=limited,
        rule=(
            "early_init_dt_reserve_memory(): a no-map range that is not memory is accepted "
            "(\"don't worry if the region isn't memory as it won't be mapped\")"
            if nomap
            else None
        ),
    )


MEM_LIMIT = re.compile(r"(?:^|\s)(mem=\S+)")


def mem_limit(cmdline: str | None) -> str:
    """The last ``mem=`` argument of the command line (early_mem() keeps the last)."""
    found = MEM_LIMIT.findall(cmdline or "")
    return found[-1] if found else ""


_PER_REGION = (Need.DEVICETREE, Need.RESERVED_MEM_TRUSTED)
#: Placements the kernel log does not give (reserved_mem rebuilt from the log).
_UNPLACED = (Need.RESERVED_MEM_IN_MEMORY, "dynamic regions the log does not place")
#: Run by :mod:`.regions` for each tracked region: no pass of its own.
CHECK = register(
    Check(
        "placement",
        31,
        (
            code(
                "RMEM-NOT-RESERVED",
                "error",
                "tracked region neither memblock-reserved nor NOMAP",
                needs=(Need.RESERVED_MEM_TRUSTED, Need.MEMBLOCK, _UNPLACED),
                advice="reserve the range: check the node's reg and what overlaps it",
            ),
            code(
                "RMEM-NOMAP-MISSING",
                "error",
                "no-map region without MEMBLOCK_NOMAP",
                needs=(*_PER_REGION, Need.MEMBLOCK, _UNPLACED),
                advice=(
                    "move the no-map region off memory that is already reserved, or make the "
                    "range outside RAM"
                ),
                consequences=("RMEM-NOMAP-MAPPED",),
            ),
            code(
                "RMEM-ALLOC-RANGE",
                "error",
                "dynamic region outside its alloc-ranges",
                needs=(*_PER_REGION, _UNPLACED),
                advice="check the region's alloc-ranges and what the kernel was given",
            ),
            code(
                "RMEM-ALIGNMENT",
                "warning",
                "dynamic region not aligned as required",
                needs=(*_PER_REGION, _UNPLACED),
                advice="check the region's alignment property",
            ),
            code(
                "RMEM-SIZE-MISMATCH",
                "warning",
                "tracked base/size differs from the DT",
                needs=(*_PER_REGION, _UNPLACED),
                advice="check the node's reg/size against what the kernel tracked",
            ),
            code(
                "RMEM-NO-INIT",
                "warning",
                "compatible region no driver initialised",
                needs=(*_PER_REGION, (Need.RESERVED_MEM_IN_MEMORY, "ops")),
                advice=(
                    "build the driver for the compatible into the kernel, or fix the compatible"
                ),
                explains_failure=True,
            ),
            code(
                "RMEM-OUTSIDE-RAM",
                "info",
                "region (partly) outside every memblock.memory bank",
                needs=(*_PER_REGION, Need.MEMBLOCK),
            ),
        ),
        None,
    )
)
