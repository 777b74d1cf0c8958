# SPDX-License-Identifier: GPL-2.0-or-later
"""
Synthetic snapshots for the scale benchmark and the complexity test.

:func:`grow` takes a real snapshot (a golden one from ``tests/golden/``, read
from a factory dump) and adds ``regions`` reserved-memory regions and
``memblock`` unrelated ``memblock.reserved`` entries, the way a 6.12+ kernel
(dynamic ``reserved_mem`` array) would show them: every region is in the boot
FDT and the unflattened tree, gets a ``reserved_mem`` entry, a memblock entry
(``memblock.reserved``, or a ``MEMBLOCK_NOMAP`` split of ``memblock.memory`` for
no-map regions) and the ``OF: reserved mem:`` log line the kernel prints for it.

Regions are 64 KiB, 128 KiB apart (so memblock does not merge them), above the
golden snapshot's RAM. One in 10 is no-map, one in 7 dynamic (placed inside its
``alloc-ranges`` window, aligned). With ``dropped_every=k`` every k-th fixed
region has no ``reserved_mem`` entry although memblock reserves it, as when the
array is full: each such region must yield RMEM-DROPPED and RMEM-UNTRACKED, and
nothing else may be reported for the synthetic regions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from rmem_inspect.model import (
    DtRegion,
    LogLine,
    MemblockRegion,
    RmemEntry,
    Snapshot,
)

__all__ = ["Grown", "grow"]

KiB = 1024
#: Where the synthetic regions start (above the 1 GiB of RAM at 0x40000000 of the dumps).
BASE = 0x1_0000_0000
SIZE = 64 * KiB
STRIDE = 128 * KiB
#: Unrelated memblock.reserved entries (4 KiB, 8 KiB apart) start here.
EXTRA_BASE = 0x8_0000_0000
#: Where the synthetic dynamic reserved_mem array lives.
ARRAY_BASE = 0x7_0000_0000
NOMAP_EVERY = 10
DYNAMIC_EVERY = 7


@dataclass
class Grown:
    """A grown snapshot and what the checks must find in its synthetic part."""

    snapshot: Snapshot
    #: Names of every synthetic region.
    names: list[str]
    #: Names of the fixed regions left out of reserved_mem.
    dropped: list[str]
    #: memblock entries in the snapshot (memory + reserved).
    memblock_entries: int


def _flags(snap: Snapshot, name: str, default: int) -> int:
    mb = snap.memblock
    return (mb.flag_values.get(name, default) if mb else default) or default


def grow(
    golden: Snapshot,
    regions: int,
    memblock: int,
    dropped_every: int = 0,
    name_type: Callable[[str], str] = str,
) -> Grown:
    """A copy of ``golden`` with ``regions`` more regions and ``memblock`` more
    memblock.reserved entries (see the module docstring). ``name_type`` builds the
    region names (a counting ``str`` subclass in the complexity test)."""
    snap = copy.deepcopy(golden)
    rm = snap.reserved_mem
    mb = snap.memblock
    if rm is None or mb is None or snap.fdt is None or rm.layout != "dynamic-array":
        raise ValueError("grow() needs a dynamic-array snapshot with memblock and the FDT")
    nomap_bit = _flags(snap, "MEMBLOCK_NOMAP", 4)
    log = snap.log if snap.log is not None else []
    first_index = len(snap.fdt.regions)
    names: list[str] = []
    dropped: list[str] = []
    new_dt: list[DtRegion] = []
    new_entries: list[RmemEntry] = []
    reserved: list[tuple[int, int]] = []
    nomap: list[tuple[int, int]] = []
    entry_size = rm.entry_size or 40
    for i in range(regions):
        base = BASE + i * STRIDE
        index = first_index + i
        is_nomap = i % NOMAP_EVERY == 0
        is_dynamic = not is_nomap and i % DYNAMIC_EVERY == 0
        if is_dynamic:
            name = name_type(f"syn-pool{i}")
            r = DtRegion(
                path=f"/reserved-memory/syn-pool{i}",
                name=name,
                index=index,
                size=SIZE,
                alignment=SIZE,
                alloc_ranges=[(base, STRIDE)],
            )
        else:
            name = name_type(f"syn{i}@{base:x}")
            r = DtRegion(
                path=f"/reserved-memory/syn{i}@{base:x}",
                name=name,
                index=index,
                reg=[(base, SIZE)],
                nomap=is_nomap,
            )
        names.append(name)
        new_dt.append(r)
        (nomap if is_nomap else reserved).append((base, SIZE))
        if dropped_every and not is_dynamic and i % dropped_every == dropped_every - 1:
            dropped.append(name)
            continue
        log.append(
            LogLine(
                text=f"OF: reserved mem: {base:#018x}..{base + SIZE - 1:#018x} (64 KiB) "
                f"{'nomap' if is_nomap else 'map'} non-reusable {name}",
                timestamp=0.0,
            )
        )
        new_entries.append(
            RmemEntry(
                index=len(rm.entries) + len(new_entries),
                address=rm.array_address + (len(rm.entries) + len(new_entries)) * entry_size,
                name=name,
                base=base,
                size=SIZE,
            )
        )
    snap.fdt.regions.extend(new_dt)
    if snap.dt is not None:
        snap.dt.regions.extend(copy.deepcopy(new_dt))
    snap.log = log
    rm.entries.extend(new_entries)
    rm.count = len(rm.entries)
    rm.capacity = len(rm.entries)
    rm.array_phys = ARRAY_BASE
    rm.array_reserved_range = (ARRAY_BASE, rm.capacity * entry_size)
    reserved.append(rm.array_reserved_range)
    reserved += [(EXTRA_BASE + j * 8 * KiB, 4 * KiB) for j in range(memblock)]
    none = ["MEMBLOCK_NONE"]
    mb.reserved = sorted(
        mb.reserved + [MemblockRegion(b, s, 0, list(none), 0) for b, s in reserved],
        key=lambda r: r.base,
    )
    # memblock.memory over the synthetic range: NOMAP entries split the normal memory.
    memory: list[MemblockRegion] = []
    cursor = BASE
    end = BASE + max(regions, 1) * STRIDE
    for b, s in nomap:
        if b > cursor:
            memory.append(MemblockRegion(cursor, b - cursor, 0, list(none), 0))
        memory.append(MemblockRegion(b, s, nomap_bit, ["MEMBLOCK_NOMAP"], 0))
        cursor = b + s
    if cursor < end:
        memory.append(MemblockRegion(cursor, end - cursor, 0, list(none), 0))
    mb.memory = sorted(mb.memory + memory, key=lambda r: r.base)
    return Grown(
        snapshot=snap,
        names=names,
        dropped=dropped,
        memblock_entries=len(mb.memory) + len(mb.reserved),
    )
