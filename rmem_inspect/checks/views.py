# SPDX-License-Identifier: GPL-2.0-or-later
"""
views
-----

Each region as every source sees it (:class:`~rmem_inspect.checks.findings.RegionView`):
the devicetree's ranges, reserved_mem's entries by name, memblock coverage and the log
lines that name it, built in one pass before the checks set verdicts.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from rmem_inspect.checks.context import Context
from rmem_inspect.checks.findings import RegionView, Verdict
from rmem_inspect.model import RmemEntry

__all__ = ["build_views", "covered_by"]


def build_views(c: Context) -> dict[str, RegionView]:
    """
    Each region as every source sees it, in devicetree order (one view per reg entry,
    ``name[i]`` for the extra ones), then the reserved_mem entries that no devicetree
    region names, in entry order.

    A view is tracked when an entry has its name; the entry's placement replaces the
    devicetree's for a dynamic region or one without reg, unless the entry is
    unplaced (rebuilt from a log that does not place it). When a name is on more
    entries than one, the last gives the index, each adds a source, a dynamic region
    takes the last placement and one without size the first.
    """
    views: dict[str, RegionView] = {}
    by_region = c.log.by_region
    covered = covered_by(c)
    derived = c.derived
    named = [e for e in c.entries if e.name is not None]
    #: name -> its entry (the last when there are several)
    last: dict[str, RmemEntry] = c.by_name
    #: with a name on several entries: how many, and its first and last placed entries
    counts: dict[str, int] | None = None
    first_placed: dict[str, RmemEntry] = {}
    last_placed: dict[str, RmemEntry] = {}
    if len(c.by_name) != len(named):
        last, counts = {}, {}
        for x in named:
            name = x.name
            assert name is not None
            last[name] = x
            counts[name] = counts.get(name, 0) + 1
            if not (derived and x.base == 0):
                first_placed.setdefault(name, x)
                last_placed[name] = x
    memblock = covered is not None
    starts, ends = c.covered.starts, c.covered.ends
    bisect_right = bisect.bisect_right
    for r, kind, available, ranges in c.regions:
        verdict = Verdict.OK if available else Verdict.DISABLED
        for name, b, s in ranges or ((r.name, None, r.size),):
            # positional: a dataclass __init__ with keywords and default factories
            # costs half again as much, 10,000 times over
            e = last.get(name)
            if e is None:
                v = RegionView(
                    name, b, s, kind, r.nomap, r.reusable, list(r.compatible), r.status,
                    False, None, ["dt"], verdict, r.index, None, [],
                )  # fmt: skip
            else:
                if b is None or kind == "dynamic":
                    if counts is None:
                        p: RmemEntry | None = None if derived and e.base == 0 else e
                    else:
                        p = (last_placed if kind == "dynamic" else first_placed).get(name)
                    if p is not None:
                        b, s = p.base, p.size
                sources = ["dt", "reserved_mem"]
                if counts is not None:
                    sources += ["reserved_mem"] * (counts[name] - 1)
                v = RegionView(
                    name, b, s, kind, r.nomap, r.reusable, list(r.compatible), r.status,
                    True, None, sources, verdict, r.index, e.index, [],
                )  # fmt: skip
            if memblock and b is not None and s:
                # covered(v, b, s), inlined: this runs for every region
                i = bisect_right(starts, b) - 1
                if i >= 0 and ends[i] >= b + s:
                    v.reserved = True
                    v.sources.append("memblock")
                elif covered is not None:
                    covered(v, b, s)  # not covered: says whether it overlaps
            lines = by_region.get(name)
            if lines is not None:
                v.log = lines[:6]
            views[name] = v
    for e in named:
        entry_name = e.name
        if entry_name is None or entry_name in views:
            continue
        n = 1 if counts is None else counts[entry_name]
        v = views[entry_name] = RegionView(
            entry_name, e.base, e.size, "unknown", False, False, [], "okay", True, None,
            ["reserved_mem"] * n, Verdict.OK, None, last[entry_name].index, [],
        )  # fmt: skip
        if covered is not None and e.size:
            covered(v, e.base, e.size)
        lines = by_region.get(entry_name)
        if lines is not None:
            v.log = lines[:6]
    return views


def covered_by(c: Context) -> Callable[[RegionView, int, int], None] | None:
    """A function that sets a view's ``reserved`` and adds memblock to its sources
    (None when memblock is not available)."""
    if not c.memblock_ok:
        return None
    # RangeSet.covers() and .overlaps(), inlined: this runs for every region
    starts, ends = c.covered.starts, c.covered.ends
    n = len(starts)
    bisect_right = bisect.bisect_right

    def covered(v: RegionView, b: int, s: int) -> None:
        i = bisect_right(starts, b) - 1
        if i >= 0 and ends[i] >= b + s:
            v.reserved = True
            v.sources.append("memblock")
            return
        v.reserved = False
        # overlaps: the first range ending after b starts before b + s
        j = i if i >= 0 and ends[i] > b else i + 1
        if j < n and starts[j] < b + s:
            v.sources.append("memblock")

    return covered
