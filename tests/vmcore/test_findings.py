# SPDX-License-Identifier: GPL-2.0-or-later
"""Exact findings for every scenario on every real kernel, plus the details the
issue pins: the 6.1 overflow verdict and the 6.12/7.x dynamic array state."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rmem_inspect import checks
from tests.conftest import MATRIX, MATRIX_IDS
from tests.expected import CLEAN, expected_findings, expected_info, expected_triples
from tests.vmcore.conftest import DumpData, dump_data, manifest_for

pytestmark = pytest.mark.vmcore


def _pairs(report: checks.Report, severities: tuple[str, ...]) -> set[tuple[str, str | None]]:
    return {(f.code, f.region) for f in report.findings if f.severity in severities}


@pytest.mark.parametrize("data", MATRIX, ids=MATRIX_IDS, indirect=True)
def test_exact_findings(data: DumpData) -> None:
    series, scenario = data.manifest.series, data.manifest.scenario
    report = checks.run(data.snapshot)
    assert _pairs(report, ("error", "warning")) == expected_findings(scenario, series)
    assert _pairs(report, ("info",)) == expected_info(scenario, series)
    # the exact set, severities included: clean boards have no warning or error
    assert {(f.code, f.region, f.severity) for f in report.findings} == expected_triples(
        scenario, series
    )
    # No source was missing on these dumps: every check ran.
    assert not data.snapshot.missing
    assert not report.skipped
    if scenario in CLEAN:
        assert report.exit_status() == 0
    for f in report.findings:
        assert f.message.endswith(".") and "\n" not in f.message


@pytest.mark.parametrize("data", MATRIX, ids=MATRIX_IDS, indirect=True)
def test_printk_ring_read_whole_equals_drgns_helper(data: DumpData) -> None:
    """collect/kmsg.py reads the lockless printk ring with one read per array; every
    record (text and timestamp, in order) must be what drgn's helper returns."""
    assert data.lockless_records is not None
    assert len(data.records) > 200
    assert data.lockless_records == data.records


def test_overflow_on_6_1_explains_every_drop() -> None:
    d = dump_data("6.1", "overflow")
    report = checks.run(d.snapshot)
    static = [f for f in report.findings if f.code == "RMEM-STATIC-ARRAY"]
    assert [f.severity for f in static] == ["error"]
    assert static[0].evidence["dt_regions"] == 69 and static[0].evidence["capacity"] == 64
    assert static[0].evidence["log_count"] == 5
    dropped = {f.region: f for f in report.findings if f.code == "RMEM-DROPPED"}
    assert len(dropped) == 5
    for f in dropped.values():
        assert "static reserved_mem array full" in f.evidence["cause"]
        assert any("not enough space" in line for line in f.evidence["log"])
    # The missing CMA pool: dropped, and the kernel fell back to its config default.
    cma = next(f for f in report.findings if f.code == "RMEM-CMA-MISSING")
    assert cma.region == "linux,cma" and "'reserved'" in cma.message
    assert [a.name for a in d.snapshot.cma or []] == ["reserved"]
    rm = d.snapshot.reserved_mem
    assert rm is not None and (rm.layout, rm.count, rm.capacity) == ("static-array", 64, 64)


@pytest.mark.parametrize("series", ["6.12", "7.x"])
def test_overflow_dynamic_array_in_use(series: str) -> None:
    d = dump_data(series, "overflow")
    rm = d.snapshot.reserved_mem
    assert rm is not None and rm.layout == "dynamic-array"
    # Capacity equals the regions counted (69), all tracked.
    assert rm.capacity == rm.count == 69 == len(rm.entries)
    assert rm.points_to_init_array is False
    # The init-time array lies in the freed, unmapped init section, pages given back.
    assert rm.init_array_in_init_section is True
    assert rm.init_array_readable is False
    assert rm.init_array_pages and rm.init_array_pages_freed == rm.init_array_pages
    # The dynamic array sits inside a memblock.reserved range of at least its size.
    assert rm.array_phys is not None and d.snapshot.memblock is not None
    size = rm.capacity * rm.entry_size
    assert any(
        r.base <= rm.array_phys and rm.array_phys + size <= r.base + r.size
        for r in d.snapshot.memblock.reserved
    )
    # The ops layout tells 7.x (node_init) from 6.12.
    assert rm.ops_layout == ("node" if series == "7.x" else "device")
    report = checks.run(d.snapshot)
    assert report.exit_status() == 0
    assert [a.name for a in d.snapshot.cma or []] == ["linux,cma"]


