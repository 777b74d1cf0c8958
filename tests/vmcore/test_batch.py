# SPDX-License-Identifier: GPL-2.0-or-later
"""
batch over every factory dump plus a truncated copy of one: the bad dump is
reported with its reason and the others are all read, each vmlinux found by
build-id in the factory's debug directories.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rmem_inspect.batch import render_summary, run_batch
from tests.conftest import MATRIX
from tests.expected import expected_findings
from tests.vmcore.conftest import manifest_for
from vmcores.manifest import default_cache

pytestmark = pytest.mark.vmcore


def test_batch_all_dumps_and_a_corrupt_one(tmp_path: Path) -> None:
    where = {}
    for series, scenario in MATRIX:
        m = manifest_for(series, scenario)
        d = tmp_path / "dumps" / f"{series}-{scenario}"
        d.mkdir(parents=True)
        (d / "vmcore").symlink_to(m.path("vmcore"))
        where[str(d / "vmcore")] = (series, scenario)
    first = manifest_for(*MATRIX[0]).path("vmcore")
    bad = tmp_path / "dumps" / "truncated.vmcore"
    with open(first, "rb") as src, open(bad, "wb") as dst:
        dst.write(src.read(32 << 20))
    jsonl = tmp_path / "out.jsonl"
    with open(jsonl, "w") as out:
        results, seconds = run_batch(
            str(tmp_path / "dumps"),
            debug_dirs=[str(default_cache() / "kernels")],
            jobs=2,
            jsonl=out,
        )
    assert len(results) == len(MATRIX) + 1
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sorted(r["path"] for r in lines) == sorted(r.path for r in results)
    by_path = {r.path: r for r in results}
    failed = by_path.pop(str(bad))
    assert failed.status == "error" and failed.error is not None
    assert "truncated" in failed.error
    for path, r in by_path.items():
        series, scenario = where[path]
        assert r.status == "ok", (path, r.error)
        assert r.vmlinux is not None and os.path.isfile(r.vmlinux)
        assert {(c, n) for c, n in r.findings} == expected_findings(scenario, series)
    summary = render_summary(results, seconds, 2)
    assert "1 failed" in summary and "truncated" in summary


def test_batch_without_vmlinux_reads_kallsyms_and_btf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No vmlinux anywhere (an empty cache, no debug directories): the 6.12 and 7.x
    dumps are read from their own kallsyms and BTF with the same findings; the 6.1
    ones (no CONFIG_KALLSYMS_ALL) are error records that say so."""
    where = {}
    for series, scenario in MATRIX:
        m = manifest_for(series, scenario)
        d = tmp_path / "dumps" / f"{series}-{scenario}"
        d.mkdir(parents=True)
        (d / "vmcore").symlink_to(m.path("vmcore"))
        where[str(d / "vmcore")] = (series, scenario)
    monkeypatch.setenv("RMEM_INSPECT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("RMEM_INSPECT_DEBUG_DIRS", "")
    results, seconds = run_batch(str(tmp_path / "dumps"), debug_dirs=[], jobs=2)
    assert len(results) == len(MATRIX)
    for r in results:
        series, scenario = where[r.path]
        if series == "6.1":
            assert r.status == "error" and r.error is not None
            assert "CONFIG_KALLSYMS_ALL" in r.error and "\n" not in r.error
            continue
        assert r.status == "ok", (r.path, r.error)
        assert r.debug_info == "btf" and r.vmlinux is None
        assert {(c, n) for c, n in r.findings} == expected_findings(scenario, series)
    assert " btf " in render_summary(results, seconds, 2)
