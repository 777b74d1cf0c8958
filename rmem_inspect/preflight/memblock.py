# SPDX-License-Identifier: GPL-2.0-or-later
"""
Preflight's memblock model
--------------------------

The parts of mm/memblock.c the reserved-memory scan exercises: memory, reserved and
no-map ranges, the top-down/bottom-up search of memblock_phys_alloc_range(), and
the :class:`~rmem_inspect.model.MemblockState` a replay ends with.
"""

from __future__ import annotations

from collections.abc import Iterable

from rmem_inspect.kernel.arch import ARCHES
from rmem_inspect.kernel.constants import MemblockFlags
from rmem_inspect.model import MemblockRegion, MemblockState
from rmem_inspect.ranges import RangeSet

__all__ = ["ANYWHERE", "Memblock", "memblock_state"]

#: memblock_find_in_range_node() never returns the first page (arm64's PAGE_SIZE).
_page_size = ARCHES["arm64"].page_size
assert _page_size
PAGE_SIZE: int = _page_size
#: phys_addr_t "too large" sentinel (MEMBLOCK_ALLOC_ANYWHERE).
ANYWHERE = (1 << 64) - 1
#: enum memblock_flags.
MEMBLOCK_NOMAP = int(MemblockFlags.MEMBLOCK_NOMAP)


class Memblock:
    """The parts of mm/memblock.c the reserved-memory scan exercises."""

    def __init__(self, memory: Iterable[tuple[int, int]]) -> None:
        self.memory = RangeSet(memory)
        self.reserved = RangeSet(())
        self.nomap = RangeSet(())
        self.bottom_up = False

    def reserve(self, base: int, size: int) -> None:
        self.reserved = self.reserved.union(RangeSet([(base, size)]))

    def free(self, base: int, size: int) -> None:
        self.reserved = self.reserved.difference(RangeSet([(base, size)]))

    def cap(self, base: int, size: int) -> None:
        """memblock_cap_memory_range(): keep memory and reservations in [base, base + size)."""
        window = RangeSet([(base, size)])
        self.memory = self.memory.intersection(window)
        self.reserved = self.reserved.intersection(window)

    def add(self, base: int, size: int) -> None:
        self.memory = self.memory.union(RangeSet([(base, size)]))

    def limit(self, limit: int) -> int | None:
        """memblock_mem_limit_remove_map(): cap memory where ``limit`` bytes are reached
        (__find_max_addr()); the address it cut at, None when it cut nothing (a limit of
        0, "if (!limit) return;", or one beyond RAM)."""
        if not limit:
            return None
        for b, s in self.memory:
            if limit <= s:
                self.cap(0, b + limit)
                return b + limit
            limit -= s
        return None

    def mark_nomap(self, base: int, size: int) -> None:
        # memblock_mark_nomap() only flags memory that exists.
        self.nomap = self.nomap.union(RangeSet(self.memory.pieces(base, size)))

    def clear_nomap(self, base: int, size: int) -> None:
        self.nomap = self.nomap.difference(RangeSet([(base, size)]))

    def overlaps_memory(self, base: int, size: int) -> bool:
        return self.memory.overlaps(base, size)

    def is_region_reserved(self, base: int, size: int) -> bool:
        return self.reserved.overlaps(base, size)

    def phys_alloc_range(self, size: int, align: int, start: int, end: int) -> int:
        """memblock_phys_alloc_range(): 0 on failure, the base otherwise (and reserve it)."""
        start = max(start, PAGE_SIZE)
        if end == ANYWHERE:
            end = max((b + s for b, s in self.memory), default=0)
        free = self.memory.difference(self.nomap).difference(self.reserved)
        window = free.pieces(start, end - start) if end > start else []
        found = 0
        if self.bottom_up:
            for b, s in window:
                cand = -(-b // align) * align
                if cand + size <= b + s:
                    found = cand
                    break
        else:
            for b, s in reversed(window):
                if s < size:
                    continue
                cand = (b + s - size) // align * align
                if cand >= b:
                    found = cand
                    break
        if found:
            self.reserve(found, size)
        return found


def memblock_state(mb: Memblock) -> MemblockState:
    memory = []
    for b, s in mb.memory.difference(mb.nomap):
        memory.append(MemblockRegion(b, s, 0, ["MEMBLOCK_NONE"]))
    for b, s in mb.nomap:
        memory.append(MemblockRegion(b, s, MEMBLOCK_NOMAP, ["MEMBLOCK_NOMAP"]))
    memory.sort(key=lambda r: r.base)
    reserved = [MemblockRegion(b, s, 0, ["MEMBLOCK_NONE"]) for b, s in mb.reserved]
    return MemblockState(
        available=True,
        memory=memory,
        reserved=reserved,
        flag_values={"MEMBLOCK_NONE": 0, "MEMBLOCK_NOMAP": MEMBLOCK_NOMAP},
        note="simulated by preflight from the DT memory nodes",
    )
