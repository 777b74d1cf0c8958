# SPDX-License-Identifier: GPL-2.0-or-later
"""
kcore_read
----------

The snapshot of board packs that carry /proc/kcore cuts:
:func:`~rmem_inspect.collect.snapshot.inspect` run unchanged on the packs' drgn
program (:func:`~rmem_inspect.collect.kcore_pack.pack_program`),
completed from the packs' sysfs files where the cuts stop: the unflattened
devicetree is the pack's copy of /sys/firmware/devicetree/base (drivers/of/kobj.c
exports every node and property of ``of_root``), because its nodes are a linked
tree the rounds do not follow, and so are the devices' lists (consumers), which
stay missing with the reason. Packs whose rounds are not complete (the planner
still asks for pages) give no drgn snapshot: :func:`kcore_snapshot` raises the
one sentence naming the round to run, and the caller keeps the packs' fallback
report with that sentence.
"""

from __future__ import annotations

from rmem_inspect.collect.kcore_pack import plan_round
from rmem_inspect.errors import InputError
from rmem_inspect.formats.pack import Pack
from rmem_inspect.model import Snapshot

__all__ = ["LIST_WALKS", "kcore_snapshot"]

#: Sources read by walking kernel lists, which the kcore rounds do not follow.
LIST_WALKS = {
    "assigned": "of_rmem_assigned_device_list",
    "devices": "devices_kset",
    "devices/cma (partial)": "devices_kset",
}


def kcore_snapshot(pack: Pack, source: dict[str, object], fallback: Snapshot) -> Snapshot:
    """The drgn collectors' snapshot over the packs' kcore cuts, completed by ``fallback``
    (the same packs' sysfs snapshot) where the cuts do not reach.

    :raises InputError: the packs cannot give drgn a kernel (no kcore head, no
        kallsyms addresses, no BTF) or lack a round: the caller keeps the fallback.
    """
    from rmem_inspect.collect.kcore_pack import pack_program
    from rmem_inspect.collect.snapshot import inspect

    plan = plan_round(pack)
    if plan.cuts:
        # Half-followed pointers read as faults the checks would call corruption: the
        # drgn report is made only from complete rounds.
        raise InputError(
            f"the packs lack {sum(n for _v, _o, n in plan.cuts)} bytes of kernel data the "
            f"drgn report reads: run round {plan.number} ('rmem-inspect collect-script "
            "--from' these packs) on the same boot; until then, the report without them"
        )
    prog = pack_program(pack)
    snap = inspect(prog, source=dict(source), linear_map=True)
    snap.source.update({k: v for k, v in fallback.source.items() if k == "unreadable"})
    if snap.dt is None and fallback.dt is not None:
        snap.dt = fallback.dt
        snap.missing.pop("of_root", None)
        snap.source["devicetree"] = "/sys/firmware/devicetree/base (board pack)"
    for key, symbol in LIST_WALKS.items():
        if key in snap.missing:
            snap.missing[key] = (
                f"the packs do not follow the kernel's lists ({symbol}): read it on the "
                "board with drgn, or from a dump"
            )
    return snap