def test_static_layout_members() -> None:
    """6.1 entries carry fdt_node and phandle; 7.x has neither."""
    e61 = dump_data("6.1", "baseline").snapshot.reserved_mem
    e7 = dump_data("7.x", "baseline").snapshot.reserved_mem
    assert e61 is not None and e7 is not None
    assert all(e.phandle is not None and e.fdt_node for e in e61.entries)
    assert all(e.phandle is None and e.fdt_node is None for e in e7.entries)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rmem_inspect", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("series", "scenario", "status"), [("6.1", "overflow", 1), ("6.12", "baseline", 0)]
)
def test_cli_json_contract(series: str, scenario: str, status: int) -> None:
    m = manifest_for(series, scenario)
    p = _cli("report", "--vmcore", str(m.path("vmcore")), "--vmlinux", str(m.path("vmlinux")),
             "--format", "json")  # fmt: skip
    assert p.returncode == status, p.stderr
    out = json.loads(p.stdout)
    for key in ("release", "arch", "layout", "capacity", "count"):
        assert key in out["kernel"]
    assert out["kernel"]["release"] == m.kernel_release and out["kernel"]["arch"] == "arm64"
    region_keys = {"name", "base", "size", "kind", "nomap", "reusable", "compatible", "tracked",
                   "reserved", "sources"}  # fmt: skip
    assert out["regions"] and all(region_keys <= set(r) for r in out["regions"])
    assert all(isinstance(r["base"], int | None) for r in out["regions"])
    for f in out["findings"]:
        assert set(f) >= {"code", "severity", "region", "message", "evidence"}
        assert f["severity"] in ("error", "warning", "info")
    want = expected_findings(scenario, series)
    assert {(f["code"], f["region"]) for f in out["findings"] if f["severity"] != "info"} == want


def test_cli_finds_vmlinux_by_build_id_and_rejects_the_wrong_one() -> None:
    m12 = manifest_for("6.12", "baseline")
    m61 = manifest_for("6.1", "baseline")
    # Without --vmlinux: found in the factory cache by release and build-id.
    p = _cli("check", "--vmcore", str(m12.path("vmcore")))
    assert p.returncode == 0, p.stderr
    # The wrong series' vmlinux: one line, exit 2, both build-ids named.
    p = _cli("check", "--vmcore", str(m12.path("vmcore")), "--vmlinux", str(m61.path("vmlinux")))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    d12, d61 = dump_data("6.12", "baseline"), dump_data("6.1", "baseline")
    assert d12.vmcoreinfo["BUILD-ID"] in lines[0] and d61.vmcoreinfo["BUILD-ID"] in lines[0]


def test_snapshot_roundtrip_through_cli(tmp_path: object) -> None:
    m = manifest_for("6.12", "overflow")
    out = f"{tmp_path}/snap.json"
    p = _cli("snapshot", "--vmcore", str(m.path("vmcore")), "-o", out)
    assert p.returncode == 0, p.stderr
    a = _cli("check", "--snapshot", out, "--format", "json")
    b = _cli("check", "--vmcore", str(m.path("vmcore")), "--format", "json")
    assert a.returncode == b.returncode == 0
    assert json.loads(a.stdout)["findings"] == json.loads(b.stdout)["findings"]
