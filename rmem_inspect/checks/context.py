# SPDX-License-Identifier: GPL-2.0-or-later
"""
context
-------

What every check reads, worked out once per snapshot: the devicetree to judge by
(the boot FDT, else the unflattened tree), reserved_mem's entries by name, the
memblock range sets, whether reserved_mem can be trusted, whether the kernel
rejected /reserved-memory as a whole, and the kernel log index. The checks add
their findings here (:meth:`Context.add`).
"""

from __future__ import annotations

import bisect
from typing import Any

from rmem_inspect.checks.codes import CODES
from rmem_inspect.checks.findings import Finding
from rmem_inspect.checks.log_index import LogIndex
from rmem_inspect.kernel.constants import MemblockFlags
from rmem_inspect.kernel.layouts import Layout, OpsLayout
from rmem_inspect.model import (
    DtInfo,
    DtRegion,
    MemblockRegion,
    ReservedMemState,
    RmemEntry,
    Snapshot,
)
from rmem_inspect.ranges import RangeSet, fmt_range

__all__ = [
    "AVAILABLE_STATUSES",
    "GENERIC_INIT",
    "GENERIC_INIT_COMPATIBLES",
    "REJECTED_ROOT_RULE",
    "Context",
    "dt_ranges",
    "jsonable",
    "overlapping",
    "rejected_root",
    "rm_trusted",
]

#: Compatibles whose reservedmem init every kernel with the matching config has
#: (kernel/dma/contiguous.c, coherent.c, swiotlb.c). A region with one of these
#: and NULL ops was not initialised.
GENERIC_INIT_COMPATIBLES = ("shared-dma-pool", "restricted-dma-pool")
GENERIC_INIT = frozenset(GENERIC_INIT_COMPATIBLES)
#: The statuses of an available node (DtRegion.available).
AVAILABLE_STATUSES = ("okay", "ok")


