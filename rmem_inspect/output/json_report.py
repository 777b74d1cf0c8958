# SPDX-License-Identifier: GPL-2.0-or-later
"""
output.json_report
------------------

A :class:`~rmem_inspect.checks.Report` for scripts: the JSON of SPEC §3
(``kernel``, ``regions``, ``findings``; stable keys, extended freely). The root
causes (:mod:`rmem_inspect.causes`) are ``causes`` beside the unchanged
``findings`` (schema 2; schema 1 had no ``causes``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from rmem_inspect.causes import root_causes
from rmem_inspect.checks import Report
from rmem_inspect.kernel.layouts import Layout
from rmem_inspect.version import __version__

__all__ = ["JSON_SCHEMA", "render_json", "report_json"]

#: 2: ``causes`` added (every schema-1 key kept).
JSON_SCHEMA = 2


def report_json(
    report: Report, findings_only: bool = False, causes_only: bool = False
) -> dict[str, Any]:
    snap = report.snapshot
    rm = snap.reserved_mem
    kernel: dict[str, Any] = {
        "release": snap.kernel.release,
        "arch": snap.kernel.arch,
        "build_id": snap.kernel.build_id,
        "layout": rm.layout if rm else None,
        "ops_layout": rm.ops_layout if rm else None,
        "capacity": rm.capacity if rm else None,
        "count": rm.count if rm else None,
        "max_regions": rm.max_regions if rm else None,
    }
    if rm is not None and rm.layout == Layout.DYNAMIC_ARRAY:
        kernel["dynamic_array"] = {
            "address": rm.array_address,
            "phys": rm.array_phys,
            "bytes": (rm.capacity or 0) * rm.entry_size,
            "points_to_init_array": rm.points_to_init_array,
        }
        kernel["init_array"] = {
            "address": rm.init_array_address,
            "bytes": rm.init_array_bytes,
            "in_init_section": rm.init_array_in_init_section,
            "readable": rm.init_array_readable,
            "pages": rm.init_array_pages,
            "pages_freed": rm.init_array_pages_freed,
        }
    out: dict[str, Any] = {
        "schema": JSON_SCHEMA,
        "tool": {"name": "rmem_inspect", "version": __version__},
        "source": snap.source,
        "kernel": kernel,
        "causes": [c.to_json() for c in root_causes(report)],
    }
    summary = {
        s: sum(1 for f in report.findings if f.severity == s) for s in ("error", "warning", "info")
    }
    if causes_only:
        out["summary"] = summary
        return out
    if not findings_only:
        out["regions"] = [
            {
                "name": v.name,
                "base": v.base,
                "size": v.size,
                "kind": v.kind,
                "status": v.status,
                "nomap": v.nomap,
                "reusable": v.reusable,
                "compatible": v.compatible,
                "tracked": v.tracked,
                "reserved": v.reserved,
                "sources": v.sources,
                "verdict": v.verdict,
                "log": v.log,
            }
            for v in report.regions
        ]
        out["cma"] = [asdict(a) for a in snap.cma or []]
        out["assigned_devices"] = [asdict(a) for a in snap.assigned or []]
        out["devices"] = [asdict(d) for d in snap.devices or []]
    out["findings"] = [asdict(f) for f in report.findings]
    out["skipped"] = report.skipped
    out["summary"] = summary
    return out


def render_json(report: Report, findings_only: bool = False, causes_only: bool = False) -> str:
    """:func:`report_json` as the text ``--format json`` prints."""
    return json.dumps(report_json(report, findings_only, causes_only), indent=2) + "\n"
