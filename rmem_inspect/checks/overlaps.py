# SPDX-License-Identifier: GPL-2.0-or-later
"""
overlaps
--------

Regions that overlap, by a sorted sweep over every placed region (RMEM-OVERLAP).
"""

from __future__ import annotations

import operator

from rmem_inspect.checks.codes import code
from rmem_inspect.checks.context import Context
from rmem_inspect.checks.findings import RegionView, Verdict
from rmem_inspect.checks.registry import Check, register
from rmem_inspect.ranges import fmt_range, human_size

__all__ = ["CHECK", "check_overlaps"]


_FIRST = operator.itemgetter(0)


_SECOND = operator.itemgetter(1)


def check_overlaps(c: Context, views: dict[str, RegionView]) -> None:
    """Sorted sweep over every placed region (tracked entries and DT static ranges)."""
    placed: dict[str, tuple[int, int]] = {}
    for _, _, available, ranges in c.regions:
        if available:
            for name, b, s in ranges:
                if s:
                    placed[name] = (b, s)
    derived = c.derived
    for e in c.entries:
        if e.name and e.size and not e.error and not (derived and e.base == 0):  # unplaced()
            placed[e.name] = (e.base, e.size)
    items = [(b, b + s, n) for n, (b, s) in placed.items()]
    items.sort()
    ends = list(map(_SECOND, items))
    if all(map(operator.le, ends[:-1], map(_FIRST, items[1:]))):
        return  # each ends before the next starts: no region overlaps another
    active: list[tuple[int, str, int]] = []  # (end, name, base)
    reach = 0  # the largest end in active
    for base, end, name in items:
        if base >= reach:
            active = []  # the usual case: nothing still open overlaps this one
        else:
            active = [a for a in active if a[0] > base]
        for a_end, a_name, a_base in active:
            lines = [t for t in c.log.event_lines["overlap"] if a_name in t and name in t]
            c.add(
                "RMEM-OVERLAP",
                a_name,
                f"{a_name} {fmt_range(a_base, a_end - a_base)} overlaps {name} "
                f"{fmt_range(base, end - base)} by {human_size(min(a_end, end) - base)}.",
                other=name,
                log=lines,
            )
            for n in (a_name, name):
                if n in views and views[n].verdict == Verdict.OK:
                    views[n].verdict = Verdict.OVERLAP
        active.append((end, name, base))
        reach = max(reach, end)


CHECK = register(
    Check(
        "overlaps",
        60,
        (
            code(
                "RMEM-OVERLAP",
                "warning",
                "two regions overlap",
                advice="move or shrink one of the overlapping regions so that they are disjoint",
            ),
        ),
        check_overlaps,
    )
)
