#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Benchmarks: what ``rmem-inspect report`` costs on top of bare drgn, and how the
checks scale (docs/bench.md).

    python bench/run.py                  # every factory dump, 5 repetitions, synthetic 1k/10k
    python bench/run.py --quick          # overflow + scale-1000 dumps, 3 repetitions
    python bench/run.py -d '7.x/*' -r 3  # pick dumps (series/scenario, shell patterns)
    python bench/run.py --markdown out.md --json out.json

For every dump, each repetition runs, in fresh subprocesses and alternating
which goes first, (a) bare drgn: ``drgn.Program()``, ``set_core_dump(vmcore)``,
``load_debug_info([vmlinux])`` and ``prog['init_uts_ns']`` (a lookup that forces
the symbol index); (b) ``python -m rmem_inspect report --vmcore V --vmlinux L``
(the default table output, to /dev/null). Wall time is measured around the
child, peak RSS and CPU time come from ``os.wait4`` (the child's own rusage);
(c) ``report --vmcore V --types btf``: no vmlinux, the kernel's own kallsyms and
BTF (kernels whose kallsyms lacks data symbols are listed as skipped, with the
reason the report gives).
One unmeasured bare run first warms the page cache. Then the checks alone are
timed in this process on each dump's snapshot, and on synthetic snapshots
(bench/synthetic.py) grown from a golden one to 1,000 and 10,000 regions and
memblock entries.

Exit status: 0 when every target holds, 1 when one is missed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import compileall
import fnmatch
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.synthetic import grow  # noqa: E402
from rmem_inspect import checks  # noqa: E402
from rmem_inspect.model import Snapshot  # noqa: E402
from vmcores.manifest import DumpManifest, load_manifests  # noqa: E402

__all__ = ["main"]

#: Targets of issue 8.
WALL_RATIO = 1.3
RSS_RATIO = 1.2
CHECKS_10K_MS = 200.0
#: Targets of issue 16: the no-vmlinux report against bare drgn with the vmlinux.
BTF_WALL_RATIO = 0.35
BTF_RSS_RATIO = 0.5

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

QUICK_DUMPS = ["*/overflow", "*/scale-1000"]
SYNTHETIC_SIZES = [(1000, 1000), (10000, 10000)]
GOLDEN = ROOT / "tests" / "golden" / "7.x-baseline.json"


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


@dataclass
class SyntheticResult:
    regions: int
    memblock: int
    dropped: int
    memblock_entries: int
    findings: int
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def run_child(cmd: list[str]) -> Run:
    """Run ``cmd`` to completion; its wall time, CPU time and peak RSS alone."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
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
    run_child(bare)  # page cache
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
            getattr(res, who).append(run_child(cmd))
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
    res.checks_ms = [t * 1e3 for t in _time(lambda: checks.run(snap), checks_reps)[0]]
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


def _time(fn: Callable[[], object], reps: int) -> tuple[list[float], list[float]]:
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
            wall, cpu = _time(lambda s=g.snapshot: checks.run(s), reps)  # type: ignore[misc]
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


def machine() -> dict[str, str]:
    def cmd(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    lscpu = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in cmd("lscpu").splitlines())
    )
    mem = next((line.split()[1] for line in cmd("free", "-h").splitlines()
                if line.startswith("Mem:")), "?")  # fmt: skip
    import drgn

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": lscpu.get("Model name", platform.processor() or "?"),
        "nproc": cmd("nproc").strip(),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "drgn": drgn.__version__,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs from /proc/stat: time the hypervisor gave
    to other guests shows as steal, and slows every run it lands in."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def _fs(s: Stat, fmt: str) -> str:
    return f"{s.median:{fmt}} ({s.low:{fmt}}..{s.high:{fmt}})"


def markdown(
    info: dict[str, str],
    dumps: list[DumpResult],
    synth: list[SyntheticResult],
    reps: int,
    end_load: str,
) -> str:
    out = [
        f"Machine: {info['cpu']}, {info['nproc']} CPUs, {info['memory']} RAM, Linux "
        f"{info['kernel']}; Python {info['python']}, drgn {info['drgn']}; {info['date']}; "
        f"load average {info['loadavg']} at start, {end_load} at end"
        + (f"; CPU steal {info['steal']} of the run" if info.get("steal") else "")
        + ".",
        "",
    ]
    if dumps:
        out += [
            f"Dumps: median (min..max) of {reps} repetitions; ratios are report median / bare "
            "median, then the spread of the per-repetition ratios; min/min is the fastest "
            "report run over the fastest bare run.",
            "",
            "| dump | regions | bare wall s | report wall s | wall ratio | wall min/min | "
            "bare RSS MiB | report RSS MiB | RSS ratio | CPU s report / bare | checks ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for d in dumps:
            rb, rr = d.stat("bare", "rss"), d.stat("report", "rss")
            pw, pr = d.paired("wall"), d.paired("rss")
            out.append(
                f"| {d.dump} | {d.regions} | {_fs(d.stat('bare', 'wall'), '.2f')} | "
                f"{_fs(d.stat('report', 'wall'), '.2f')} | "
                f"**{d.ratio('wall'):.2f}** ({pw.low:.2f}..{pw.high:.2f}) | "
                f"{d.min_ratio('wall'):.2f} | {rb.median / 1024:.0f} | {rr.median / 1024:.0f} | "
                f"**{d.ratio('rss'):.3f}** ({pr.low:.3f}..{pr.high:.3f}) | "
                f"{d.stat('report', 'cpu').median:.2f} / {d.stat('bare', 'cpu').median:.2f} | "
                f"{statistics.median(d.checks_ms):.1f} |"
            )
        out.append("")
        out += [
            "No vmlinux: `report --types btf` (the kernel's kallsyms and BTF) beside bare drgn "
            f"with the vmlinux; targets wall <= {BTF_WALL_RATIO}x, RSS <= {BTF_RSS_RATIO}x.",
            "",
            "| dump | bare wall s | btf wall s | wall ratio | bare RSS MiB | btf RSS MiB | "
            "RSS ratio | CPU s btf / bare |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for d in dumps:
            if not d.btf:
                out.append(f"| {d.dump} | skipped: {d.btf_skipped} |||||||")
                continue
            pw, pr = d.paired_btf("wall"), d.paired_btf("rss")
            out.append(
                f"| {d.dump} | {_fs(d.stat('bare', 'wall'), '.2f')} | "
                f"{_fs(d.stat('btf', 'wall'), '.2f')} | "
                f"**{d.ratio('wall', 'btf'):.2f}** ({pw.low:.2f}..{pw.high:.2f}) | "
                f"{d.stat('bare', 'rss').median / 1024:.0f} | "
                f"{d.stat('btf', 'rss').median / 1024:.0f} | "
                f"**{d.ratio('rss', 'btf'):.3f}** ({pr.low:.3f}..{pr.high:.3f}) | "
                f"{d.stat('btf', 'cpu').median:.2f} / {d.stat('bare', 'cpu').median:.2f} |"
            )
        out.append("")
    if synth:
        out += [
            "Synthetic snapshots: `checks.run` alone, median (min..max) over the repetitions.",
            "",
            "| regions | extra memblock | memblock entries | dropped | findings | wall ms | "
            "CPU ms |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in synth:
            out.append(
                f"| {s.regions} | {s.memblock} | {s.memblock_entries} | {s.dropped} | "
                f"{s.findings} | **{_fs(Stat.of(s.wall_ms), '.1f')}** | "
                f"{_fs(Stat.of(s.cpu_ms), '.1f')} |"
            )
        out.append("")
    return "\n".join(out)


def targets(dumps: list[DumpResult], synth: list[SyntheticResult]) -> list[str]:
    """Every missed target, one line each."""
    missed = []
    for d in dumps:
        if d.ratio("wall") > WALL_RATIO:
            missed.append(f"{d.dump}: wall ratio {d.ratio('wall'):.2f} > {WALL_RATIO}")
        if d.ratio("rss") > RSS_RATIO:
            missed.append(f"{d.dump}: RSS ratio {d.ratio('rss'):.3f} > {RSS_RATIO}")
        if d.btf and d.ratio("wall", "btf") > BTF_WALL_RATIO:
            missed.append(
                f"{d.dump}: no-vmlinux wall ratio {d.ratio('wall', 'btf'):.2f} > {BTF_WALL_RATIO}"
            )
        if d.btf and d.ratio("rss", "btf") > BTF_RSS_RATIO:
            missed.append(
                f"{d.dump}: no-vmlinux RSS ratio {d.ratio('rss', 'btf'):.3f} > {BTF_RSS_RATIO}"
            )
    for s in synth:
        ms = statistics.median(s.wall_ms)
        if s.regions >= 10000 and s.memblock >= 10000 and ms > CHECKS_10K_MS:
            missed.append(
                f"synthetic {s.regions}+{s.memblock} ({s.dropped} dropped): checks "
                f"{ms:.1f} ms > {CHECKS_10K_MS:.0f} ms"
            )
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="rmem-inspect report vs bare drgn on the factory dumps; checks at scale.",
    )
    parser.add_argument(
        "-d", "--dump", action="append", metavar="SERIES/SCENARIO",
        help="dumps to measure, shell patterns (repeat; default: every dump in the cache)",
    )  # fmt: skip
    parser.add_argument("-r", "--reps", type=int, help="repetitions per dump (default 5)")
    parser.add_argument(
        "--checks-reps", type=int, help="timed checks.run calls per snapshot (default 11)"
    )
    parser.add_argument(
        "--quick", action="store_true",
        help=f"dumps {' '.join(QUICK_DUMPS)}, 3 repetitions, 5 checks calls",
    )  # fmt: skip
    parser.add_argument("--no-dumps", action="store_true", help="skip the dump benchmark")
    parser.add_argument("--no-synthetic", action="store_true", help="skip synthetic snapshots")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the tables here")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write raw results here")
    parser.add_argument(
        "--from-json", type=Path, metavar="FILE", help="only print the tables of a saved run"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        return _replay(args.from_json, args.markdown)
    reps = args.reps if args.reps is not None else (3 if args.quick else 5)
    checks_reps = args.checks_reps if args.checks_reps is not None else (5 if args.quick else 11)
    if reps < 1 or checks_reps < 1:
        print("bench: error: repetitions must be at least 1", file=sys.stderr)
        return 2
    patterns = args.dump or (QUICK_DUMPS if args.quick else ["*"])

    def log(msg: str) -> None:
        print(msg, flush=True)

    info = machine()
    ticks = _cpu_ticks()
    log(" ".join(f"{k}={v}" for k, v in info.items()))
    # An installed package has its bytecode compiled (pip does it); a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would compile every changed module again in every child.
    compileall.compile_dir(ROOT / "rmem_inspect", quiet=1)
    dumps: list[DumpResult] = []
    if not args.no_dumps:
        manifests = [
            m
            for m in load_manifests()
            if any(fnmatch.fnmatch(f"{m.series}/{m.scenario}", p) for p in patterns)
        ]
        if not manifests:
            print(
                f"bench: error: no factory dump matches {' '.join(patterns)}: run "
                "python -m vmcores.build (and -k 6.12 -k 7.x -s scale-1000)",
                file=sys.stderr,
            )
            return 2
        for m in manifests:
            dumps.append(bench_dump(m, reps, checks_reps, log))
    synth = [] if args.no_synthetic else bench_synthetic(SYNTHETIC_SIZES, checks_reps, log)
    end_load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    end_ticks = _cpu_ticks()
    if ticks and end_ticks and end_ticks[1] > ticks[1]:
        info["steal"] = f"{100 * (end_ticks[0] - ticks[0]) / (end_ticks[1] - ticks[1]):.1f}%"
    md = markdown(info, dumps, synth, reps, end_load)
    print("\n" + md)
    if args.markdown:
        args.markdown.write_text(md + "\n")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info | {"loadavg_end": end_load},
                    "reps": reps,
                    "dumps": [asdict(d) for d in dumps],
                    "synthetic": [asdict(s) for s in synth],
                },
                indent=1,
            )
            + "\n"
        )
    return _verdict(dumps, synth)


def _verdict(dumps: list[DumpResult], synth: list[SyntheticResult]) -> int:
    missed = targets(dumps, synth)
    for line in missed:
        print(f"target missed: {line}")
    if not missed:
        print(
            f"all targets hold: wall <= {WALL_RATIO}x, RSS <= {RSS_RATIO}x bare drgn; without "
            f"a vmlinux wall <= {BTF_WALL_RATIO}x, RSS <= {BTF_RSS_RATIO}x; checks on "
            f"10k+10k < {CHECKS_10K_MS:.0f} ms"
        )
    return 1 if missed else 0


def _replay(path: Path, md_out: Path | None) -> int:
    try:
        data = json.loads(path.read_text())
        dumps = [
            DumpResult(
                dump=d["dump"],
                regions=d["regions"],
                bare=[Run(**r) for r in d["bare"]],
                report=[Run(**r) for r in d["report"]],
                checks_ms=d["checks_ms"],
                btf=[Run(**r) for r in d.get("btf", [])],
                btf_skipped=d.get("btf_skipped"),
            )
            for d in data["dumps"]
        ]
        synth = [SyntheticResult(**s) for s in data["synthetic"]]
        info = dict(data["machine"])
        end_load = info.pop("loadavg_end")
        reps = data["reps"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"bench: error: {path} is not a saved run: {e}", file=sys.stderr)
        return 2
    md = markdown(info, dumps, synth, reps, end_load)
    print(md)
    if md_out:
        md_out.write_text(md + "\n")
    return _verdict(dumps, synth)


if __name__ == "__main__":
    sys.exit(main())
