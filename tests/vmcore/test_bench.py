# SPDX-License-Identifier: GPL-2.0-or-later
"""
bench/run.py runs from one command on a real dump and on synthetic snapshots,
and its saved results replay to the same tables. Nothing here compares a time
with a target: timing is the benchmark's job (docs/bench.md), not the tests'.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import bench_synthetic
from tests.vmcore.conftest import dump_data

pytestmark = pytest.mark.vmcore

ROOT = Path(__file__).resolve().parent.parent.parent


def test_bench_one_dump_and_replay(tmp_path: Path) -> None:
    out_json, out_md = tmp_path / "run.json", tmp_path / "run.md"
    run = subprocess.run(
        [sys.executable, "bench/run.py", "-d", "6.12/baseline", "-r", "2", "--checks-reps", "1",
         "--no-synthetic", "--json", str(out_json), "--markdown", str(out_md)],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode in (0, 1), run.stderr
    missed = [line for line in run.stdout.splitlines() if line.startswith("target missed: ")]
    assert (run.returncode == 1) == bool(missed)
    data = json.loads(out_json.read_text())
    [dump] = data["dumps"]
    assert dump["dump"] == "6.12/baseline"
    # the regions the report shows for this dump
    from rmem_inspect import checks

    assert dump["regions"] == len(checks.run(dump_data("6.12", "baseline").snapshot).regions)
    for who in ("bare", "report"):
        assert len(dump[who]) == 2
        for r in dump[who]:
            assert r["wall"] > 0 and r["cpu"] > 0 and r["rss"] > 100 * 1024  # KiB: drgn alone
    # the report child holds the bare work and more: never less memory
    assert min(r["rss"] for r in dump["report"]) >= 0.95 * min(r["rss"] for r in dump["bare"])
    # without a vmlinux: measured beside them, and with no DWARF index it holds far less
    assert dump["btf_skipped"] is None and len(dump["btf"]) == 2
    assert max(r["rss"] for r in dump["btf"]) < min(r["rss"] for r in dump["bare"])
    md = out_md.read_text()
    assert "| 6.12/baseline | 5 |" in md and md.startswith("Machine: ")
    assert "No vmlinux: `report --types btf`" in md
    replay = subprocess.run(
        [sys.executable, "bench/run.py", "--from-json", str(out_json)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replay.returncode == run.returncode
    assert replay.stdout.startswith(md.rstrip("\n"))


def test_bench_synthetic_finds_what_it_planted() -> None:
    logged: list[str] = []
    results = bench_synthetic([(300, 300)], 1, logged.append)
    assert [(r.regions, r.memblock) for r in results] == [(300, 300), (300, 300)]
    clean, dropped = results
    assert clean.dropped == 0 and clean.findings == 0
    # every 50th fixed region left out of reserved_mem: RMEM-DROPPED + RMEM-UNTRACKED each
    assert dropped.dropped > 0 and dropped.findings == 2 * dropped.dropped
    assert len(logged) == 2 and all(len(r.wall_ms) == 1 for r in results)
