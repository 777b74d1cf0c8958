# SPDX-License-Identifier: GPL-2.0-or-later
"""
nomap
-----

No-map regions in the kernel linear map, from the page-table walk (RMEM-NOMAP-MAPPED).
"""

from __future__ import annotations

from rmem_inspect.checks.codes import Need, code
from rmem_inspect.checks.context import Context
from rmem_inspect.checks.findings import RegionView
from rmem_inspect.checks.registry import Check, register

__all__ = ["CHECK", "check_nomap_mapped"]


def check_nomap_mapped(c: Context, views: dict[str, RegionView]) -> None:
    for lm in c.snap.linear_map or []:
        if lm.error:
            c.add(
                "RMEM-SOURCE-MISSING",
                lm.region,
                f"page tables over {lm.region} could not be walked: {lm.error}",
            )
        elif lm.mapped_pages:
            cause = None
            if c.rejected_root and lm.region not in c.by_name:
                cause = (
                    "the kernel ignored the whole /reserved-memory node, so no-map was never "
                    "applied"
                )
            elif c.log.named("reserve_failed", lm.region):
                cause = "the kernel refused its no-map with -EBUSY, see RMEM-NOMAP-MISSING"
            c.add(
                "RMEM-NOMAP-MAPPED",
                lm.region,
                f"{lm.region} is no-map but {lm.mapped_pages} of {lm.checked_pages} pages "
                f"checked are mapped in the kernel linear map at {lm.virt:#x}: speculative "
                "accesses can reach it" + (f"; {cause}." if cause else "."),
                cause=cause,
                virt=f"{lm.virt:#x}",
                first_mapped_phys=f"{lm.first_mapped:#x}" if lm.first_mapped is not None else None,
            )


CHECK = register(
    Check(
        "nomap",
        50,
        (
            code(
                "RMEM-NOMAP-MAPPED",
                "error",
                "no-map region present in the linear map",
                needs=(Need.PAGE_TABLES,),
                advice="the no-map region must carry MEMBLOCK_NOMAP; see its other findings",
            ),
        ),
        check_nomap_mapped,
    )
)
