# SPDX-License-Identifier: GPL-2.0-or-later
"""
registry
--------

Every finding code and every check, declared once. A check module declares its
codes (severity, meaning, the sources each needs, the advice the root-cause
summary gives) in a :class:`Check` and :func:`register`\\ s it; from those
declarations come :data:`CODES`, the list of checks :func:`rmem_inspect.checks.run`
runs in order, and the "checks skipped" list of a report (:func:`skipped_for`), so
that a new finding code is one new module in this package.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from rmem_inspect.checks.context import Context
    from rmem_inspect.checks.findings import RegionView

__all__ = [
    "CHECKS",
    "CODES",
    "Check",
    "Code",
    "Need",
    "code",
    "register",
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


@dataclass(frozen=True)
class Check:
    """One pass over the snapshot: the codes it may report and the function."""

    #: Short name (the module's).
    name: str
    #: Passes run in ascending order (a region's verdict set by an earlier pass wins).
    order: int
    #: Its codes.
    codes: tuple[Code, ...]
    #: The pass: adds findings to the context and sets verdicts on the views (None:
    #: its codes are decided inside another pass, named in its module).
    run: Callable[[Context, dict[str, RegionView]], None] | None


#: Every finding code, by code (filled by :func:`register`).
CODES: dict[str, Code] = {}
#: Every check, in run order (filled by :func:`register`).
CHECKS: list[Check] = []


def register(check: Check) -> Check:
    """Add ``check`` and its codes to the registry; a code declared twice is a bug."""
    for c in check.codes:
        if c.code in CODES:
            raise ValueError(f"finding code {c.code} declared twice")
    CHECKS.append(check)
    CHECKS.sort(key=lambda k: k.order)
    # CODES in run order, whatever order the modules were imported in
    codes = [c for k in CHECKS for c in k.codes]
    CODES.clear()
    CODES.update((c.code, c) for c in codes)
    return check


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
