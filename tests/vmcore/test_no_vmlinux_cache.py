# SPDX-License-Identifier: GPL-2.0-or-later
"""
No vmlinux, cold and warm: the report of a 6.12 and a 7.x dump read with kallsyms
+ BTF is the vmlinux report whether the BTF index is built (empty cache), read
from the cache written by that first run, or not cached at all (--no-cache); the
kallsyms tables were read in the kernel's own layout, not by drgn's loader
(--verbose says which), and the cache holds one index per build-id.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dumps import manifest_for

pytestmark = pytest.mark.vmcore


def _report(vmcore: str, *args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "rmem_inspect", "report", "--vmcore", vmcore, *args],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize("series", ["6.12", "7.x"])
def test_cold_warm_and_uncached_reports_equal_the_vmlinux_one(series: str, tmp_path: Path) -> None:
    m = manifest_for(series, "overflow")
    vmcore, vmlinux = str(m.path("vmcore")), str(m.path("vmlinux"))
    full = _report(vmcore, "--vmlinux", vmlinux, cache=tmp_path / "unused")
    cold = _report(vmcore, "--types", "btf", "--verbose", cache=tmp_path)
    warm = _report(vmcore, "--types", "btf", "--verbose", cache=tmp_path)
    bare = _report(vmcore, "--types", "btf", "--no-cache", cache=tmp_path / "none")
    for run in (cold, warm, bare):
        assert run.returncode == full.returncode
        assert run.stdout.split("Regions")[1] == full.stdout.split("Regions")[1]
    layout = "7.x" if series == "7.x" else "6.12"
    assert f"kallsyms tables in the {layout} layout" in cold.stderr
    assert "BTF index: built, cached in" in cold.stderr and "when done" in cold.stderr
    assert "BTF index: cached for build-id" in warm.stderr
    assert bare.stderr == "" and not (tmp_path / "none" / "rmem-inspect").exists()
    files = list((tmp_path / "rmem-inspect" / "btf-index").glob("*.idx"))
    assert len(files) == 1 and files[0].stem in warm.stderr
