# SPDX-License-Identifier: GPL-2.0-or-later
"""diff on the golden snapshots of the real dumps: the overflow DT on 6.1 and 6.12."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmem_inspect import checks
from rmem_inspect.diff import diff_reports
from rmem_inspect.model import Snapshot
from rmem_inspect.output.diff import render_diff
from tests.expected import expected_findings

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def report(name: str) -> checks.Report:
    return checks.run(Snapshot.loads((GOLDEN / f"{name}.json").read_text()))


def test_overflow_61_to_612() -> None:
    d = diff_reports(report("6.1-overflow"), report("6.12-overflow"))
    serious = {(f.code, f.region) for f in d.resolved_findings if f.severity != "info"}
    assert serious == expected_findings("overflow", "6.1") - expected_findings("overflow", "6.12")
    assert not [f for f in d.new_findings if f.severity != "info"]
    changes = {(c.name, c.change) for c in d.regions}
    # The three dynamic regions 6.1 never allocated get memory on 6.12.
    for name in ("pool8", "pool9", "linux,cma"):
        assert (name, "allocated") in changes
    # The two static regions 6.1 dropped are tracked on 6.12: same place, new verdict.
    for name in ("ip52@52d00000", "ip53@52d40000"):
        assert (name, "verdict") in changes
        assert (name, "moved") not in changes
    assert not any(c.change in ("added", "removed") for c in d.regions)
    js = json.loads(render_diff(d, "json"))
    assert js["counts"]["resolved findings"] == len(d.resolved_findings)
    text = render_diff(d, "table")
    assert "pool8" in text and "RMEM-DROPPED" in text


def test_same_report_has_no_differences() -> None:
    d = diff_reports(report("7.x-baseline"), report("7.x-baseline"))
    assert d.empty
    assert "no differences" in render_diff(d)


def test_different_scenarios_add_and_remove() -> None:
    d = diff_reports(report("6.12-overlap"), report("6.12-multi-reg"))
    changes = {(c.name, c.change) for c in d.regions}
    assert ("camera@54000000", "removed") in changes
    assert ("multi@55000000", "added") in changes
    assert ("RMEM-OVERLAP", "camera@54000000") in {(f.code, f.region) for f in d.resolved_findings}


def test_cli_diff(capsys: pytest.CaptureFixture[str]) -> None:
    from rmem_inspect.commands import main

    a, b = str(GOLDEN / "6.1-overflow.json"), str(GOLDEN / "6.12-overflow.json")
    assert main(["diff", a, b, "--format", "json"]) == 1
    js = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in js["regions"] if c["change"] == "allocated"} == {
        "pool8",
        "pool9",
        "linux,cma",
    }
    assert main(["diff", a, a]) == 0
    assert main(["diff", a, str(GOLDEN / "no-such.json")]) == 2
    assert "not found" in capsys.readouterr().err
