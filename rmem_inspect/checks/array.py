# SPDX-License-Identifier: GPL-2.0-or-later
"""
array
-----

The reserved_mem array itself: its count against its capacity (RMEM-COUNT-CORRUPT; when
what failed to read is not in the dump at all, RMEM-ARRAY-NOT-DUMPED), the
static array's 64 entries (RMEM-STATIC-ARRAY), and on 6.12+ whether the dynamic
array replaced the init-time one and that one was freed (RMEM-ARRAY-NOT-DYNAMIC,
RMEM-TEMP-ARRAY-LIVE).
"""

from __future__ import annotations

from typing import Any

from rmem_inspect.checks.codes import Need, code
from rmem_inspect.checks.context import Context
from rmem_inspect.checks.findings import RegionView
from rmem_inspect.checks.registry import Check, register
from rmem_inspect.kernel.layouts import Layout

__all__ = ["CHECK", "check_array", "kernel_would_count"]


def check_array(c: Context, views: dict[str, RegionView]) -> None:
    rm = c.snap.reserved_mem
    if rm is None:
        return
    ev: dict[str, Any] = {
        "layout": rm.layout,
        "count": rm.count,
        "capacity": rm.capacity,
        "array": f"{rm.array_address:#x}",
        "entry_size": rm.entry_size,
    }
    if c.snap.source.get("symbol_evidence"):
        # read without a vmlinux: how the statics (reserved_mem_count) were located
        ev["symbols"] = c.snap.source["symbol_evidence"]
    bad = []
    if rm.count is None:
        if not rm.not_in_dump:
            bad.append("reserved_mem_count is unreadable")
    elif rm.count < 0 or (rm.capacity is not None and rm.count > rm.capacity):
        bad.append(f"reserved_mem_count {rm.count} is outside 0..{rm.capacity}")
    if rm.capacity is not None and (rm.capacity < 0 or rm.capacity > 1 << 20):
        bad.append(f"capacity {rm.capacity} is absurd")
    if rm.layout == Layout.STATIC_ARRAY and rm.count is not None and rm.count > rm.max_regions:
        bad.append(f"count {rm.count} exceeds the static array's {rm.max_regions} entries")
    unreadable = [e for e in rm.entries if e.error]
    absent = bool(rm.not_in_dump) and not bad
    if absent and not c.derived:
        # Every failed read was of data the dump does not hold (collect/not_dumped.py):
        # a fact about the dump, not damage to the kernel's bookkeeping.
        what = (
            "reserved_mem_count is"
            if rm.count is None
            else f"{len(unreadable)} of {rm.count} reserved_mem entries are"
        )
        c.add(
            "RMEM-ARRAY-NOT-DUMPED",
            None,
            f"{what} not in the dump ({rm.not_in_dump}); the verdicts that need them "
            "are not made.",
            errors=rm.errors,
            unreadable=[f"[{e.index}] at {e.address:#x}: {e.error}" for e in unreadable[:16]],
            **ev,
        )
    elif unreadable and not absent:
        bad.append(f"{len(unreadable)} entries unreadable")
    if not absent:
        bad += rm.errors
    if bad and not c.derived:
        c.add(
            "RMEM-COUNT-CORRUPT",
            None,
            "reserved_mem cannot be trusted: " + "; ".join(bad) + "; entries read were capped.",
            errors=bad,
            unreadable=[f"[{e.index}] at {e.address:#x}: {e.error}" for e in unreadable[:16]],
            **ev,
        )
    wanted = kernel_would_count(c)
    if rm.layout == Layout.STATIC_ARRAY:
        if wanted > rm.max_regions:
            c.add(
                "RMEM-STATIC-ARRAY",
                None,
                f"this kernel keeps reserved regions in a fixed array of {rm.max_regions} "
                f"entries but the devicetree defines {wanted}: {wanted - rm.max_regions} "
                "were dropped; move to Linux 6.12+ (dynamic array) or merge carveouts.",
                severity="error",
                dt_regions=wanted,
                log=c.log.event_lines["not_enough"][:3],
                log_count=len(c.log.event_lines["not_enough"]),
                **ev,
            )
        else:
            c.add(
                "RMEM-STATIC-ARRAY",
                None,
                f"this kernel keeps reserved regions in a fixed array of {rm.max_regions} "
                f"entries; {wanted} are defined, so all fit.",
                dt_regions=wanted,
                **ev,
            )
        return
    # Dynamic layout.
    has_regions = wanted > 0
    ev |= {
        "init_array": f"{rm.init_array_address:#x}" if rm.init_array_address else None,
        "init_section": (
            f"{rm.init_section[0]:#x}..{rm.init_section[1]:#x}" if rm.init_section else None
        ),
        "init_array_readable": rm.init_array_readable,
        "init_array_pages_freed": f"{rm.init_array_pages_freed}/{rm.init_array_pages}",
        "pages": rm.init_array_page_evidence[:4],
    }
    # alloc_reserved_mem_array() (drivers/of/of_reserved_mem.c, 6.12+) allocates
    # total_reserved_mem_cnt entries, and nothing at all when that count is 0 ("if
    # (!total_reserved_mem_cnt) return 0;"): the early scan counted no valid region, or
    # rejected the whole node ("unsupported node format" sets the count to 0 from 7.2
    # on). reserved_mem then stays at the init array, with reserved_mem_count 0, on
    # purpose. Only a kernel that counted regions and kept the init array failed.
    counted_none = rm.capacity == 0
    if rm.points_to_init_array and has_regions and not counted_none:
        failed = c.log.event_lines["array_alloc_failed"][:2]
        if failed:
            why = "the kernel log says the allocation failed, and the kernel dropped every region"
        elif c.log.available:
            why = (
                "the kernel log has no 'Failed to allocate memory for reserved_mem array' "
                "line to say why"
            )
        else:
            why = "the kernel log was not available to say why"
        c.add(
            "RMEM-ARRAY-NOT-DYNAMIC",
            None,
            "reserved_mem still points at the init-time reserved_mem_array although the "
            f"kernel counted {rm.capacity} regions (total_reserved_mem_cnt) and the devicetree "
            f"defines {wanted}: the dynamic array was never allocated; {why}.",
            log=failed,
            rule="alloc_reserved_mem_array() allocates total_reserved_mem_cnt entries and "
            "repoints reserved_mem; it skips the allocation only when that count is 0",
            **ev,
        )
    if rm.points_to_init_array and (rm.count or 0) > 0:
        c.add(
            "RMEM-TEMP-ARRAY-LIVE",
            None,
            f"reserved_mem points into the freed init section ({rm.count} entries): lookups "
            "read memory the page allocator may have reused.",
            **ev,
        )
    if (
        rm.init_array_pages_freed is not None
        and rm.init_array_pages
        and rm.init_array_pages_freed < rm.init_array_pages
        and rm.init_array_in_init_section
    ):
        c.add(
            "RMEM-TEMP-ARRAY-LIVE",
            None,
            f"the init-time reserved_mem_array was not freed: "
            f"{rm.init_array_pages - rm.init_array_pages_freed} of {rm.init_array_pages} "
            "pages are still PG_reserved (free_initmem() did not run or failed).",
            **ev,
        )
    if rm.array_phys is not None and c.memblock_ok and not rm.points_to_init_array:
        size = (rm.capacity or 0) * rm.entry_size
        if size and not c.reserved.covers(rm.array_phys, size):
            c.add(
                "RMEM-COUNT-CORRUPT",
                None,
                f"the dynamic reserved_mem array at phys {rm.array_phys:#x} ({size} bytes) is "
                "not inside any memblock.reserved range: the pointer is wild.",
                **ev,
            )


