# SPDX-License-Identifier: GPL-2.0-or-later
"""
causes
------

Group a report's findings by root cause, so that a field engineer reads the one
thing to fix first and the per-region detail after it. A pure function of the
findings (:func:`root_causes`); the renderers put its result first.

A finding is a *consequence* when another finding on the same region explains
it by the kernel's own code:

- a region missing from ``reserved_mem`` (RMEM-DROPPED) was never allocated when
  it is dynamic (RMEM-UNALLOCATED: 6.1's fdt_init_reserved_mem() and 6.12's
  fdt_scan_reserved_mem() allocate only what they saved), stays memblock-reserved
  but untracked when it is static (RMEM-UNTRACKED: early_init_dt_reserve_memory()
  ran before the save), gets no CMA area (RMEM-CMA-MISSING: rmem_cma_setup() runs
  from __reserved_mem_init_node() on saved entries only) and fails its consumers
  (RMEM-CONSUMER-ORPHAN: of_reserved_mem_lookup() searches the saved entries);
- a no-map region over memory another region already reserved is refused with
  -EBUSY by early_init_dt_reserve_memory() (drivers/of/of_reserved_mem.c, 6.1:
  drivers/of/fdt.c; the kernel logs "failed to reserve memory for node"), so
  RMEM-NOMAP-MISSING and then RMEM-NOMAP-MAPPED follow from the RMEM-OVERLAP;
- a finding about the whole array or node explains the regions it hit: the static
  array being full (RMEM-STATIC-ARRAY at error: fdt_reserved_mem_save_node() logs
  "not enough space for all defined regions." and returns) explains each
  RMEM-DROPPED carrying that log line; a /reserved-memory node the kernel rejects
  (RMEM-DT-FORMAT: __reserved_mem_check_root() fails and the scan returns before
  any child) explains every RMEM-DROPPED, and every no-map never applied.

The remaining (root) findings are grouped by code and by the finding's ``cause``
evidence with its numbers masked ("this node is number 65" and "... 66" are one
cause), never by message text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rmem_inspect.checks import CODES, Finding, Report

__all__ = ["ADVICE", "CONSEQUENCES", "Cause", "collapse_names", "root_causes"]

_SEVERITY = {"error": 0, "warning": 1, "info": 2}

#: code -> codes that the first explains on the same region (see the module docstring),
#: as each code declares them (rmem_inspect/checks/codes.py).
CONSEQUENCES: dict[str, frozenset[str]] = {
    c.code: c.consequences for c in CODES.values() if c.consequences
}

#: What a rejected /reserved-memory node (RMEM-DT-FORMAT) causes: none of its regions is
#: reserved, tracked or marked no-map.
_NODE_IGNORED = frozenset({"RMEM-DROPPED", "RMEM-NOMAP-MISSING", "RMEM-NOMAP-MAPPED"})

#: Kernel log lines (drivers/of/of_reserved_mem.c, drivers/of/fdt.c) that say why.
_ARRAY_FULL = "not enough space for all defined regions"
_DYNAMIC_LIMIT = "too many defined dynamic regions"
_ALLOC_FAILED = "failed to allocate memory for node"
_RESERVE_FAILED = "failed to reserve memory for node"

#: What to do, by root code, as each code declares it; a kernel log line in the evidence
#: can refine it (_LOG_ADVICE).
ADVICE: dict[str, str] = {c.code: c.advice for c in CODES.values() if c.advice}

_LOG_ADVICE = (
    (
        _DYNAMIC_LIMIT,
        "at most 64 regions may be dynamic (size, no reg): give the others a fixed reg, or "
        "merge them",
    ),
    (
        _ARRAY_FULL,
        "the kernel's reserved_mem array is full: define fewer regions or boot a kernel with "
        "a larger array",
    ),
    (
        _ALLOC_FAILED,
        "make room for the region: widen or move its alloc-ranges, lower its size or "
        "alignment, or move what is already reserved in the window",
    ),
    (
        "only the first is used",
        "the kernel tracks only a node's first reg entry: split the node, one node per range",
    ),
    (
        "ignores",
        "the kernel tracks only a node's first reg entry: split the node, one node per range",
    ),
    (
        _RESERVE_FAILED,
        "the range is already reserved by another region or the boot loader: move one of " "them",
    ),
)


@dataclass
class Cause:
    """One root cause: the finding that explains, and every region it hit."""

    #: One line: what went wrong.
    cause: str
    #: Code of the root finding(s).
    code: str
    #: The worst severity among the cause's findings.
    severity: str
    regions: list[str] = field(default_factory=list)
    #: What was read that shows it (kernel log lines, the global finding's evidence).
    evidence: dict[str, Any] = field(default_factory=dict)
    #: What to do about it.
    advice: str = ""
    #: Indices into ``report.findings`` of every finding this cause explains.
    findings: list[int] = field(default_factory=list)

    @property
    def regions_text(self) -> str:
        return collapse_names(self.regions)

    def to_json(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "code": self.code,
            "severity": self.severity,
            "regions": self.regions,
            "evidence": self.evidence,
            "advice": self.advice,
            "findings": self.findings,
        }


_NUMBERED = re.compile(r"(.*?)(\d+)(@[0-9a-fA-F]+)?")


def collapse_names(names: list[str]) -> str:
    """``pool14, pool15, ..., pool39, linux,cma`` -> ``pool14..pool39, linux,cma``.

    Runs of three or more names that differ only by a consecutive number (an
    optional ``@unit-address`` after it) become ``first..last``.
    """
    out: list[str] = []
    run: list[str] = []
    prev: tuple[str, int] | None = None

    def flush() -> None:
        if len(run) >= 3:
            out.append(f"{run[0]}..{run[-1]}")
        else:
            out.extend(run)
        run.clear()

    for name in names:
        m = _NUMBERED.fullmatch(name)
        key = (m.group(1), int(m.group(2))) if m else None
        if key is not None and prev is not None and key == (prev[0], prev[1] + 1):
            run.append(name)
        else:
            flush()
            run.append(name)
        prev = key
    flush()
    return ", ".join(out)


def _log(f: Finding) -> list[str]:
    log = f.evidence.get("log")
    if isinstance(log, str):
        return [log]
    if isinstance(log, list):
        return [x for x in log if isinstance(x, str)]
    return []


def _logs_say(f: Finding, text: str) -> bool:
    return any(text in line for line in _log(f))


def _mask(text: str) -> str:
    return re.sub(r"0x[0-9a-fA-F]+|\d+", "#", text)


def root_causes(report: Report) -> list[Cause]:
    """The report's findings grouped by root cause, worst first."""
    findings = report.findings
    by_region: dict[str, list[int]] = {}
    for i, f in enumerate(findings):
        if f.region is not None:
            by_region.setdefault(f.region, []).append(i)
    parent: dict[int, int] = {}
    # Same-region consequences (CONSEQUENCES), repeated so that chains resolve.
    for idxs in by_region.values():
        for i in idxs:
            for j in idxs:
                if i != j and findings[j].code in CONSEQUENCES.get(findings[i].code, ()):
                    if findings[i].code in CONSEQUENCES.get(findings[j].code, ()):
                        continue  # mutual: keep both as roots
                    parent.setdefault(j, i)
    # A no-map region refused because another region already reserved the range.
    for i, f in enumerate(findings):
        if f.code != "RMEM-OVERLAP" or f.region is None:
            continue
        other = f.evidence.get("other")
        for j in by_region.get(other, []) if isinstance(other, str) else []:
            g = findings[j]
            if g.code == "RMEM-NOMAP-MISSING" and _logs_say(g, _RESERVE_FAILED):
                parent.setdefault(j, i)
    # Findings about the whole node or array that explain regions.
    for i, f in enumerate(findings):
        if f.severity == "info":
            continue
        for j, g in enumerate(findings):
            if j == i or j in parent:
                continue
            if (f.code == "RMEM-DT-FORMAT" and g.code in _NODE_IGNORED) or (
                f.code == "RMEM-STATIC-ARRAY"
                and f.region is None
                and g.code == "RMEM-DROPPED"
                and _logs_say(g, _ARRAY_FULL)
            ):
                parent[j] = i

    def root(j: int) -> int:
        seen = {j}
        while j in parent and parent[j] not in seen:
            j = parent[j]
            seen.add(j)
        return j

    order = {v.name: n for n, v in enumerate(report.regions)}
    groups: dict[tuple[str, str], list[int]] = {}
    members: dict[int, list[int]] = {}
    for j in range(len(findings)):
        members.setdefault(root(j), []).append(j)
    for r in sorted(members):
        f = findings[r]
        cause = f.evidence.get("cause")
        if f.region is None:
            key = (f.code, f"#global{r}")
        else:
            key = (f.code, _mask(cause) if isinstance(cause, str) else "")
        groups.setdefault(key, []).append(r)

    out: list[Cause] = []
    for (code, _), roots in groups.items():
        idxs = sorted(j for r in roots for j in members[r])
        named = {findings[j].region for j in idxs if findings[j].region is not None}
        for j in idxs:  # both sides of an overlap
            other = findings[j].evidence.get("other")
            if findings[j].code == "RMEM-OVERLAP" and isinstance(other, str):
                named.add(other)
        regions = sorted(
            {n for n in named if n is not None},
            key=lambda n: (order.get(n, len(order)), n),
        )
        first = findings[roots[0]]
        causes = [findings[r].evidence.get("cause") for r in roots]
        if first.region is None or (len(roots) == 1 and not isinstance(causes[0], str)):
            headline = first.message
        elif len(set(map(str, causes))) == 1 and isinstance(causes[0], str):
            headline = causes[0] + (f" ({len(roots)} regions)" if len(roots) > 1 else "")
        else:
            headline = f"{CODES.get(code, ('', code))[1]} ({len(roots)} regions)"
        log: list[str] = []
        for j in idxs:
            for line in _log(findings[j]):
                if line not in log:
                    log.append(line)
        evidence: dict[str, Any] = {}
        if first.region is None:
            evidence.update({k: v for k, v in first.evidence.items() if k != "log"})
        if log:
            evidence["log"] = log[:5] + ([f"({len(log) - 5} more lines)"] if len(log) > 5 else [])
        evidence["codes"] = sorted({findings[j].code for j in idxs})
        advice = ADVICE.get(code, "")
        if first.severity == "info" and code == "RMEM-STATIC-ARRAY":
            advice = "nothing to do while every region fits"
        if code in ("RMEM-DROPPED", "RMEM-UNALLOCATED"):
            for text, hint in _LOG_ADVICE:
                if any(_logs_say(findings[r], text) for r in roots):
                    advice = hint
                    break
        if "{capacity}" in advice:
            advice = advice.format(capacity=first.evidence.get("capacity", "64"))
        out.append(
            Cause(
                cause=headline,
                code=code,
                severity=min((findings[j].severity for j in idxs), key=_SEVERITY.__getitem__),
                regions=regions,
                evidence=evidence,
                advice=advice,
                findings=idxs,
            )
        )
    out.sort(key=lambda c: (_SEVERITY[c.severity], -len(c.findings)))
    return out
