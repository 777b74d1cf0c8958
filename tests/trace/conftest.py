# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fixtures of the trace tier: one real arm64 guest per (kernel series, scenario),
booted once per session (tests/trace/guest.py). The tier needs
qemu-system-aarch64, dtc, cpio and zstd to boot, and gcc-aarch64-linux-gnu,
qemu-user and make to build the test module; the network for the first build of
the bcc userland (cached in the factory cache afterwards).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.trace.guest import TraceRun, run_trace_guest

_RUNS: dict[tuple[str, str], TraceRun] = {}
#: A guest that failed once fails every test of its case without booting again.
_FAILED: dict[tuple[str, str], str] = {}
#: Where the tier writes its timings (read by the CI report).
TIMINGS = Path(os.environ.get("RMEM_TRACE_TIMINGS", "/tmp/rmem-trace-timings.json"))
TOOLS = ("qemu-system-aarch64", "dtc", "cpio", "zstd", "aarch64-linux-gnu-gcc", "qemu-aarch64")


def trace_run(series: str, scenario: str) -> TraceRun:
    for tool in TOOLS:
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: the trace tier boots arm64 guests and builds a module")
    key = (series, scenario)
    if key in _FAILED:
        pytest.fail(f"the {series}/{scenario} trace guest failed earlier: {_FAILED[key]}")
    if key not in _RUNS:
        try:
            _RUNS[key] = run_trace_guest(series, scenario)
        except Exception as e:
            _FAILED[key] = f"{type(e).__name__}: {str(e)[:2000]}"
            raise
        data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
        data[f"{series}/{scenario}"] = {k: round(v, 2) for k, v in _RUNS[key].timings.items()}
        TIMINGS.write_text(json.dumps(data, indent=1) + "\n")
    return _RUNS[key]
