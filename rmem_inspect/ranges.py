# SPDX-License-Identifier: GPL-2.0-or-later
"""
Ranges
------

Physical address ranges: :class:`RangeSet`, a merged union of ``[base, end)`` spans
with O(log n) coverage queries (memblock's lists, the linear map, the DT's regions),
and the formatting every output uses for a range and a size. Pure Python: the
checks, preflight and the outputs share it.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rmem_inspect.model import MemblockRegion

__all__ = ["RangeSet", "fmt_range", "human_size"]


def fmt_range(base: int | None, size: int | None) -> str:
    """``base..last (size)``, or ``?`` when either is unknown."""
    if base is None or size is None:
        return "?"
    return (
        f"{base:#x}..{base + size - 1:#x} ({human_size(size)})" if size else f"{base:#x} (size 0)"
    )


def human_size(size: int) -> str:
    """A size in the largest binary unit that divides it (``32 MiB``), else bytes/KiB."""
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= div and size % div == 0:
            return f"{size // div} {unit}"
    return f"{size} B" if size < 1024 else f"{size / 1024:.1f} KiB"


_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)


class RangeSet:
    """A union of [base, end) ranges, merged, with O(log n) coverage queries."""

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        self.starts, self.ends = self._merge(sorted((b, b + s) for b, s in ranges if s > 0))

    @staticmethod
    def _merge(spans: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
        """Merge [base, end) spans sorted by base into disjoint starts and ends."""
        spans = list(spans)
        return RangeSet._merge_lists(list(map(_FIRST, spans)), list(map(_SECOND, spans)))

    @staticmethod
    def _merge_lists(starts: list[int], ends: list[int]) -> tuple[list[int], list[int]]:
        """Merge the spans [starts[i], ends[i]), sorted by start, into disjoint ones."""
        if all(map(operator.lt, ends[:-1], starts[1:])):
            return starts, ends  # none overlaps or touches the next (memblock's usual state)
        out_starts: list[int] = []
        out_ends: list[int] = []
        add_start, add_end = out_starts.append, out_ends.append
        last = starts[0] - 1 if starts else 0  # below every start, even a corrupt negative one
        for base, end in zip(starts, ends, strict=True):
            if base > last:
                add_start(base)
                add_end(end)
                last = end
            elif end > last:
                out_ends[-1] = last = end
        return out_starts, out_ends

    @classmethod
    def of_memblock(cls, regions: Iterable[MemblockRegion], flags: int = 0) -> RangeSet:
        """The memblock regions (those with any of ``flags`` set, when given)."""
        picked = [r for r in regions if r.size > 0 and (not flags or r.flags & flags)]
        out = cls(())
        starts = [r.base for r in picked]
        ends = [r.base + r.size for r in picked]
        # memblock keeps its arrays sorted and merges neighbours: when each range ends
        # before the next starts, the starts are sorted too and the set is ready
        if all(map(operator.lt, ends[:-1], starts[1:])):
            out.starts, out.ends = starts, ends
        else:
            out.starts, out.ends = cls._merge(sorted(zip(starts, ends, strict=True)))
        return out

    def union(self, other: RangeSet) -> RangeSet:
        """Both sets' ranges, merged (linear: both are sorted already)."""
        big, small = (self, other) if len(self.starts) >= len(other.starts) else (other, self)
        # Slot each range of the smaller set in among the larger set's, slices
        # copied whole between them (no per-range work on the larger set).
        starts: list[int] = []
        ends: list[int] = []
        done = 0
        for s, e in zip(small.starts, small.ends, strict=True):
            at = bisect.bisect_right(big.starts, s, done)
            starts += big.starts[done:at]
            ends += big.ends[done:at]
            starts.append(s)
            ends.append(e)
            done = at
        starts += big.starts[done:]
        ends += big.ends[done:]
        out = RangeSet(())
        out.starts, out.ends = self._merge_lists(starts, ends)
        return out

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """The merged ranges as (base, size), in address order."""
        for b, e in zip(self.starts, self.ends, strict=True):
            yield b, e - b

    def intersection(self, other: RangeSet) -> RangeSet:
        """The parts of ``self`` inside ``other``."""
        return RangeSet(p for b, s in other for p in self.pieces(b, s))

    def difference(self, other: RangeSet) -> RangeSet:
        """The parts of ``self`` outside ``other``."""
        out: list[tuple[int, int]] = []
        for b, s in self:
            at, end = b, b + s
            for ob, osz in other.pieces(b, s):
                if ob > at:
                    out.append((at, ob - at))
                at = ob + osz
            if at < end:
                out.append((at, end - at))
        return RangeSet(out)

    def covers(self, base: int, size: int) -> bool:
        """Is all of [base, base + size) inside the union?"""
        i = bisect.bisect_right(self.starts, base) - 1
        return i >= 0 and self.ends[i] >= base + size

    def overlaps(self, base: int, size: int) -> bool:
        i = bisect.bisect_left(self.ends, base + 1)
        return i < len(self.starts) and self.starts[i] < base + size

    def pieces(self, base: int, size: int) -> list[tuple[int, int]]:
        """The parts (base, size) of [base, base + size) inside the union."""
        end = base + size
        out = []
        i = max(0, bisect.bisect_right(self.starts, base) - 1)
        while i < len(self.starts) and self.starts[i] < end:
            lo, hi = max(base, self.starts[i]), min(end, self.ends[i])
            if lo < hi:
                out.append((lo, hi - lo))
            i += 1
        return out

    def containing(self, base: int) -> tuple[int, int] | None:
        i = bisect.bisect_right(self.starts, base) - 1
        if i >= 0 and base < self.ends[i]:
            return self.starts[i], self.ends[i] - self.starts[i]
        return None
