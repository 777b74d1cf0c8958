# SPDX-License-Identifier: GPL-2.0-or-later
"""
The trace tier: ``rmem-inspect trace`` with Debian's bcc inside a real arm64
guest on a Debian kernel, while the test module (vmcores/testmod) binds to the
scenario's consumer nodes, assigns their carveouts and allocates from them.

What must be traced is derived from the scenario's devicetree
(vmcores/scenarios.py), from the module's own kernel log lines (the return value
of every of_reserved_mem_device_init_by_idx() call, whether each allocation
succeeded) and from the expected boot verdicts (tests/expected.py, themselves
derived from the kernels' boot logs) -- never from the tracer's output.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.expected import expected_findings
from tests.trace.conftest import trace_run
from tests.trace.guest import ALLOC_SIZE, TraceRun
from vmcores.scenarios import SCENARIOS, Consumer, Region

pytestmark = pytest.mark.trace

CASES = [
    tuple(c.split("/"))
    for c in os.environ.get("RMEM_TRACE_CASES", "6.12/baseline,6.1/overflow,7.x/baseline").split(
        ","
    )
]
IDS = [f"{k}-{s}" for k, s in CASES]
PAGE = 4096  # Debian's arm64 kernels use 4 KiB pages


def _regions(scenario: str) -> dict[str, Region]:
    return {r.name: r for r in SCENARIOS[scenario].regions}


def _dropped(series: str, scenario: str) -> set[str]:
    return {r for code, r in expected_findings(scenario, series) if code == "RMEM-DROPPED" and r}


def _one(events: list[dict[str, Any]], **want: Any) -> dict[str, Any]:
    found = [e for e in events if all(e.get(k) == v for k, v in want.items())]
    assert len(found) == 1, f"{len(found)} events with {want}: {found or events}"
    return found[0]


def _consumers(scenario: str) -> list[Consumer]:
    cons = list(SCENARIOS[scenario].consumers)
    assert cons, f"{scenario} has no consumer nodes to trace"
    return cons


@pytest.fixture(params=CASES, ids=IDS)
def run(request: pytest.FixtureRequest) -> TraceRun:
    series, scenario = request.param
    return trace_run(series, scenario)


def test_detaches_cleanly(run: TraceRun) -> None:
    """SIGINT (Ctrl-C) ends the trace with status 0 and the summary line."""
    assert run.rc == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "Hit Ctrl-C to end." in run.stderr
    assert run.summary, "no summary line at exit"
    assert "no boot verdicts" not in run.stderr  # the correlation had the vmlinux
    for probe in ("of_reserved_mem_device_init_by_idx", "of_reserved_mem_lookup"):
        assert probe in run.stderr.split("Tracing", 1)[1].splitlines()[0]
    for tp in ("cma:cma_alloc_start", "cma:cma_alloc_finish", "cma:cma_release"):
        assert tp not in run.summary["skipped_probes"]


def test_device_init_calls(run: TraceRun) -> None:
    """One device_init event per memory-region entry, with the region the DT names and
    the return value the kernel gave the module."""
    regions = _regions(run.scenario)
    dropped = _dropped(run.series, run.scenario)
    assert run.inits, "the module logged no of_reserved_mem_device_init_by_idx() call"
    for con in _consumers(run.scenario):
        for i, name in enumerate(con.regions):
            node = regions[name].node_name
            ret = run.inits[(con.name, i)]
            e = _one(run.events, kind="device_init", device=con.name, count=i)
            assert (e["region"], e["ret"], e["failed"]) == (node, ret, ret != 0)
            assert e["node"] == f"/{con.name}"
            if node in dropped:
                assert ret != 0  # the kernel refused: the carveout does not exist
                assert e["correlation"].startswith("boot verdict RMEM-DROPPED: " + node)
            elif ret != 0:
                assert "tracked by the kernel" in e["correlation"]
            else:
                assert e["correlation"] is None


def test_lookups(run: TraceRun) -> None:
    """of_reserved_mem_lookup() returns NULL exactly for the regions dropped at boot.

    Where the kernel's compiler inlined the lookup into its caller (Debian's 6.1 does),
    no call reaches the probe: then none may be traced, and the tracer must say why."""
    regions = _regions(run.scenario)
    dropped = _dropped(run.series, run.scenario)
    lookups = [e for e in run.events if e["kind"] == "lookup" and e["device"]]
    if not lookups:
        assert "compiler inlined it there" in run.stderr
        return
    for con in _consumers(run.scenario):
        for name in con.regions:
            node = regions[name].node_name
            e = _one(run.events, kind="lookup", device=con.name, region=node)
            assert e["node"] == f"/reserved-memory/{node}"
            assert e["failed"] is (node in dropped)
            assert e["ret"] == (0 if node in dropped else 1)
            if node in dropped:
                assert e["size"] == 0 and e["correlation"].startswith("boot verdict RMEM-DROPPED")
            else:
                assert e["size"] == (regions[name].size or regions[name].reg[0][1])


def test_dropped_region_cause() -> None:
    """6.1 overflow: /codec-consumer wants pool9, past the 64-entry static array
    (vmcores/facts.py: 69 regions into 64 entries); the trace says so."""
    if ("6.1", "overflow") not in CASES:
        pytest.skip("RMEM_TRACE_CASES leaves out 6.1/overflow")
    run = trace_run("6.1", "overflow")
    assert "pool9" in _dropped("6.1", "overflow")
    index = SCENARIOS["overflow"].consumers[1].regions.index("pool9")
    e = _one(run.events, kind="device_init", device="codec-consumer", count=index)
    assert e["failed"] and e["region"] == "pool9"
    assert "static reserved_mem array full" in e["correlation"]
    assert "holds 64 entries" in e["correlation"]
    failed = [x for x in run.events if x["region"] == "pool9" and x["failed"]]
    assert run.summary["regions"]["pool9"]["failures"] == len(failed) >= 1
    assert "static reserved_mem array full" in run.summary["correlations"]["pool9"]


def test_coherent_and_cma_allocations(run: TraceRun) -> None:
    """Each device's dma_alloc_coherent() shows up where the kernel served it: the
    device's coherent pool (a no-map shared-dma-pool it was assigned) or CMA."""
    regions = _regions(run.scenario)
    dropped = _dropped(run.series, run.scenario)
    cma = [r for r in regions.values() if r.cma_default]
    cma_name = cma[0].node_name if cma and cma[0].node_name not in dropped else "reserved"
    for con in _consumers(run.scenario):
        size, ok = run.allocs[con.name]
        assert size == ALLOC_SIZE
        pools = [
            regions[n]
            for i, n in enumerate(con.regions)
            if "shared-dma-pool" in regions[n].compatible
            and regions[n].nomap
            and run.inits[(con.name, i)] == 0
        ]
        if pools:
            node = pools[0].node_name
            op = _one(run.events, kind="init_op", device=con.name, region=node)
            assert (op["op"], op["ret"]) == ("rmem_dma_device_init", 0)
            e = _one(run.events, kind="coherent_alloc", device=con.name)
            assert (e["size"], e["failed"], e["region"]) == (ALLOC_SIZE, not ok, node)
        else:
            assert not [e for e in run.events if e["kind"] == "coherent_alloc"
                        and e["device"] == con.name]  # fmt: skip
            e = _one(run.events, kind="cma_alloc", device=con.name)
            assert (e["region"], e["count"], e["size"]) == (
                cma_name,
                ALLOC_SIZE // PAGE,
                ALLOC_SIZE,
            )
            assert not e["failed"] and e["ret"] == 0
            rel = _one(run.events, kind="cma_release", device=con.name)
            assert (rel["region"], rel["count"], rel["addr"]) == (cma_name, e["count"], e["addr"])


def test_summary(run: TraceRun) -> None:
    """The summary at exit adds up the events printed before it."""
    by_dev: dict[str, list[dict[str, Any]]] = {}
    for e in run.events:
        by_dev.setdefault(e["device"] or "-", []).append(e)
    assert run.summary["events"] == len(run.events)
    for dev, evs in by_dev.items():
        row = run.summary["devices"][dev]
        assert row["calls"] == len(evs)
        assert row["failures"] == sum(e["failed"] for e in evs)
        allocated = sum(
            e["size"]
            for e in evs
            if not e["failed"] and e["kind"] in ("cma_alloc", "coherent_alloc", "dma_alloc")
        )
        assert row["bytes"] == allocated
    for con in _consumers(run.scenario):
        assert run.summary["devices"][con.name]["calls"] >= len(con.regions) + 1
