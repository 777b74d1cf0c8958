#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Benchmark of the no-vmlinux path (kallsyms + BTF) against bare drgn with the
vmlinux, in one run (docs/bench.md, issue 25).

    python bench/no_vmlinux.py                 # every 6.12/7.x factory dump, 3 repetitions
    python bench/no_vmlinux.py -d '7.x/*' -r 5 --markdown out.md --json out.json

For every dump of a kernel whose kallsyms lists data symbols (6.12, 7.x), each
repetition runs in fresh subprocesses, in alternating order: (a) bare drgn:
``set_core_dump``, ``load_debug_info([vmlinux])``, ``prog['init_uts_ns']`` (the
baseline of bench/run.py); (b) ``report --vmcore V --vmlinux L`` (DWARF);
(c) ``report --vmcore V --types btf`` with an empty cache directory (cold);
(d) the same with the BTF index cached by an earlier run (warm). Wall time is
taken around the child, CPU time and peak RSS from ``os.wait4``. Then ``batch``
runs once over every factory dump (6.1 included: refused in one line) with no
vmlinux to be found (an empty factory cache for the lookup, no debuginfod), one
worker, warm index cache: CPU seconds per dump from the children's rusage.

Targets (issue 25): cold <= 0.5x bare wall, warm <= 0.35x, peak RSS <= 0.3x,
batch <= 0.25 s CPU per dump, DWARF report <= 1.1x bare.
Exit status: 0 when every target holds, 1 when one is missed.
"""

from __future__ import annotations

import argparse
import compileall
import fnmatch
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import BARE, Run, bare_env, run_child  # noqa: E402
from vmcores.manifest import default_cache, load_manifests  # noqa: E402

__all__ = ["main"]

COLD_RATIO = 0.5
WARM_RATIO = 0.35
RSS_RATIO = 0.3
BATCH_CPU = 0.25
DWARF_RATIO = 1.1
WHO = ("bare", "dwarf", "cold", "warm")


@dataclass
class DumpRuns:
    dump: str
    runs: dict[str, list[Run]] = field(default_factory=lambda: {w: [] for w in WHO})

    def median(self, who: str, what: str) -> float:
        return statistics.median(getattr(r, what) for r in self.runs[who])

    def ratio(self, who: str, what: str) -> float:
        return self.median(who, what) / self.median("bare", what)

    def spread(self, who: str, what: str) -> tuple[float, float]:
        """Lowest and highest per-repetition ratio to the bare run of that repetition."""
        pairs = [getattr(r, what) / getattr(b, what)
                 for r, b in zip(self.runs[who], self.runs["bare"], strict=True)]  # fmt: skip
        return min(pairs), max(pairs)


def _env(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = cache
    env["DEBUGINFOD_URLS"] = ""
    return env


def bench_dump(series: str, scenario: str, vmcore: str, vmlinux: str, reps: int,
               work: str) -> DumpRuns:  # fmt: skip
    py = sys.executable
    report = [py, "-m", "rmem_inspect", "report", "--vmcore", vmcore]
    warm_dir = tempfile.mkdtemp(dir=work)
    cmds = {
        "bare": [py, "-c", BARE, vmcore, vmlinux],
        "dwarf": [*report, "--vmlinux", vmlinux],
        "cold": [*report, "--types", "btf"],
        "warm": [*report, "--types", "btf"],
    }
    run_child(cmds["bare"], bare_env())  # page cache
    run_child(cmds["warm"], _env(warm_dir))  # fills the warm index cache
    res = DumpRuns(f"{series}/{scenario}")
    for i in range(reps):
        order = list(WHO) if i % 2 == 0 else list(reversed(WHO))
        for who in order:
            env = bare_env() if who == "bare" else None
            if who == "cold":
                env = _env(tempfile.mkdtemp(dir=work))
            elif who == "warm":
                env = _env(warm_dir)
            res.runs[who].append(run_child(cmds[who], env))
    return res


def bench_batch(work: str) -> dict[str, float]:
    """``batch`` over every factory dump, no vmlinux findable, one worker."""
    dumps = default_cache() / "dumps"
    env = _env(tempfile.mkdtemp(dir=work))
    env["RMEM_INSPECT_CACHE"] = tempfile.mkdtemp(dir=work)  # no factory vmlinux to find
    cmd = [sys.executable, "-m", "rmem_inspect", "batch", str(dumps), "-j", "1", "-q",
           "--jsonl", os.path.join(work, "batch.jsonl")]  # fmt: skip
    run_child(cmd, env)  # fills the index cache (one index per kernel build)
    r = run_child(cmd, env)
    with open(os.path.join(work, "batch.jsonl")) as f:
        lines = [json.loads(x) for x in f]
    n = len(lines)
    return {
        "dumps": n,
        "btf": sum(1 for x in lines if x.get("debug_info") == "btf"),
        "refused": sum(1 for x in lines if x.get("status") != "ok"),
        "cpu": r.cpu,
        "wall": r.wall,
        "cpu_per_dump": r.cpu / n,
    }


def bench_phases(vmcore: str, reps: int, work: str) -> dict[str, dict[str, float]]:
    """Median CPU seconds per phase (bench/phases.py), cold and warm, and what the
    floor costs: interpreter start, ``import drgn``, ``set_core_dump()`` with and
    without drgn's command-line plugins."""
    py = sys.executable
    floor = {
        "interpreter start": [py, "-c", "pass"],
        "interpreter + import drgn": [py, "-c", "import drgn"],
        "+ set_core_dump (plugins loaded)": [py, "-c", SET_CORE, vmcore],
    }
    out: dict[str, dict[str, float]] = {"floor": {}}
    for name, cmd in floor.items():
        out["floor"][name] = statistics.median(run_child(cmd).cpu for _ in range(reps))
    skip = dict(os.environ, DRGN_DISABLE_PLUGINS="builtin_commands,crash_commands,rmem_inspect")
    out["floor"]["+ set_core_dump (command plugins skipped)"] = statistics.median(
        run_child(floor["+ set_core_dump (plugins loaded)"], skip).cpu for _ in range(reps)
    )
    for kind in ("cold", "warm"):
        warm_dir = tempfile.mkdtemp(dir=work)
        runs = []
        for _ in range(reps):
            cache = tempfile.mkdtemp(dir=work) if kind == "cold" else warm_dir
            p = subprocess.run([py, str(ROOT / "bench" / "phases.py"), vmcore], env=_env(cache),
                               capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
            runs.append(json.loads(p.stdout))
        if kind == "warm":  # the first warm run wrote the cache: leave it out
            runs = runs[1:] or runs
        out[kind] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return out


SET_CORE = "import drgn, sys; drgn.Program().set_core_dump(sys.argv[1])"


def markdown(results: list[DumpRuns], batch: dict[str, float] | None, reps: int) -> str:
    out = [
        f"One run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}; "
        f"{reps} repetitions; medians, ratios to bare drgn with the vmlinux "
        "(per-repetition ratio range in brackets).",
        "",
        "| dump | bare wall s | cold wall | warm wall | DWARF report wall | bare CPU s | "
        "cold CPU | warm CPU | DWARF CPU | bare RSS MiB | no-vmlinux RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = []
        for what in ("wall", "cpu"):
            if what == "cpu":
                cells.append(f"{r.median('bare', 'cpu'):.2f}")
            for who in ("cold", "warm", "dwarf"):
                lo, hi = r.spread(who, what)
                cells.append(f"{r.ratio(who, what):.2f}x [{lo:.2f}-{hi:.2f}]")
        out.append(
            f"| {r.dump} | {r.median('bare', 'wall'):.2f} | {' | '.join(cells)} | "
            f"{r.median('bare', 'rss') / 1024:.0f} | {r.ratio('warm', 'rss'):.2f}x |"
        )
    if results:
        out.append("")
        for who, label in (("cold", "cold"), ("warm", "warm"), ("dwarf", "DWARF report")):
            for what in ("wall", "cpu"):
                ratios = sorted(x.ratio(who, what) for x in results)
                out.append(
                    f"- {label} {what}: median {statistics.median(ratios):.2f}x bare "
                    f"(dumps {ratios[0]:.2f}x to {ratios[-1]:.2f}x)"
                )
        rss = sorted(x.ratio("warm", "rss") for x in results)
        out.append(f"- peak RSS: {rss[0]:.2f}x to {rss[-1]:.2f}x bare")
    if results:
        out.append("")
        for who, label in (("bare", "bare"), ("cold", "cold"), ("warm", "warm"),
                           ("dwarf", "DWARF report")):  # fmt: skip
            cpu = statistics.median(x.median(who, "cpu") for x in results)
            out.append(f"- {label}: median CPU {cpu:.2f} s per run")
    if batch:
        out += ["", f"`batch` over {batch['dumps']:.0f} factory dumps, no vmlinux, one worker: "
                f"{batch['cpu']:.1f} s CPU, {batch['cpu_per_dump']:.3f} s CPU per dump "
                f"({batch['btf']:.0f} read with kallsyms+BTF, {batch['refused']:.0f} refused: "
                "6.1 has no data symbols in kallsyms)."]  # fmt: skip
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-d", "--dumps", default="*", help="series/scenario pattern")
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--no-batch", action="store_true")
    ap.add_argument("--phases", metavar="SERIES/SCENARIO", help="also profile this dump's phases")
    ap.add_argument("--markdown", metavar="FILE")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--from-json", metavar="FILE", help="print the tables of a saved run")
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        again = [DumpRuns(d["dump"], {w: [Run(**x) for x in d["runs"][w]] for w in WHO})
                 for d in saved["dumps"]]  # fmt: skip
        sys.stdout.write(markdown(again, saved["batch"], len(again[0].runs["bare"])))
        return 0
    manifests = [m for m in load_manifests() if m.series in ("6.12", "7.x")
                 and fnmatch.fnmatch(f"{m.series}/{m.scenario}", args.dumps)]  # fmt: skip
    # bytecode as pip install leaves it (this machine sets PYTHONDONTWRITEBYTECODE=1)
    compileall.compile_dir(ROOT / "rmem_inspect", quiet=1)
    results = []
    with tempfile.TemporaryDirectory(prefix="rmem-bench-nv-") as work:
        for m in sorted(manifests, key=lambda m: (m.series, m.scenario)):
            print(f"{m.series}/{m.scenario} ...", file=sys.stderr, flush=True)
            results.append(bench_dump(m.series, m.scenario, str(m.path("vmcore")),
                                      str(m.path("vmlinux")), args.reps, work))  # fmt: skip
        batch = None if args.no_batch else bench_batch(work)
        phases = None
        if args.phases:
            m = next(m for m in manifests if f"{m.series}/{m.scenario}" == args.phases)
            phases = bench_phases(str(m.path("vmcore")), max(args.reps, 3) + 1, work)
    md = markdown(results, batch, args.reps)
    if phases:
        md += f"\nCPU seconds per phase ({args.phases}, medians; bench/phases.py):\n\n"
        md += "| phase | cold | warm |\n|---|---|---|\n"
        for k in phases["warm"]:
            md += f"| {k} | {phases['cold'][k]:.3f} | {phases['warm'][k]:.3f} |\n"
        md += "\nFloor (CPU seconds, fresh processes):\n\n"
        md += "".join(f"- {k}: {v:.3f}\n" for k, v in phases["floor"].items())
    sys.stdout.write(md)
    if args.markdown:
        Path(args.markdown).write_text(md)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "dumps": [{"dump": r.dump, "runs": {w: [asdict(x) for x in r.runs[w]] for w in WHO}}
                      for r in results],
            "batch": batch, "phases": phases}, indent=1))  # fmt: skip
    limits = {("cold", "wall"): COLD_RATIO, ("warm", "wall"): WARM_RATIO,
              ("warm", "rss"): RSS_RATIO, ("dwarf", "wall"): DWARF_RATIO}  # fmt: skip
    missed = [
        r.dump
        for r in results
        if any(r.ratio(who, what) > limit for (who, what), limit in limits.items())
    ]
    if batch and batch["cpu_per_dump"] > BATCH_CPU:
        missed.append("batch")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
