# SPDX-License-Identifier: GPL-2.0-or-later
"""
codes
-----

Every finding code, declared once: its severity, meaning, the sources of the
snapshot it is decided on (:class:`Need`), the advice the root-cause summary gives
and the codes it explains (:class:`Code`, made by :func:`code`). A check module
declares its codes in its :class:`~rmem_inspect.checks.registry.Check`;
:func:`~rmem_inspect.checks.registry.register` fills :data:`CODES` from those
declarations, and :func:`skipped_for` derives a report's "checks skipped" list
from their needs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "CODES",
    "Code",
    "Need",
    "code",
    "skipped_for",
]


class Need(enum.Enum):
    """A source of the snapshot a finding code needs, or a property of one."""

    #: The devicetree (boot FDT or unflattened tree).
    DEVICETREE = "devicetree"
    #: reserved_mem as read.
    RESERVED_MEM = "reserved_mem"
    #: reserved_mem with a count within its capacity and every entry read.
    RESERVED_MEM_TRUSTED = "reserved_mem (corrupt: see RMEM-COUNT-CORRUPT)"
    #: reserved_mem read from kernel memory, not rebuilt from the kernel log.
    RESERVED_MEM_IN_MEMORY = "reserved_mem in kernel memory (rebuilt from the kernel log)"
    #: memblock.memory and memblock.reserved, still valid after boot.
    MEMBLOCK = "memblock"
    #: The kernel page tables over the no-map regions.
    PAGE_TABLES = "page tables"
    #: The kernel's CMA areas.
    CMA = "CMA areas"


#: What each need implies: a code that needs trusted reserved_mem needs reserved_mem.
_IMPLIES: dict[Need, tuple[Need, ...]] = {
    Need.RESERVED_MEM_TRUSTED: (Need.RESERVED_MEM,),
    Need.RESERVED_MEM_IN_MEMORY: (Need.RESERVED_MEM,),
}


class Code(NamedTuple):
    """One finding code. ``CODES[code][0]`` is its severity, ``[1]`` its meaning."""

    #: Default severity (a check may raise it for one finding).
    severity: str
    #: What the code means, in a few words.
    meaning: str
    #: The code itself, RMEM-...
    code: str
    #: Sources it is decided on; with a qualifier, only that part of it needs the source.
    needs: tuple[tuple[Need, str], ...] = ()
    #: What to do, for the root-cause summary (``{capacity}`` is the array's).
    advice: str | None = None
    #: Codes that this one explains on the same region (consequences, not causes).
    consequences: frozenset[str] = frozenset()
    #: A boot verdict that explains a run-time failure of the region (trace).
    explains_failure: bool = False


def code(
    name: str,
    severity: str,
    meaning: str,
    *,
    needs: Iterable[Need | tuple[Need, str]] = (),
    advice: str | None = None,
    consequences: Iterable[str] = (),
    explains_failure: bool = False,
) -> Code:
    """A :class:`Code`; ``needs`` items are a :class:`Need` or (need, qualifier)."""
    return Code(
        severity,
        meaning,
        name,
        tuple(n if isinstance(n, tuple) else (n, "") for n in needs),
        advice,
        frozenset(consequences),
        explains_failure,
    )


#: Every finding code, by code, in run order (filled by
#: :func:`rmem_inspect.checks.registry.register`).
CODES: dict[str, Code] = {}


def _closure(needs: tuple[tuple[Need, str], ...]) -> dict[Need, str]:
    out: dict[Need, str] = {}
    for need, qualifier in needs:
        for n in (need, *_IMPLIES.get(need, ())):
            out.setdefault(n, qualifier)
    return out


def skipped_for(unmet: Iterable[tuple[Need, str]]) -> dict[str, str]:
    """The report's "checks skipped": for each unmet need (with why), the codes that
    need it, from their declarations ("RMEM-X, RMEM-Y (part)" -> why)."""
    out: dict[str, str] = {}
    for need, why in unmet:
        names = []
        for c in CODES.values():
            qualifier = _closure(c.needs).get(need)
            if qualifier is not None:
                names.append(f"{c.code} ({qualifier})" if qualifier else c.code)
        if names:
            out[", ".join(names)] = why
    return out
