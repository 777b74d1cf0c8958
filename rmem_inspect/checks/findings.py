# SPDX-License-Identifier: GPL-2.0-or-later
"""
findings
--------

What the checks produce: a :class:`Finding` per problem found, a
:class:`RegionView` per region (how every source sees it, and its
:class:`Verdict`), and the :class:`Report` that holds both.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from rmem_inspect.model import Snapshot

__all__ = [
    "SEVERITY_ORDER",
    "Finding",
    "RegionView",
    "Report",
    "Severity",
    "Verdict",
]


class Severity(enum.StrEnum):
    """How bad a finding is; warning and error give exit status 1."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


#: Sort rank of each severity, worst first.
SEVERITY_ORDER: dict[str, int] = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Verdict(enum.StrEnum):
    """One region's state as the checks judge it (``RegionView.verdict``)."""

    #: Tracked, reserved and where the devicetree says.
    OK = "ok"
    #: Overlaps another region.
    OVERLAP = "overlap"
    #: Reserved in memblock but not in reserved_mem.
    UNTRACKED = "untracked"
    #: A dynamic region that never got memory.
    UNALLOCATED = "unallocated"
    #: Not in reserved_mem.
    DROPPED = "dropped"
    #: Some other finding at error.
    ERROR = "error"
    #: status = "disabled": skipped by the kernel on purpose.
    DISABLED = "disabled"
    #: Given way on purpose (a linux,cma-default pool to cma=).
    SKIPPED = "skipped"
    #: reserved_mem could not be trusted, so whether the kernel tracks it is not known.
    UNKNOWN = "unknown"


@dataclass
class Finding:
    """One problem: its code, severity, region (None: the kernel as a whole), a
    sentence, and the evidence it was decided on."""

    code: str
    severity: str
    region: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RegionView:
    """One region as every source sees it (an entry of the JSON ``regions``)."""

    name: str
    base: int | None
    size: int | None
    kind: str
    nomap: bool = False
    reusable: bool = False
    compatible: list[str] = field(default_factory=list)
    status: str = "okay"
    tracked: bool = False
    #: Covered by memblock.reserved or NOMAP memory (None: memblock not available).
    reserved: bool | None = None
    sources: list[str] = field(default_factory=list)
    #: The worst :class:`Verdict` that applies.
    verdict: str = Verdict.OK
    dt_index: int | None = None
    rmem_index: int | None = None
    log: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Every region's view, every finding, and the checks that could not run."""

    snapshot: Snapshot
    regions: list[RegionView]
    findings: list[Finding]
    #: Checks that could not run, with the source they lacked.
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def worst(self) -> str | None:
        sev = [f.severity for f in self.findings]
        for s in Severity:
            if s in sev:
                return str(s)
        return None

    def exit_status(self) -> int:
        return (
            1 if any(f.severity in (Severity.ERROR, Severity.WARNING) for f in self.findings) else 0
        )