class Context:
    """One snapshot as the checks see it, and the findings they add."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.findings: list[Finding] = []
        self.skipped: dict[str, str] = {}
        self.dt: DtInfo | None = snap.fdt or snap.dt
        rm = snap.reserved_mem
        self.entries: list[RmemEntry] = [e for e in (rm.entries if rm else [])]
        self.by_name: dict[str, RmemEntry] = {}
        for e in self.entries:
            if e.name is not None and e.name not in self.by_name:
                self.by_name[e.name] = e
        mb = snap.memblock
        self.memblock_ok = mb is not None and mb.available
        self.rm_trusted = rm is not None and rm_trusted(rm)
        #: reserved_mem rebuilt from the kernel log (collect/sysfs.py), not read.
        self.derived = rm is not None and rm.ops_layout == OpsLayout.LOG
        nomap = MemblockFlags.MEMBLOCK_NOMAP.value
        nomap_bit = (mb.flag_values.get("MEMBLOCK_NOMAP", nomap) if mb else nomap) or nomap
        self.nomap_bit = nomap_bit
        if mb is not None and self.memblock_ok:
            self.reserved = RangeSet.of_memblock(mb.reserved)
            self.nomap = RangeSet.of_memblock(mb.memory, nomap_bit)
            self.covered = self.reserved.union(self.nomap)
            #: RAM as the kernel saw it: every memblock.memory region, NOMAP or not.
            self.memory = RangeSet.of_memblock(mb.memory)
        else:
            self.reserved = self.nomap = self.covered = self.memory = RangeSet([])
        #: Why the kernel rejects /reserved-memory as a whole (empty: it does not).
        self.rejected_root = rejected_root(self.dt)
        #: Each DT region with its kind, availability and reg ranges, worked out once
        #: for every pass (properties and lists cost per call, and 10,000 regions add up).
        self.regions: list[tuple[DtRegion, str, bool, list[tuple[str, int, int]]]] = []
        add = self.regions.append
        for r in self.dt.regions if self.dt else ():
            reg = r.reg
            # DtRegion.kind and .available, inlined (property calls, 10,000 times over)
            if reg:
                add(
                    (
                        r,
                        "static",
                        r.status in AVAILABLE_STATUSES,
                        [(r.name, reg[0][0], reg[0][1])] if len(reg) == 1 else dt_ranges(r),
                    )
                )
            else:
                add(
                    (
                        r,
                        "dynamic" if r.size is not None else "invalid",
                        r.status in AVAILABLE_STATUSES,
                        [],
                    )
                )
        names = [r.name for r in self.dt.regions] if self.dt else []
        #: Names of the devicetree's regions.
        self.dt_names = dt_names = set(names)
        names += [e.name for e in self.entries if e.name and e.name not in dt_names]
        self.log = LogIndex(snap.log, names)
        #: Region starts of memblock.memory and .reserved, built once for evidence lookups.
        self._starts: dict[str, list[int]] = {}

    def add(
        self, code: str, region: str | None, message: str, severity: str | None = None, **ev: Any
    ) -> None:
        sev = severity or CODES[code][0]
        self.findings.append(Finding(code, sev, region, message, jsonable(ev)))

    def memblock_region_evidence(self, base: int, size: int) -> list[str]:
        mb = self.snap.memblock
        if mb is None:
            return []
        out = []
        for kind, regions in (("memory", mb.memory), ("reserved", mb.reserved)):
            if kind not in self._starts:
                self._starts[kind] = [r.base for r in regions]
            out += overlapping(kind, regions, base, size, self._starts[kind])
        return out[:8]


def overlapping(
    kind: str,
    regions: list[MemblockRegion],
    base: int,
    size: int,
    starts: list[int] | None = None,
) -> list[str]:
    if starts is None:
        starts = [r.base for r in regions]
    i = max(0, bisect.bisect_right(starts, base) - 1)
    out = []
    while i < len(regions) and regions[i].base < base + size:
        r = regions[i]
        if r.base + r.size > base:
            out.append(f"memblock.{kind} {fmt_range(r.base, r.size)} {'|'.join(r.flag_names)}")
        i += 1
    return out


def jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items() if x is not None and x != []}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    return v


def dt_ranges(r: DtRegion) -> list[tuple[str, int, int]]:
    """(name, base, size) of each reg entry; extra entries get name[i]."""
    if len(r.reg) == 1:
        return [(r.name, r.reg[0][0], r.reg[0][1])]
    return [(r.name if i == 0 else f"{r.name}[{i}]", b, s) for i, (b, s) in enumerate(r.reg)]


def rejected_root(dt: DtInfo | None) -> list[str]:
    """
    What makes the kernel ignore the whole /reserved-memory node:
    __reserved_mem_check_root() (drivers/of/fdt.c up to 6.11, of_reserved_mem.c from
    6.12 on; the same in every generation) wants #size-cells and #address-cells equal
    to the root's and a ``ranges`` property. When it fails, fdt_scan_reserved_mem()
    logs "Reserved memory: unsupported node format, ignoring" and returns: nothing
    is reserved, marked no-map or saved, and the late scan refuses the node again.
    """
    if dt is None or not dt.has_reserved_memory:
        return []
    bad = []
    if dt.reserved_memory_address_cells != dt.root_address_cells:
        bad.append(
            f"#address-cells {dt.reserved_memory_address_cells} (root: {dt.root_address_cells})"
        )
    if dt.reserved_memory_size_cells != dt.root_size_cells:
        bad.append(f"#size-cells {dt.reserved_memory_size_cells} (root: {dt.root_size_cells})")
    if not dt.reserved_memory_has_ranges:
        bad.append("no ranges property")
    return bad


#: What RMEM-DT-FORMAT and the drops it causes rest on.
REJECTED_ROOT_RULE = (
    "__reserved_mem_check_root() (drivers/of/of_reserved_mem.c; drivers/of/fdt.c up to "
    "6.11): #size-cells and #address-cells of /reserved-memory must equal the root's and "
    "ranges must be present, else the kernel ignores the whole node"
)


def rm_trusted(rm: ReservedMemState) -> bool:
    """Whether reserved_mem as read can back per-region verdicts: the count is within
    0..capacity and every entry read. Otherwise RMEM-COUNT-CORRUPT says why, and
    "dropped", "never allocated", "untracked" or "orphan" would be guesses. An array
    rebuilt from the kernel log (collect/sysfs.py) is judged by its own rules."""
    if rm.ops_layout == OpsLayout.LOG:
        return True
    if rm.count is None or rm.count < 0:
        return False
    if rm.capacity is not None and rm.count > rm.capacity:
        return False
    if rm.layout == Layout.STATIC_ARRAY and rm.count > rm.max_regions:
        return False
    return not any(e.error for e in rm.entries)
