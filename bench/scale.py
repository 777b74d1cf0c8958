# SPDX-License-Identifier: GPL-2.0-or-later
"""
The checks-at-scale job of bench/run.py: checks.run() timed in this process on
synthetic snapshots (bench/synthetic.py) grown from a golden one.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.synthetic import grow
from rmem_inspect import checks
from rmem_inspect.model import Snapshot

__all__ = ["GOLDEN", "SYNTHETIC_SIZES", "SyntheticResult", "bench_synthetic", "time_calls"]

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC_SIZES = [(1000, 1000), (10000, 10000)]
GOLDEN = ROOT / "tests" / "golden" / "7.x-baseline.json"


@dataclass
class SyntheticResult:
    regions: int
    memblock: int
    dropped: int
    memblock_entries: int
    findings: int
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def time_calls(fn: Callable[[], object], reps: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``reps`` calls of ``fn`` (after one warm-up call)."""
    fn()
    gc.collect()
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def bench_synthetic(
    sizes: list[tuple[int, int]], reps: int, log: Callable[[str], None]
) -> list[SyntheticResult]:
    golden = Snapshot.loads(GOLDEN.read_text())
    out = []
    for regions, memblock in sizes:
        for dropped_every in (0, 50):
            g = grow(golden, regions, memblock, dropped_every=dropped_every)
            report = checks.run(g.snapshot)
            wall, cpu = time_calls(lambda s=g.snapshot: checks.run(s), reps)  # type: ignore[misc]
            res = SyntheticResult(
                regions=regions,
                memblock=memblock,
                dropped=len(g.dropped),
                memblock_entries=g.memblock_entries,
                findings=len(report.findings),
                wall_ms=[t * 1e3 for t in wall],
                cpu_ms=[t * 1e3 for t in cpu],
            )
            del g, report
            log(
                f"synthetic {regions:6} regions +{memblock:6} memblock, {res.dropped:4} dropped: "
                f"checks {statistics.median(res.wall_ms):7.1f} ms wall "
                f"({min(res.wall_ms):.1f}..{max(res.wall_ms):.1f}), "
                f"{statistics.median(res.cpu_ms):7.1f} ms CPU, {res.findings} findings"
            )
            out.append(res)
    return out
