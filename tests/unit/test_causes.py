# SPDX-License-Identifier: GPL-2.0-or-later
"""Root causes (rmem_inspect/causes.py) on the golden snapshots of the real dumps.

The expected causes follow from the kernel's code, as tests/expected.py's findings
do: on 6.1 the full static array (fdt_reserved_mem_save_node(): "not enough space
for all defined regions.") explains every drop; on 6.12/7.x the dynamic limit and
the failed allocations are their own causes; a no-map node refused with -EBUSY over
an overlapping region is explained by the overlap.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmem_inspect import checks
from rmem_inspect.causes import collapse_names, root_causes
from rmem_inspect.commands import main
from rmem_inspect.model import Snapshot
from rmem_inspect.output import render
from tests.conftest import MATRIX, MATRIX_IDS
from tests.expected import CLEAN

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parent.parent / "golden"

DYN = frozenset(f"dyn{i}" for i in range(64, 70))


def expected_causes(scenario: str, series: str) -> set[tuple[str, frozenset[str]]]:
    """(root code, regions) of every cause at warning or error."""
    static = series == "6.1"
    if scenario in CLEAN:
        return set()
    if scenario == "overflow":
        hit = frozenset({"ip52@52d00000", "ip53@52d40000", "pool8", "pool9", "linux,cma"})
        return {("RMEM-STATIC-ARRAY", hit)} if static else set()
    if scenario == "dynamic-limit":
        return {("RMEM-STATIC-ARRAY" if static else "RMEM-DROPPED", DYN)}
    if scenario in ("alloc-fail", "consumers"):
        pool = "big-pool" if scenario == "alloc-fail" else "missing-pool"
        # 6.1 keeps the failed dynamic node in the array (size 0): unallocated, not dropped.
        return {("RMEM-UNALLOCATED" if static else "RMEM-DROPPED", frozenset({pool}))}
    if scenario == "nomap-conflict":
        return {("RMEM-OVERLAP", frozenset({"vpu@52000000", "fw-shared@52100000"}))}
    if scenario == "overlap":
        return {("RMEM-OVERLAP", frozenset({"camera@54000000", "display@54200000"}))}
    if scenario == "multi-reg":
        return {("RMEM-DROPPED", frozenset({"multi@55000000[1]", "multi@55000000[2]"}))}
    if scenario == "mem-limit":
        # mem= cut the alloc-ranges window: the allocation failed, as in alloc-fail.
        return {("RMEM-UNALLOCATED" if static else "RMEM-DROPPED", frozenset({"hi-pool"}))}
    if scenario == "rmem-cells":
        # __reserved_mem_check_root() rejects the node: nothing in it is reserved or tracked.
        hit = {"/reserved-memory", "fw@50000000", "vpu@50400000", "dsp-pool"}
        return {("RMEM-DT-FORMAT", frozenset(hit))}
    if scenario == "memreserve":
        # 6.1 reserves /memreserve/ before the scan: the no-map over it gets -EBUSY.
        return {("RMEM-NOMAP-MISSING", frozenset({"spl-log@5f000000"}))} if static else set()
    if scenario == "mt8192":
        # no restricted-dma-pool handler in Debian's kernels: nothing initialised wifi
        return {("RMEM-NO-HANDLER", frozenset({"wifi@c0000000"}))}
    raise AssertionError(scenario)


def report(series: str, scenario: str) -> checks.Report:
    return checks.run(Snapshot.loads((GOLDEN / f"{series}-{scenario}.json").read_text()))


@pytest.mark.parametrize(("series", "scenario"), MATRIX, ids=MATRIX_IDS)
def test_golden_causes(series: str, scenario: str) -> None:
    r = report(series, scenario)
    causes = root_causes(r)
    got = {(c.code, frozenset(c.regions)) for c in causes if c.severity != "info"}
    assert got == expected_causes(scenario, series)
    # Every finding belongs to exactly one cause; a cause is as bad as its worst finding.
    idx = sorted(i for c in causes for i in c.findings)
    assert idx == list(range(len(r.findings)))
    rank = {"error": 0, "warning": 1, "info": 2}
    for c in causes:
        worst = min((r.findings[i].severity for i in c.findings), key=rank.__getitem__)
        assert c.severity == worst
        assert c.severity == "info" or c.advice
    # The JSON has them beside the unchanged findings.
    js = json.loads(render(r, "json"))
    assert js["schema"] == 2
    assert [c["code"] for c in js["causes"]] == [c.code for c in causes]
    assert len(js["findings"]) == len(r.findings)
    for key in ("kernel", "regions", "findings", "skipped", "summary", "cma"):
        assert key in js


def test_overflow_first_screen_names_the_cause_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    snap = str(GOLDEN / "6.1-overflow.json")
    assert main(["report", "--snapshot", snap]) == 1
    first = capsys.readouterr().out.splitlines()[:24]
    text = "\n".join(first)
    assert first[0] == "Causes (1)"
    assert "RMEM-STATIC-ARRAY" in text and "69" in text
    assert "ip52@52d00000, ip53@52d40000, pool8, pool9, linux,cma" in text
    assert "not enough space for all defined regions. (5 such lines)" in text
    assert "fix:      define at most 64" in text
    # check -q: the causes alone, the same exit status.
    assert main(["check", "-q", "--snapshot", snap]) == 1
    out = capsys.readouterr().out
    assert "Findings" not in out and out.startswith("Causes (1)")
    assert main(["check", "-q", "--snapshot", snap, "--format", "json"]) == 1
    js = json.loads(capsys.readouterr().out)
    assert "findings" not in js and len(js["causes"]) == 1
    assert js["causes"][0]["regions"] == [
        "ip52@52d00000",
        "ip53@52d40000",
        "pool8",
        "pool9",
        "linux,cma",
    ]


def test_markdown_leads_with_causes() -> None:
    text = render(report("6.12", "dynamic-limit"), "markdown")
    assert text.index("## Causes (1)") < text.index("## Kernel") < text.index("## Findings")
    assert "dyn64..dyn69" in text


def test_collapse_names() -> None:
    names = [f"pool{i}" for i in range(14, 40)] + ["linux,cma"]
    assert collapse_names(names) == "pool14..pool39, linux,cma"
    assert collapse_names(["pool1", "pool2"]) == "pool1, pool2"
    assert collapse_names(["a1", "a2", "a3", "b4", "a4"]) == "a1..a3, b4, a4"
    assert collapse_names(["ip1@100", "ip2@200", "ip3@300"]) == "ip1@100..ip3@300"
    assert collapse_names(["x", "x", "x"]) == "x, x, x"
    assert collapse_names([]) == ""
