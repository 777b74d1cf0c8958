# SPDX-License-Identifier: GPL-2.0-or-later
"""
The checks scale as sorted sweeps, not pairwise loops, on synthetic snapshots
grown from a golden one (bench/synthetic.py): 500 and 2,000 extra regions and
memblock entries, every 50th fixed region left out of reserved_mem.

Never timed: the cost is counted as the lines the checks execute (sys.settrace,
only frames of rmem_inspect/checks.py) plus the string comparisons made on
region names (a counting ``str`` subclass: ``name in some_list`` costs one
comparison per element, invisible to line counting). Quadrupling n must cost
about 4 x log(2000)/log(500) = 4.9 times as much; a pairwise loop costs 16.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from bench.synthetic import grow
from rmem_inspect import checks
from rmem_inspect.model import Snapshot
from tests.expected import expected_findings

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "7.x-baseline.json"
CHECKS_FILE = checks.__file__
SMALL, LARGE = 500, 2000
DROPPED_EVERY = 50


class CountingStr(str):
    """A region name that counts the equality comparisons made on it."""

    eq_calls = 0

    def __eq__(self, other: object) -> bool:
        CountingStr.eq_calls += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        CountingStr.eq_calls += 1
        return str.__ne__(self, other)

    __hash__ = str.__hash__


def _golden() -> Snapshot:
    return Snapshot.loads(GOLDEN.read_text())


def _cost(snap: Snapshot) -> tuple[checks.Report, int]:
    """Run the checks; lines executed in checks.py plus name comparisons."""
    lines = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename == CHECKS_FILE else None

    CountingStr.eq_calls = 0
    old = sys.gettrace()
    sys.settrace(global_)
    try:
        report = checks.run(snap)
    finally:
        sys.settrace(old)
    return report, lines + CountingStr.eq_calls


def _check_findings(report: checks.Report, names: list[str], dropped: list[str]) -> None:
    """Exactly what the inputs imply: the golden board's findings (none: it is the
    clean baseline scenario), RMEM-DROPPED and RMEM-UNTRACKED for each dropped region."""
    pairs = {(f.code, f.region) for f in report.findings if f.severity != "info"}
    want = expected_findings("baseline", "7.x")
    want |= {(code, name) for name in dropped for code in ("RMEM-DROPPED", "RMEM-UNTRACKED")}
    assert pairs == want
    views = {v.name: v for v in report.regions}
    gone = set(dropped)
    for name in names:
        v = views[name]
        assert v.tracked == (name not in gone)
        assert v.reserved is True
        assert v.verdict == ("dropped" if name in gone else "ok")


def test_grown_snapshot_findings() -> None:
    n = SMALL
    g = grow(_golden(), n, n, dropped_every=DROPPED_EVERY)
    assert len(g.names) == n
    assert g.memblock_entries > 2 * n
    # Every 50th region except the dynamic ones (every 7th, not no-map).
    assert len(g.dropped) == sum(
        1 for i in range(n) if i % DROPPED_EVERY == DROPPED_EVERY - 1 and (i % 10 == 0 or i % 7)
    )
    _check_findings(checks.run(g.snapshot), g.names, g.dropped)


def test_checks_cost_grows_n_log_n() -> None:
    golden = _golden()
    costs = {}
    for n in (SMALL, LARGE):
        g = grow(golden, n, n, dropped_every=DROPPED_EVERY, name_type=CountingStr)
        assert isinstance(g.snapshot.fdt and g.snapshot.fdt.regions[-1].name, CountingStr)
        report, costs[n] = _cost(g.snapshot)
        _check_findings(report, g.names, g.dropped)
    k = LARGE / SMALL
    n_log_n = k * math.log(LARGE) / math.log(SMALL)
    ratio = costs[LARGE] / costs[SMALL]
    # Linear work gives k (4), n log n about 4.9, pairwise loops k**2 (16).
    assert ratio < 1.25 * n_log_n, (costs, ratio)
    assert ratio > 0.75 * k, (costs, ratio)  # the counter does see per-region work
