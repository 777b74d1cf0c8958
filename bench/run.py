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
which goes first, (a) bare drgn (without this project's own drgn plugin:
bench/measure.py): ``drgn.Program()``, ``set_core_dump(vmcore)``,
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
import json
import os
import statistics
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import DumpResult, Run, bench_dump  # noqa: E402
from bench.scale import SYNTHETIC_SIZES, SyntheticResult, bench_synthetic  # noqa: E402
from bench.tables import (  # noqa: E402
    BTF_RSS_RATIO,
    BTF_WALL_RATIO,
    CHECKS_10K_MS,
    RSS_RATIO,
    WALL_RATIO,
    cpu_ticks,
    machine,
    markdown,
)
from vmcores.manifest import load_manifests  # noqa: E402

__all__ = ["bench_synthetic", "main"]

QUICK_DUMPS = ["*/overflow", "*/scale-1000"]


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
    ticks = cpu_ticks()
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
    end_ticks = cpu_ticks()
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
