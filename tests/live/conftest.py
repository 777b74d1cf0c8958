# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fixtures of the live tier: one real arm64 guest per (kernel series, scenario),
booted once per session (tests/live/guest.py). The tier needs
qemu-system-aarch64, dtc, cpio and zstd, and the network for the first build of
the guest userland (cached in the factory cache afterwards).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.live.guest import GuestRun, run_guest

_RUNS: dict[tuple[str, str], GuestRun] = {}
#: Where the tier writes its timings (read by the CI report).
TIMINGS = Path(os.environ.get("RMEM_LIVE_TIMINGS", "/tmp/rmem-live-timings.json"))


def guest_run(series: str, scenario: str) -> GuestRun:
    for tool in ("qemu-system-aarch64", "dtc", "cpio", "zstd"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: the live tier boots real arm64 guests")
    key = (series, scenario)
    if key not in _RUNS:
        _RUNS[key] = run_guest(series, scenario)
        data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
        data[f"{series}/{scenario}"] = {k: round(v, 2) for k, v in _RUNS[key].timings.items()}
        TIMINGS.write_text(json.dumps(data, indent=1) + "\n")
    return _RUNS[key]
