# SPDX-License-Identifier: GPL-2.0-or-later
"""
log_rmem
--------

``reserved_mem`` rebuilt from the kernel log, for inputs that cannot read the
array itself (the sysfs fallback, board packs without /proc/kcore). How each
layout's log establishes the tracked regions is told in
:mod:`rmem_inspect.collect.sysfs`.
"""

from __future__ import annotations

from rmem_inspect.kernel import messages
from rmem_inspect.kernel.constants import MAX_RESERVED_REGIONS
from rmem_inspect.kernel.layouts import Layout, OpsLayout
from rmem_inspect.model import DtInfo, DtRegion, LogLine, ReservedMemState, RmemEntry

__all__ = ["reconstruct_reserved_mem"]

# The kernel log lines read here: rmem_inspect/kernel/messages.py.
_REGION_LINE = messages.REGION_LINE
_MATCH_FAIL = messages.MATCH_FAIL_LINE
_NOT_ENOUGH = messages.NOT_ENOUGH
_ALLOC_FAIL = messages.ALLOC_FAILED
_ARRAY_FAIL = messages.ARRAY_ALLOC_FAILED


def _saved_nodes(dt: DtInfo) -> list[DtRegion]:
    """Nodes the kernel saves into reserved_mem, in scan order: okay ones with a
    valid ``reg``, or without reg but with ``size``."""
    return [r for r in dt.regions if r.available and not r.invalid and r.kind != "invalid"]


def reconstruct_reserved_mem(
    dt: DtInfo, log: list[LogLine], layout: str
) -> tuple[ReservedMemState, str]:
    """``reserved_mem`` as the kernel log establishes it, and how it was derived."""
    texts = [line.text for line in log]
    by_name = {r.name: r for r in dt.regions}
    entries: list[RmemEntry] = []

    def entry(name: str, base: int, size: int) -> None:
        entries.append(RmemEntry(index=len(entries), address=0, name=name, base=base, size=size))

    errors: list[str] = []
    if layout == Layout.DYNAMIC_ARRAY:
        for t in texts:
            m = _REGION_LINE.search(t)
            if m:
                base, last = int(m.group(1), 16), int(m.group(2), 16)
                entry(m.group(6), base, last - base + 1)
                continue
            m = _MATCH_FAIL.search(t)
            if m:
                r = by_name.get(m.group(1))
                if r is not None and r.reg:
                    entry(r.name, *r.reg[0])
                else:
                    entry(m.group(1), 0, r.size or 0 if r else 0)
        how = (
            f"{len(entries)} regions from the kernel's per-region 'OF: reserved mem: "
            "<base>..<end> (<n> KiB) ...' and 'compatible matching fail' log lines"
        )
        if any(_ARRAY_FAIL.search(t) for t in texts):
            entries.clear()
            how += "; the log says the array allocation failed, so none is tracked"
        return _log_state(layout, entries, None, MAX_RESERVED_REGIONS, errors), how
    saved = _saved_nodes(dt)
    dropped = sum(1 for t in texts if _NOT_ENOUGH.search(t))
    capacity = len(saved) - dropped if dropped else MAX_RESERVED_REGIONS
    failed = {m.group(1) for t in texts if (m := _ALLOC_FAIL.search(t))}
    for r in saved[:capacity]:
        if r.reg:
            entry(r.name, *r.reg[0])
        else:
            # The allocation is logged with pr_debug only: placement unknown (base 0).
            entry(r.name, 0, 0 if r.name in failed else (r.size or 0))
    how = (
        f"the first {len(entries)} of {len(saved)} saved nodes in devicetree order: the "
        f"static array holds {capacity} entries"
        + (
            f" (the log has {dropped} 'not enough space for all defined regions.' lines)"
            if dropped
            else " (MAX_RESERVED_REGIONS; no 'not enough space' line in the log)"
        )
        + "; dynamic placements are not logged"
    )
    return _log_state(layout, entries, capacity, capacity, errors), how


def _log_state(
    layout: str,
    entries: list[RmemEntry],
    capacity: int | None,
    max_regions: int,
    errors: list[str],
) -> ReservedMemState:
    """A reserved_mem rebuilt from the kernel log (``ops_layout="log"``, no addresses)."""
    return ReservedMemState(
        layout=layout,
        ops_layout=OpsLayout.LOG.value,
        count=len(entries),
        capacity=capacity,
        max_regions=max_regions,
        array_address=0,
        entry_size=0,
        entries=entries,
        errors=errors,
    )