def kernel_would_count(c: Context) -> int:
    """How many entries the kernel would need: okay nodes with valid reg or size."""
    if c.dt is None:
        return 0
    return sum(1 for r, kind, ok, _ in c.regions if ok and not r.invalid and kind != "invalid")


_IN_MEMORY = (Need.RESERVED_MEM, Need.RESERVED_MEM_IN_MEMORY)
CHECK = register(
    Check(
        "array",
        20,
        (
            code(
                "RMEM-STATIC-ARRAY",
                "info",
                "kernel uses the fixed-size reserved_mem array",
                needs=(Need.RESERVED_MEM,),
                advice=(
                    "define at most {capacity} /reserved-memory regions (merge adjacent "
                    "carveouts, drop unused ones) or boot Linux 6.12+, whose reserved_mem "
                    "array is sized from the devicetree"
                ),
            ),
            code(
                "RMEM-ARRAY-NOT-DYNAMIC",
                "error",
                "dynamic-capable kernel still uses the init array",
                needs=_IN_MEMORY,
                advice="the kernel kept its init-time array: report it to the kernel",
            ),
            code(
                "RMEM-TEMP-ARRAY-LIVE",
                "error",
                "init array not freed, or reserved_mem points into it",
                needs=_IN_MEMORY,
                advice="reserved_mem points into freed init memory: report it upstream",
            ),
            code(
                "RMEM-ARRAY-NOT-DUMPED",
                "warning",
                "reserved_mem is not in the dump (pages excluded, no bank covers it)",
                needs=_IN_MEMORY,
                advice=(
                    "the data is not in the dump: take one that holds the pages named "
                    "(every bank file of a RAM dump; a kdump whose page bitmap keeps them)"
                ),
            ),
            code(
                "RMEM-COUNT-CORRUPT",
                "error",
                "count outside 0..capacity, or unreadable entries",
                needs=_IN_MEMORY,
                advice="the reserved_mem bookkeeping is corrupt: the dump may be damaged",
            ),
        ),
        check_array,
    )
)
