# SPDX-License-Identifier: GPL-2.0-or-later
"""
checks.RangeSet against a brute-force set of addresses: whatever the ranges
(overlapping, touching, nested, empty, unsorted), covers(), overlaps() and
containing() and pieces() answer as the union of the ranges does, and union() of two sets
equals the set of both lists.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.model import MemblockRegion
from rmem_inspect.ranges import RangeSet

pytestmark = pytest.mark.unit

ranges = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 12)), max_size=12)


def _points(rs: list[tuple[int, int]]) -> set[int]:
    return {a for b, s in rs for a in range(b, b + s)}


def _check(got: RangeSet, points: set[int]) -> None:
    assert got.starts == sorted(got.starts)
    assert all(e < s for e, s in zip(got.ends, got.starts[1:], strict=False))  # disjoint
    for base in range(0, 75):
        for size in range(1, 8):
            want = set(range(base, base + size))
            assert got.covers(base, size) == (want <= points)
            assert got.overlaps(base, size) == bool(want & points)
            pieces = got.pieces(base, size)
            assert _points(pieces) == want & points  # exactly the covered part ...
            assert len(pieces) == len(RangeSet(pieces).starts)  # ... in maximal pieces
        c = got.containing(base)
        if base in points:
            assert c is not None and base in range(c[0], c[0] + c[1])
            assert set(range(c[0], c[0] + c[1])) <= points
            assert c[0] - 1 not in points and c[0] + c[1] not in points  # maximal
        else:
            assert c is None


@settings(max_examples=200, deadline=None)
@given(ranges, ranges)
def test_rangeset_is_the_union(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    _check(RangeSet(a), _points(a))
    _check(RangeSet(a).union(RangeSet(b)), _points(a + b))


@settings(max_examples=100, deadline=None)
@given(ranges, st.integers(0, 7))
def test_of_memblock_filters_by_flag(rs: list[tuple[int, int]], mask: int) -> None:
    regions = [
        MemblockRegion(base=b, size=s, flags=i % 5, flag_names=[]) for i, (b, s) in enumerate(rs)
    ]
    picked = [(r.base, r.size) for r in regions if not mask or r.flags & mask]
    _check(RangeSet.of_memblock(regions, mask), _points(picked))


@settings(max_examples=100, deadline=None)
@given(ranges, ranges, st.lists(st.tuples(st.integers(0, 70), st.integers(1, 9)), max_size=10))
def test_region_views_see_memblock_as_the_union(
    reserved: list[tuple[int, int]], nomap: list[tuple[int, int]], regs: list[tuple[int, int]]
) -> None:
    """Each region's view says reserved exactly when memblock.reserved plus NOMAP
    memory cover it, and lists memblock as a source exactly when they touch it."""
    from rmem_inspect import checks
    from rmem_inspect.model import DtRegion
    from tests.unit.test_golden import load

    snap = load("6.12", "baseline")
    assert snap.memblock is not None and snap.fdt is not None
    page = 0x1000
    bit = snap.memblock.flag_values.get("MEMBLOCK_NOMAP", 4)
    snap.memblock.reserved = [MemblockRegion(b * page, s * page) for b, s in reserved]
    snap.memblock.memory = [MemblockRegion(b * page, s * page, bit) for b, s in nomap]
    snap.fdt.regions = [
        DtRegion(f"/reserved-memory/r{i}", f"r{i}", i, reg=[(b * page, s * page)])
        for i, (b, s) in enumerate(regs)
    ]
    snap.dt = snap.reserved_mem = None
    points = _points(reserved + nomap)
    views = {v.name: v for v in checks.run(snap).regions}
    for i, (b, s) in enumerate(regs):
        want = set(range(b, b + s))
        assert views[f"r{i}"].reserved == (want <= points)
        assert ("memblock" in views[f"r{i}"].sources) == bool(want & points)


@settings(max_examples=300, deadline=None)
@given(ranges, ranges)
def test_intersection_difference_iter_match_brute_force(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    ra, rb = RangeSet(a), RangeSet(b)
    pa, pb = _points(a), _points(b)
    assert _points(list(ra)) == pa
    assert _points(list(ra.intersection(rb))) == pa & pb
    assert _points(list(ra.difference(rb))) == pa - pb
    # the results are merged: no two ranges touch or overlap
    for rs in (ra.intersection(rb), ra.difference(rb)):
        spans = list(rs)
        assert all(b0 + s0 < b1 for (b0, s0), (b1, _) in zip(spans, spans[1:], strict=False))
