# SPDX-License-Identifier: GPL-2.0-or-later
"""
sources
-------

What could not be read (RMEM-SOURCE-MISSING, RMEM-MEMBLOCK-UNAVAILABLE), and from the
codes' declared needs, which checks that leaves out (the report's "checks skipped").
"""

from __future__ import annotations

from rmem_inspect.checks.codes import Need, code, skipped_for
from rmem_inspect.checks.context import Context
from rmem_inspect.checks.findings import RegionView
from rmem_inspect.checks.registry import Check, register

__all__ = ["CHECK", "check_sources", "unmet_needs"]


def unmet_needs(c: Context) -> list[tuple[Need, str]]:
    """The :class:`~rmem_inspect.checks.codes.Need`\\ s this snapshot does not meet,
    each with what was missing (the "missing source" of the skipped checks)."""
    out = []
    mb = c.snap.memblock
    if mb is None:
        out.append((Need.MEMBLOCK, "memblock"))
    elif not mb.available:
        out.append((Need.MEMBLOCK, "memblock (freed)"))
    if c.snap.linear_map is None:
        out.append((Need.PAGE_TABLES, "page tables"))
    if c.dt is None:
        out.append((Need.DEVICETREE, "devicetree"))
    if c.snap.reserved_mem is None:
        out.append((Need.RESERVED_MEM, "reserved_mem"))
    elif not c.rm_trusted and c.snap.reserved_mem.not_in_dump:
        out.append(
            (Need.RESERVED_MEM_TRUSTED, "reserved_mem (not in the dump: see RMEM-ARRAY-NOT-DUMPED)")
        )
    elif not c.rm_trusted:
        out.append((Need.RESERVED_MEM_TRUSTED, Need.RESERVED_MEM_TRUSTED.value))
    elif c.derived:
        out.append((Need.RESERVED_MEM_IN_MEMORY, Need.RESERVED_MEM_IN_MEMORY.value))
    if c.snap.cma is None:
        out.append((Need.CMA, "CMA areas"))
    return out


def check_sources(c: Context, views: dict[str, RegionView]) -> None:
    """One RMEM-SOURCE-MISSING per source not read, RMEM-MEMBLOCK-UNAVAILABLE, and the
    checks skipped for want of a source (from each code's declared needs)."""
    for source, why in sorted(c.snap.missing.items()):
        c.add("RMEM-SOURCE-MISSING", None, f"{source} could not be read: {why}", source=source)
    mb = c.snap.memblock
    if mb is not None and not mb.available:
        c.add(
            "RMEM-MEMBLOCK-UNAVAILABLE",
            None,
            mb.note or "memblock arrays are not valid after boot on this kernel",
        )
    c.skipped.update(skipped_for(unmet_needs(c)))


CHECK = register(
    Check(
        "sources",
        10,
        (
            code(
                "RMEM-SOURCE-MISSING",
                "info",
                "a source could not be read; checks skipped",
            ),
            code(
                "RMEM-MEMBLOCK-UNAVAILABLE",
                "warning",
                "memblock arrays freed or unreadable",
            ),
        ),
        check_sources,
    )
)
