# SPDX-License-Identifier: GPL-2.0-or-later
"""
dt_diverged
-----------

The unflattened devicetree against the boot FDT (RMEM-DT-DIVERGED).
"""

from __future__ import annotations

import operator
from typing import Any

from rmem_inspect.checks.codes import Need, code
from rmem_inspect.checks.context import Context
from rmem_inspect.checks.findings import RegionView
from rmem_inspect.checks.registry import Check, register
from rmem_inspect.model import DtRegion

__all__ = ["CHECK", "check_dt_diverged"]


def check_dt_diverged(c: Context, views: dict[str, RegionView]) -> None:
    a, b = c.snap.fdt, c.snap.dt
    if a is None or b is None:
        return

    def key(r: DtRegion) -> tuple[Any, ...]:
        return (r.name, tuple(r.reg), r.size, r.status, r.nomap, r.reusable)

    same = operator.attrgetter("name", "reg", "size", "status", "nomap", "reusable")
    if len(a.regions) == len(b.regions) and all(
        map(operator.eq, map(same, a.regions), map(same, b.regions))
    ):
        return  # the same regions in the same order (the usual case): no sets to build
    ka = {key(r) for r in a.regions}
    kb = {key(r) for r in b.regions}
    if ka != kb:
        c.add(
            "RMEM-DT-DIVERGED",
            None,
            "the unflattened devicetree's /reserved-memory differs from the boot FDT "
            "(an overlay or a run-time change): checks use the boot FDT.",
            only_boot=sorted(k[0] for k in ka - kb),
            only_live=sorted(k[0] for k in kb - ka),
        )


CHECK = register(
    Check(
        "dt_diverged",
        80,
        (
            code(
                "RMEM-DT-DIVERGED",
                "info",
                "the live devicetree differs from the boot FDT",
                needs=(Need.DEVICETREE,),
            ),
        ),
        check_dt_diverged,
    )
)
