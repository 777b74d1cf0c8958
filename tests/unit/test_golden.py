# SPDX-License-Identifier: GPL-2.0-or-later
"""The checks on golden snapshots extracted from the real factory dumps
(tools/update-golden.py): same verdicts as the vmcore tier, without QEMU."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmem_inspect import checks
from rmem_inspect.model import Snapshot
from rmem_inspect.output import render
from rmem_inspect.output.json_report import report_json
from tests.conftest import MATRIX, MATRIX_IDS
from tests.expected import CLEAN, expected_findings, expected_info, expected_triples

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def load(series: str, scenario: str) -> Snapshot:
    return Snapshot.loads((GOLDEN / f"{series}-{scenario}.json").read_text())


@pytest.mark.parametrize(("series", "scenario"), MATRIX, ids=MATRIX_IDS)
def test_golden_findings(series: str, scenario: str) -> None:
    snap = load(series, scenario)
    report = checks.run(snap)
    pairs = {(f.code, f.region) for f in report.findings if f.severity != "info"}
    assert pairs == expected_findings(scenario, series)
    info = {(f.code, f.region) for f in report.findings if f.severity == "info"}
    assert info == expected_info(scenario, series)
    assert {(f.code, f.region, f.severity) for f in report.findings} == expected_triples(
        scenario, series
    )
    assert (report.exit_status() == 0) == (scenario in CLEAN or not pairs)


@pytest.mark.parametrize(("series", "scenario"), MATRIX, ids=MATRIX_IDS)
def test_golden_roundtrip_and_render(series: str, scenario: str) -> None:
    snap = load(series, scenario)
    assert Snapshot.loads(snap.dumps()) == snap
    report = checks.run(snap)
    # The checks are pure: running them does not change the snapshot.
    assert Snapshot.loads(snap.dumps()) == load(series, scenario)
    for fmt in ("table", "markdown", "json"):
        text = render(report, fmt)
        for f in report.findings:
            if f.region and fmt != "json":
                assert f.region in text
    js = report_json(report)
    assert js["kernel"]["layout"] == ("static-array" if series == "6.1" else "dynamic-array")
    assert len(js["regions"]) >= len([r for r in (snap.fdt.regions if snap.fdt else [])])


def test_golden_files_cover_the_matrix() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(MATRIX_IDS)
