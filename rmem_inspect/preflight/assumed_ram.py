# SPDX-License-Identifier: GPL-2.0-or-later
"""
preflight.assumed_ram
---------------------

RAM for a DTB that leaves the memory size to the boot loader (``memory@X`` with size 0 or
no ``reg``: 381 of the 679 board DTBs with a /reserved-memory that Debian's generic arm64
kernel ships). Most of what preflight predicts does not depend on the RAM size (array
capacity, the dynamic limit, invalid properties, overlaps, no-map conflicts, the windows
alloc-ranges give), so preflight answers with a stated assumption instead of refusing:

- RAM starts at the lowest memory node's base (its ``reg`` base, or its unit address when
  it has no ``reg``); with no memory node, at the lowest ``reg`` or ``alloc-ranges`` start;
- it ends at the highest ``reg`` or ``alloc-ranges`` end above that base, plus room for
  every dynamic region (size and alignment), as one bank.

Which findings rest on that (where RAM ends, what is in RAM, where an allocation lands)
is said in each of them; ``--memory`` gives the exact replay.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmem_inspect.checks import Report
from rmem_inspect.formats.devicetree import RawNode
from rmem_inspect.model import DtInfo
from rmem_inspect.preflight.replay import Placement

__all__ = ["RAM_CODES", "AssumedRam", "assume_ram", "mark_assumed"]

#: Findings whose verdict depends on where RAM is and how large it is.
RAM_CODES = frozenset(
    {
        "RMEM-OUTSIDE-RAM",
        "RMEM-UNALLOCATED",
        "RMEM-DROPPED",
        "RMEM-NOT-RESERVED",
        "RMEM-NOMAP-MISSING",
        "RMEM-NOMAP-MAPPED",
        "RMEM-ALLOC-RANGE",
        "RMEM-CMA-MISSING",
        "RMEM-UNTRACKED",
        "RMEM-CONSUMER-ORPHAN",
    }
)
#: Room left for a dynamic region below the assumed end, beyond size + alignment.
SLACK = 2 << 20


@dataclass(frozen=True)
class AssumedRam:
    base: int
    size: int
    #: What the base was taken from.
    rule: str

    def sentence(self) -> str:
        return (
            f"RAM assumed {self.base:#x}..{self.base + self.size - 1:#x} ({self.rule}; "
            "the DTB leaves the memory size to the boot loader; give --memory for the exact "
            "replay)"
        )


def _memory_bases(root: RawNode, dt: DtInfo) -> list[int]:
    bases = [b for b, _s in dt.memory]
    for child in root.children:
        unit = child.name.partition("@")[2]
        dtype = child.props.get("device_type", b"").split(b"\0")[0]
        if (dtype == b"memory" or child.name.startswith("memory@")) and "reg" not in child.props:
            try:
                bases.append(int(unit, 16))
            except ValueError:
                continue
    return bases


def assume_ram(root: RawNode, dt: DtInfo, cma_alignment: int) -> AssumedRam:
    """One bank of RAM by the rule of this module's docstring."""
    windows = [(b, s) for r in dt.regions if r.available for b, s in (*r.reg, *r.alloc_ranges) if s]
    bases = _memory_bases(root, dt)
    if bases:
        base, rule = min(bases), "from the memory node's base"
    elif windows:
        base, rule = min(b for b, _s in windows), "no memory node: from the lowest carve-out"
    else:
        base, rule = 0, "no memory node and no carve-out address: from 0"
    end = max([b + s for b, s in windows if b + s > base] + [base])
    for r in dt.regions:
        if r.available and not r.reg and r.size:
            end += r.size + max(r.alignment or 0, cma_alignment if r.reusable else 0) + SLACK
    end = max(end, base + SLACK)
    rule += " up to the highest reg/alloc-ranges end plus room for the dynamic regions"
    return AssumedRam(base, end - base, rule)


def mark_assumed(report: Report, ram: AssumedRam, placements: list[Placement]) -> None:
    """Say in each finding that rests on the assumed RAM that it does."""
    reasons = {p.name: p.reason for p in placements}
    for f in report.findings:
        if f.code not in RAM_CODES:
            continue
        if f.code in ("RMEM-DROPPED", "RMEM-UNALLOCATED", "RMEM-CONSUMER-ORPHAN") and (
            "allocation" not in reasons.get(f.region or "", "")
        ):
            continue  # dropped for a reason RAM does not change (array, limit, property)
        f.message = f.message.rstrip(".") + f"; this rests on the {ram.sentence()}."
        f.evidence["assumed_memory"] = [f"{ram.base:#x}..{ram.base + ram.size - 1:#x}"]
