# SPDX-License-Identifier: GPL-2.0-or-later
"""
not_dumped
----------

Tell data a dump does not hold from data that is damaged. A read of reserved_mem
fails either way, but the causes differ: makedumpfile left the page out (libkdumpfile:
"Excluded page"), or no bank file of a raw RAM dump (no PT_LOAD of an ELF dump) covers
the physical address (drgn: "could not find physical memory segment"). When every
reserved_mem error is of that kind, :func:`mark_not_in_dump` records what is not in
the dump, so the checks say so instead of calling the bookkeeping corrupt.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drgn import Program

    from rmem_inspect.model import ReservedMemState

__all__ = ["absent_address", "mark_not_in_dump"]

#: drgn's and libkdumpfile's words for a read of memory the dump does not hold.
_ABSENT = re.compile(
    r"could not find physical memory segment: (0x[0-9a-f]+)|Excluded page: (0x[0-9a-f]+)"
)


def absent_address(error: str) -> tuple[str, int] | None:
    """("phys" or "virt", address) when ``error`` is a read of data not in the dump."""
    m = _ABSENT.search(error)
    if m is None:
        return None
    if m.group(1):
        return "phys", int(m.group(1), 16)
    return "virt", int(m.group(2), 16)


def _gap(prog: Program, phys: int) -> str:
    from rmem_inspect.collect.ramdump import RAMDUMP_CACHE_KEY, RamSet

    ram = prog.cache.get(RAMDUMP_CACHE_KEY)
    if not isinstance(ram, RamSet):
        return f"phys {phys:#x} is in no memory segment of the dump"
    lo, hi = ram.gap_around(phys)
    start = f"{lo:#x}" if lo is not None else "the start of memory"
    end = f"{hi - 1:#x}" if hi is not None else "the end of RAM"
    return (
        f"phys {phys:#x} is in no bank file: no bank covers {start}..{end} "
        f"(the banks are {ram.describe()})"
    )


def mark_not_in_dump(prog: Program, rm: ReservedMemState, excluded: str | None) -> None:
    """Set ``rm.not_in_dump`` when reserved_mem's errors are all reads of data the dump
    does not hold; ``excluded`` is what collect.snapshot.excluded_pages() found."""
    errors = list(rm.errors) + [e.error for e in rm.entries if e.error]
    if not errors:
        return
    found = [absent_address(e) for e in errors]
    if not all(found):
        return  # some of it read and was wrong: that is for RMEM-COUNT-CORRUPT
    what = []
    for kind, address in dict.fromkeys(f for f in found if f is not None):
        if kind == "phys":
            what.append(_gap(prog, address))
        else:
            what.append(f"the page of {address:#x} was left out of the dump")
    if excluded:
        what.append(excluded)
    rm.not_in_dump = "; ".join(what[:4])
