# SPDX-License-Identifier: GPL-2.0-or-later
"""
registry
--------

Every check, declared once. A check module declares its codes
(:func:`rmem_inspect.checks.codes.code`) in a :class:`Check` and
:func:`register`\\ s it; from those declarations come
:data:`~rmem_inspect.checks.codes.CODES`, the list of checks
:func:`rmem_inspect.checks.run` runs in order, and the "checks skipped" list of a
report (:func:`~rmem_inspect.checks.codes.skipped_for`), so that a new finding code
is one new module in this package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmem_inspect.checks.codes import CODES, Code

if TYPE_CHECKING:
    from rmem_inspect.checks.context import Context
    from rmem_inspect.checks.findings import RegionView

__all__ = [
    "CHECKS",
    "Check",
    "register",
]


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
