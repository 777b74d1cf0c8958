# SPDX-License-Identifier: GPL-2.0-or-later
"""
The dump job of bench/run.py: one factory dump measured in fresh subprocesses, bare
drgn against ``rmem-inspect report`` (with the vmlinux, and without one), and the
checks alone on its snapshot.

The baseline is drgn without this project's own drgn plugin: installed in the same
environment, ``rmem_inspect.drgn.plugin`` (setup.cfg, entry point group
``drgn.plugins``) would otherwise load into "bare" drgn as well and inflate the
baseline. drgn skips the entry points named in ``DRGN_DISABLE_PLUGINS`` (comma
separated shell patterns, drgn's _drgn_util/plugins.py); :func:`bare_env` adds ours,
for the baseline only.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.scale import time_calls
from rmem_inspect import checks
from rmem_inspect.model import Snapshot
from vmcores.manifest import DumpManifest

__all__ = ["BARE", "DumpResult", "Run", "Stat", "bare_env", "bench_dump", "run_child"]

ROOT = Path(__file__).resolve().parent.parent
#: This project's drgn plugin (setup.cfg ``[options.entry_points] drgn.plugins``).
OWN_PLUGIN = "rmem_inspect"

#: The bare drgn baseline, run as ``python -c BARE vmcore vmlinux``.
BARE = """\
import sys
import drgn
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
try:
    prog.load_debug_info([sys.argv[2]])
except drgn.MissingDebugInfoError:
    pass  # as rmem_inspect: modules without debug info are fine
prog["init_uts_ns"]
"""


def bare_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the bare drgn baseline: ``base`` (default: ours) with this
    project's drgn plugin added to ``DRGN_DISABLE_PLUGINS``; other plugins load as they
    would for any drgn user."""
    env = dict(os.environ if base is None else base)
    disabled = [p for p in env.get("DRGN_DISABLE_PLUGINS", "").split(",") if p]
    if "*" not in disabled and OWN_PLUGIN not in disabled:
        disabled.append(OWN_PLUGIN)
    env["DRGN_DISABLE_PLUGINS"] = ",".join(disabled)
    return env


@dataclass
class Run:
    wall: float
    cpu: float
    #: Peak RSS in KiB (ru_maxrss of the child).
    rss: int


@dataclass
class Stat:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(statistics.median(values), min(values), max(values))


@dataclass
class DumpResult:
    dump: str
    regions: int
    bare: list[Run] = field(default_factory=list)
    report: list[Run] = field(default_factory=list)
    #: Milliseconds of checks.run() on the dump's snapshot.
    checks_ms: list[float] = field(default_factory=list)
    #: ``report --types btf`` (no vmlinux), and why it did not run when it did not.
    btf: list[Run] = field(default_factory=list)
    btf_skipped: str | None = None

    def stat(self, who: str, what: str) -> Stat:
        runs = {"bare": self.bare, "report": self.report, "btf": self.btf}[who]
        return Stat.of([getattr(r, what) for r in runs])

    def ratio(self, what: str, who: str = "report") -> float:
        return self.stat(who, what).median / self.stat("bare", what).median

    def min_ratio(self, what: str) -> float:
        """Best report run / best bare run: the least disturbed runs on a busy machine."""
        return self.stat("report", what).low / self.stat("bare", what).low

    def paired_btf(self, what: str) -> Stat:
        """Spread of the per-repetition btf / bare ratios."""
        return Stat.of(
            [getattr(r, what) / getattr(b, what) for r, b in zip(self.btf, self.bare, strict=True)]
        )

    def paired(self, what: str) -> Stat:
        """Spread of the per-repetition ratios (runs of one repetition are adjacent)."""
        return Stat.of(
            [
                getattr(r, what) / getattr(b, what)
                for r, b in zip(self.report, self.bare, strict=True)
            ]
        )


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``cmd`` to completion; its wall time, CPU time and peak RSS alone."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode not in (0, 1):
            err.seek(0)
            msg = err.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"{' '.join(cmd[:4])}... exited {p.returncode}: {msg[-1:]}")
    return Run(wall=wall, cpu=ru.ru_utime + ru.ru_stime, rss=ru.ru_maxrss)


def bench_dump(
    m: DumpManifest, reps: int, checks_reps: int, log: Callable[[str], None]
) -> DumpResult:
    vmcore, vmlinux = str(m.path("vmcore")), str(m.path("vmlinux"))
    bare = [sys.executable, "-c", BARE, vmcore, vmlinux]
    report = [sys.executable, "-m", "rmem_inspect", "report", "--vmcore", vmcore,
              "--vmlinux", vmlinux]  # fmt: skip
    btf = [sys.executable, "-m", "rmem_inspect", "report", "--vmcore", vmcore, "--types", "btf"]
    run_child(bare, bare_env())  # page cache
    res = DumpResult(dump=f"{m.series}/{m.scenario}", regions=0)
    try:
        run_child(btf)  # warm, and find out whether this kernel can be read without a vmlinux
    except RuntimeError as e:
        # run_child's message ends with the child's last stderr line, as a list
        res.btf_skipped = str(e).split("error: ", 1)[-1].removesuffix("']")
    for i in range(reps):
        # Alternate the order so that none always runs on a warmer machine.
        order = [("bare", bare), ("report", report)]
        if res.btf_skipped is None:
            order.append(("btf", btf))
        for who, cmd in order if i % 2 == 0 else reversed(order):
            env = bare_env() if who == "bare" else None
            getattr(res, who).append(run_child(cmd, env))
    with tempfile.TemporaryDirectory(prefix="rmem-bench-") as tmp:
        out = Path(tmp) / "snapshot.json"
        subprocess.run(
            [sys.executable, "-m", "rmem_inspect", "snapshot", "--vmcore", vmcore,
             "--vmlinux", vmlinux, "-o", str(out)],  # fmt: skip
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        snap = Snapshot.loads(out.read_text())
    res.regions = len(checks.run(snap).regions)
    res.checks_ms = [t * 1e3 for t in time_calls(lambda: checks.run(snap), checks_reps)[0]]
    w, r = res.stat("bare", "wall"), res.stat("report", "wall")
    btf_note = (
        f"  btf {res.stat('btf', 'wall').median:5.2f} s (x{res.ratio('wall', 'btf'):.2f}, "
        f"rss x{res.ratio('rss', 'btf'):.2f})"
        if res.btf
        else "  btf skipped"
    )
    log(
        f"{res.dump:24} {res.regions:5} regions  wall {w.median:5.2f} s -> {r.median:5.2f} s "
        f"(x{res.ratio('wall'):.2f})  rss x{res.ratio('rss'):.2f}  "
        f"checks {statistics.median(res.checks_ms):.1f} ms{btf_note}"
    )
    return res
