# SPDX-License-Identifier: GPL-2.0-or-later
"""
output
------

What users read or script against, from a :class:`~rmem_inspect.checks.Report`:
:func:`render` gives the text report, Markdown (:mod:`.text`) or JSON
(:mod:`.json_report`); :mod:`.svg` draws the address-space map and :mod:`.diff`
renders a comparison of two reports.
"""

from __future__ import annotations

from rmem_inspect.checks import Report
from rmem_inspect.output.json_report import render_json
from rmem_inspect.output.text import render_text

__all__ = ["render"]


def render(
    report: Report,
    fmt: str,
    *,
    findings_only: bool = False,
    evidence: bool = False,
    causes_only: bool = False,
) -> str:
    """The report in ``fmt`` (table, json or markdown), root causes first.

    ``causes_only`` prints the causes alone (``check -q``).
    """
    if fmt == "json":
        return render_json(report, findings_only, causes_only)
    return render_text(
        report, fmt, findings_only=findings_only, evidence=evidence, causes_only=causes_only
    )
