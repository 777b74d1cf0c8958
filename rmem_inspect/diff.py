# SPDX-License-Identifier: GPL-2.0-or-later
"""
diff
----

Compare two reports (two snapshots, two dumps, a dump and a preflight, the same
board on two kernels): which regions were added or removed, which moved or
changed size, whose verdict changed, and which findings are new or resolved.
A pure function of two :class:`~rmem_inspect.checks.Report`; no drgn. Its
output (table, Markdown, JSON) is :mod:`rmem_inspect.output.diff`.

Regions are matched by name (the node name with unit address, as the kernel
names them); findings by ``(code, region)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rmem_inspect.checks import Finding, RegionView, Report
from rmem_inspect.ranges import fmt_range

__all__ = ["RegionChange", "ReportDiff", "diff_reports"]


@dataclass
class RegionChange:
    name: str
    #: added, removed, moved, resized, verdict.
    change: str
    before: str = ""
    after: str = ""


@dataclass
class ReportDiff:
    a: str
    b: str
    regions: list[RegionChange] = field(default_factory=list)
    new_findings: list[Finding] = field(default_factory=list)
    resolved_findings: list[Finding] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.regions or self.new_findings or self.resolved_findings)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.regions:
            out[c.change] = out.get(c.change, 0) + 1
        out["new findings"] = len(self.new_findings)
        out["resolved findings"] = len(self.resolved_findings)
        return out


def _label(report: Report) -> str:
    snap = report.snapshot
    src = snap.source.get("vmcore") or snap.source.get("dtb") or snap.source.get("kind", "")
    return f"{snap.kernel.release} {src}".strip()


def _where(v: RegionView) -> str:
    if v.base is None or not v.size:
        return f"no memory ({v.kind})"
    return fmt_range(v.base, v.size)


def diff_reports(a: Report, b: Report, *, label_a: str = "", label_b: str = "") -> ReportDiff:
    """What changed from ``a`` to ``b``."""
    out = ReportDiff(a=label_a or _label(a), b=label_b or _label(b))
    ra = {v.name: v for v in a.regions}
    rb = {v.name: v for v in b.regions}
    for name in sorted(set(ra) | set(rb), key=lambda n: (n not in rb, n)):
        va, vb = ra.get(name), rb.get(name)
        if va is None and vb is not None:
            out.regions.append(RegionChange(name, "added", "", f"{_where(vb)} [{vb.verdict}]"))
            continue
        if vb is None and va is not None:
            out.regions.append(RegionChange(name, "removed", f"{_where(va)} [{va.verdict}]", ""))
            continue
        assert va is not None and vb is not None
        placed_a = va.base is not None and bool(va.size)
        placed_b = vb.base is not None and bool(vb.size)
        if placed_a and placed_b and va.base != vb.base:
            out.regions.append(RegionChange(name, "moved", _where(va), _where(vb)))
        elif placed_a and placed_b and va.size != vb.size:
            out.regions.append(RegionChange(name, "resized", _where(va), _where(vb)))
        elif placed_a != placed_b:
            out.regions.append(
                RegionChange(name, "allocated" if placed_b else "lost", _where(va), _where(vb))
            )
        if va.verdict != vb.verdict:
            out.regions.append(RegionChange(name, "verdict", va.verdict, vb.verdict))
    fa = {(f.code, f.region): f for f in a.findings}
    fb = {(f.code, f.region): f for f in b.findings}
    out.new_findings = [f for k, f in fb.items() if k not in fa]
    out.resolved_findings = [f for k, f in fa.items() if k not in fb]
    return out
