# SPDX-License-Identifier: GPL-2.0-or-later
"""
consumers
---------

Devices whose memory-region points at a region the kernel does not track
(RMEM-CONSUMER-ORPHAN).
"""

from __future__ import annotations

from rmem_inspect.checks.codes import Need, code
from rmem_inspect.checks.context import Context
from rmem_inspect.checks.findings import RegionView
from rmem_inspect.checks.registry import Check, register

__all__ = ["CHECK", "check_consumers"]


def check_consumers(c: Context, views: dict[str, RegionView]) -> None:
    dt = c.snap.dt or c.dt
    if dt is None or c.dt is None or not c.rm_trusted or not dt.consumers:
        return
    regions = {r.path: r for r in c.dt.regions}
    for con in dt.consumers:
        if con.status not in ("okay", "ok"):
            continue
        for i, (ph, target) in enumerate(zip(con.phandles, con.targets, strict=False)):
            label = con.names[i] if i < len(con.names) else str(i)
            if target is None:
                c.add(
                    "RMEM-CONSUMER-ORPHAN",
                    None,
                    f"{con.path} memory-region[{label}] is phandle {ph:#x}, which no node has.",
                    consumer=con.path,
                    index=i,
                )
                continue
            r = regions.get(target)
            if r is None or not r.available:
                continue  # not a carveout, or disabled (the kernel skips it quietly)
            e = c.by_name.get(r.name)
            if e is None or e.size == 0:
                c.add(
                    "RMEM-CONSUMER-ORPHAN",
                    r.name,
                    f"{con.path} memory-region[{label}] points at {r.name}, which "
                    + (
                        "the kernel does not track"
                        if e is None
                        else "the kernel tracks with size 0 (never allocated)"
                    )
                    + ": the device gets no memory from it.",
                    consumer=con.path,
                    index=i,
                    compatible=con.compatible,
                )


CHECK = register(
    Check(
        "consumers",
        70,
        (
            code(
                "RMEM-CONSUMER-ORPHAN",
                "error",
                "memory-region points at an untracked region",
                needs=(Need.DEVICETREE, Need.RESERVED_MEM_TRUSTED),
                advice="point the memory-region phandle at a region the kernel tracks",
            ),
        ),
        check_consumers,
    )
)
