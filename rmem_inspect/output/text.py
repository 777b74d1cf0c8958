# SPDX-License-Identifier: GPL-2.0-or-later
"""
output.text
-----------

A :class:`~rmem_inspect.checks.Report` as people read it: a text report (tables
via tabulate) or Markdown. Both lead with the root causes
(:mod:`rmem_inspect.causes`): one headline per cause, the regions it hit, its
evidence and the fix; then the kernel summary, the regions and the findings.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from rmem_inspect.causes import Cause, root_causes
from rmem_inspect.checks import Finding, Report
from rmem_inspect.kernel.layouts import Layout
from rmem_inspect.ranges import RangeSet, fmt_range, human_size

__all__ = ["render_text", "tabulate"]


#: tabulate.MIN_PADDING: what tabulate adds to a header's width (the table test pins it).
_MIN_PADDING = 2


def tabulate(rows: Any, headers: Any = (), **kwargs: Any) -> str:
    """:func:`tabulate.tabulate`, cheaper where its per-cell work changes nothing.

    tabulate measures each cell with wcwidth and classifies it (number, bool,
    text) one Python call at a time: ~40 ms for the 1,016-row region table of a
    1,000-region board, more than the checks; importing it (and wcwidth's 24
    modules) costs ~20 ms more. A "simple" or "plain" table of printable-ASCII
    text cells with number parsing off is laid out by :func:`_text_table`, which
    tests/unit/test_render_tables.py holds byte-identical to tabulate; tabulate
    is imported only for the other tables (wide or control characters,
    wrapping, other formats), and skips wcwidth where every cell is ASCII.
    """
    rows = [list(r) for r in rows]
    headers = list(headers)
    cells = [c for r in rows for c in r] + headers
    ascii_text = all(isinstance(c, str) and c.isascii() and c.isprintable() for c in cells)
    if (
        ascii_text
        and rows
        and kwargs in ({"tablefmt": "simple", "disable_numparse": True},
                       {"tablefmt": "plain", "disable_numparse": True})  # fmt: skip
        and len({len(r) for r in rows} | ({len(headers)} if headers else set())) == 1
        and (headers or kwargs["tablefmt"] == "plain")  # "simple" rules a headless table
    ):
        return _text_table(rows, headers, rule=kwargs["tablefmt"] == "simple")
    import tabulate as tabulate_module  # here: most reports never need it

    if not ascii_text:
        return tabulate_module.tabulate(rows, headers, **kwargs)
    wide = tabulate_module.WIDE_CHARS_MODE
    tabulate_module.WIDE_CHARS_MODE = False
    try:
        return tabulate_module.tabulate(rows, headers, **kwargs)
    finally:
        tabulate_module.WIDE_CHARS_MODE = wide


def _text_table(rows: list[list[str]], headers: list[str], rule: bool) -> str:
    """tabulate's "simple" (``rule``) or "plain" layout of printable-ASCII text cells:
    cells (not headers) stripped and left-aligned, two spaces apart, columns at
    least two wider than their header, a dashed rule under the headers in
    "simple", trailing spaces cut."""
    rows = [[c.strip() for c in r] for r in rows]
    columns = list(zip(*rows, strict=True))
    if headers:
        widths = [
            max(len(h) + _MIN_PADDING, *(len(c) for c in col))
            for h, col in zip(headers, columns, strict=True)
        ]
    else:
        widths = [max(len(c) for c in col) for col in columns]
    lines = []
    if headers:
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        if rule:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _hex(v: int | None) -> str:
    return "-" if v is None else f"{v:#x}"


def _header(report: Report) -> list[tuple[str, str]]:
    snap = report.snapshot
    rm = snap.reserved_mem
    rows = [
        ("kernel", f"{snap.kernel.release} ({snap.kernel.arch})"),
        (
            "source",
            ", ".join(
                f"{k}={v}"
                for k, v in snap.source.items()
                if k not in ("debug_info", "symbol_evidence") and v is not None
            )
            or "-",
        ),
    ]
    if "debug_info" in snap.source:  # kallsyms + BTF, no vmlinux
        rows.append(("debug info", str(snap.source["debug_info"])))
    if rm is None:
        rows.append(("reserved_mem", "not read: " + snap.missing.get("reserved_mem", "?")))
        return rows
    rows.append(
        (
            "reserved_mem",
            f"{rm.layout}, {rm.count} of {rm.capacity} entries used"
            + (f" (fixed {rm.max_regions})" if rm.layout == Layout.STATIC_ARRAY else "")
            + f", ops: {rm.ops_layout}",
        )
    )
    if rm.layout == "dynamic-array":
        state = (
            "still the init-time array"
            if rm.points_to_init_array
            else f"in use at {_hex(rm.array_address)} (phys {_hex(rm.array_phys)}, "
            f"{(rm.capacity or 0) * rm.entry_size} bytes)"
        )
        if rm.array_phys is not None and snap.memblock is not None and snap.memblock.available:
            rng = RangeSet((r.base, r.size) for r in snap.memblock.reserved).containing(
                rm.array_phys
            )
            state += (
                f", inside memblock.reserved {fmt_range(*rng)}"
                if rng
                else ", NOT inside any memblock.reserved range"
            )
        rows.append(("dynamic array", state))
        freed = (
            "unknown"
            if rm.init_array_pages_freed is None
            else f"{rm.init_array_pages_freed}/{rm.init_array_pages} pages freed"
        )
        rows.append(
            (
                "init array",
                f"reserved_mem_array at {_hex(rm.init_array_address)}: "
                + ("in the init section, " if rm.init_array_in_init_section else "")
                + ("unmapped, " if rm.init_array_readable is False else "")
                + freed,
            )
        )
    mb = snap.memblock
    if mb is not None:
        rows.append(
            (
                "memblock",
                f"{len(mb.memory)} memory, {len(mb.reserved)} reserved regions"
                + ("" if mb.available else f" (NOT usable: {mb.note})"),
            )
        )
    if snap.cma is not None:
        rows.append(
            (
                "CMA",
                "; ".join(
                    f"{a.name} {fmt_range(a.base, a.size)}"
                    + (f" {a.used_pages} pages used" if a.used_pages is not None else "")
                    + (" [default]" if a.is_default else "")
                    for a in snap.cma
                )
                or "none",
            )
        )
    if snap.assigned:
        rows.append(("assigned", "; ".join(f"{a.device} -> {a.region}" for a in snap.assigned)))
    s = {
        sev: sum(1 for f in report.findings if f.severity == sev)
        for sev in ("error", "warning", "info")
    }
    rows.append(("findings", f"{s['error']} error, {s['warning']} warning, {s['info']} info"))
    return rows


def _region_rows(report: Report) -> list[list[str]]:
    rows = []
    for v in report.regions:
        rows.append(
            [
                v.name,
                _hex(v.base),
                human_size(v.size) if v.size else "-",
                v.kind,
                ",".join(x for x, on in (("no-map", v.nomap), ("reusable", v.reusable)) if on)
                or "-",
                ",".join(v.compatible) or "-",
                "yes" if v.tracked else "no",
                "-" if v.reserved is None else ("yes" if v.reserved else "no"),
                v.verdict,
            ]
        )
    return rows


def _finding_rows(findings: list[Finding]) -> list[list[str]]:
    return [[f.severity, f.code, f.region or "-", f.message] for f in findings]


def _evidence_lines(c: Cause) -> list[str]:
    """The kernel log lines of a cause (at most three), else its scalar evidence."""
    log: list[str] = []
    for x in c.evidence.get("log", []):
        if isinstance(x, str) and x.startswith("(") and log:
            log[-1] += " " + x  # "(5 such lines)" belongs to the line before
        elif isinstance(x, str):
            log.append(x)
    if log:
        return log[:3] + ([f"... {len(log) - 3} more"] if len(log) > 3 else [])
    pairs = [
        f"{k}={v}"
        for k, v in c.evidence.items()
        if k != "codes" and isinstance(v, int | str | bool) and not isinstance(v, bool)
    ]
    return [" ".join(pairs)] if pairs else []


def _causes_text(causes: list[Cause], fmt: str) -> str:
    if not causes:
        return "no findings"
    if fmt == "markdown":
        return tabulate(
            [
                [
                    c.severity,
                    c.code,
                    c.cause,
                    c.regions_text or "-",
                    "<br>".join(_evidence_lines(c)) or "-",
                    c.advice or "-",
                ]
                for c in causes
            ],
            headers=["severity", "code", "cause", "regions", "evidence", "fix"],
            tablefmt="github",
            disable_numparse=True,
        )
    blocks = []
    for n, c in enumerate(causes, 1):
        head = f"{n}. {c.severity.upper()} {c.code}: {c.cause}"
        lines = textwrap.wrap(head, 100, subsequent_indent="   ")
        rows = [("regions", c.regions_text)] if c.regions else []
        rows += [("evidence", e) for e in _evidence_lines(c)]
        if c.advice:
            rows.append(("fix", c.advice))
        for label, text in rows:
            lines += textwrap.wrap(
                text,
                100,
                initial_indent=f"   {label + ':':<10}",
                subsequent_indent=" " * 13,
                break_on_hyphens=False,
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_text(
    report: Report,
    fmt: str,
    *,
    findings_only: bool = False,
    evidence: bool = False,
    causes_only: bool = False,
) -> str:
    """The report as a text table (``table``) or Markdown (``markdown``), root causes
    first; ``causes_only`` prints the causes alone (``check -q``)."""
    table_fmt = "github" if fmt == "markdown" else "simple"
    out: list[str] = []

    def section(title: str) -> None:
        out.append(f"\n## {title}\n" if fmt == "markdown" else f"\n{title}\n{'=' * len(title)}")

    if fmt == "markdown" and not findings_only and not causes_only:
        out.append("# rmem_inspect report\n")
    causes = root_causes(report)
    section(f"Causes ({len(causes)})")
    out.append(_causes_text(causes, fmt))
    if causes_only:
        return "\n".join(out).lstrip("\n") + "\n"
    if not findings_only:
        section("Kernel")
        out.append(
            tabulate(
                _header(report),
                tablefmt=table_fmt if fmt == "markdown" else "plain",
                disable_numparse=True,  # sentences, never a column of numbers
            )
        )
        section(f"Regions ({len(report.regions)})")
        out.append(
            tabulate(
                _region_rows(report),
                headers=["name", "base", "size", "kind", "flags", "compatible", "tracked",
                         "reserved", "verdict"],  # fmt: skip
                tablefmt=table_fmt,
                # addresses are text: number parsing cost 0.4 s on 1,000 rows
                disable_numparse=True,
            )
            if report.regions
            else "(no reserved-memory regions)"
        )
    section(f"Findings ({len(report.findings)})")
    if report.findings:
        out.append(
            tabulate(
                _finding_rows(report.findings),
                headers=["severity", "code", "region", "message"],
                tablefmt=table_fmt,
                maxcolwidths=[None, None, 24, 90] if fmt == "table" else None,
            )
        )
    else:
        out.append("no findings")
    if evidence and report.findings:
        section("Evidence")
        for f in report.findings:
            if f.evidence:
                out.append(f"{f.code} {f.region or ''}: " + json.dumps(f.evidence, sort_keys=True))
    if report.skipped:
        section("Checks skipped")
        out.append(tabulate(sorted(report.skipped.items()), headers=["checks", "missing source"],
                            tablefmt=table_fmt))  # fmt: skip
    return "\n".join(out).lstrip("\n") + "\n"
