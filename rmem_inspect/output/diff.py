# SPDX-License-Identifier: GPL-2.0-or-later
"""
output.diff
-----------

A :class:`~rmem_inspect.diff.ReportDiff` as a text table, Markdown or JSON
(``rmem-inspect diff``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from tabulate import tabulate

from rmem_inspect.diff import ReportDiff

__all__ = ["render_diff"]


def render_diff(d: ReportDiff, fmt: str = "table") -> str:
    """``table``, ``markdown`` or ``json``."""
    if fmt == "json":
        return (
            json.dumps(
                {
                    "a": d.a,
                    "b": d.b,
                    "regions": [asdict(c) for c in d.regions],
                    "new_findings": [asdict(f) for f in d.new_findings],
                    "resolved_findings": [asdict(f) for f in d.resolved_findings],
                    "counts": d.counts(),
                },
                indent=1,
            )
            + "\n"
        )
    tf = "github" if fmt == "markdown" else "simple"
    h = "## " if fmt == "markdown" else ""
    parts = [f"{h}A: {d.a}", f"{h}B: {d.b}", ""]
    if d.empty:
        parts.append("no differences in regions or findings")
        return "\n".join(parts) + "\n"
    counts = ", ".join(f"{n} {k}" for k, n in d.counts().items() if n)
    parts += [counts, ""]
    if d.regions:
        parts.append(f"{h}regions")
        rows = [[c.name, c.change, c.before, c.after] for c in d.regions]
        parts += [tabulate(rows, ["region", "change", "A", "B"], tablefmt=tf), ""]
    for title, items in (
        ("new findings (in B only)", d.new_findings),
        ("resolved findings (in A only)", d.resolved_findings),
    ):
        if items:
            parts.append(f"{h}{title}")
            rows2: list[list[Any]] = [
                [f.severity, f.code, f.region or "-", f.message] for f in items
            ]
            parts += [
                tabulate(
                    rows2,
                    ["severity", "code", "region", "message"],
                    tablefmt=tf,
                    maxcolwidths=[None, None, None, 70],
                ),
                "",
            ]
    return "\n".join(parts) + "\n"
