#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Benchmark: raw RAM dumps beside the ELF dump (docs/bench.md, "Raw RAM dumps").

    python bench/ramdump.py                    # 6.12 highmem (4 GiB) and baseline (1 GiB)
    python bench/ramdump.py -k 7.x -r 3        # another series, repetitions
    python bench/ramdump.py --markdown out.md

For the 4 GiB boot (the ``highmem`` scenario, three bank files) and a 1 GiB boot of the
same series (``baseline``, two bank files), each repetition runs in fresh subprocesses,
alternating the order: ``rmem-inspect report --vmlinux`` on the factory's ELF dump with
VMCOREINFO (drgn's own core-dump path: the target's baseline), on QEMU's note-less
ELF of the raw boot, on its bank files (FILE@PADDR), on its load.cmm, and on the copy
with VMCOREINFO wiped (the kernel found by matching the vmlinux's image); wall time
around the child, peak RSS and CPU from ``os.wait4``. Then the time to find the
kernel alone: open the banks and scan page starts for the VMCOREINFO page
(``find_vmcoreinfo``), in a child. Target (not a test): every raw form at most 1.2x
the ELF path's wall time, and its peak RSS the same for 4 GiB as for 1 GiB.

Exit status: 0 when the targets hold, 1 when one is missed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import Run, run_child  # noqa: E402
from bench.tables import machine  # noqa: E402
from vmcores.ramdump_set import RamdumpSet, load_ramdumps  # noqa: E402

__all__ = ["main"]

#: Target of issue 23: raw forms against the ELF dump, wall time.
WALL_RATIO = 1.2
#: RSS of the 4 GiB set over the 1 GiB set's, for each raw form: independent of size.
RSS_SIZE_RATIO = 1.1
FORMS = ("elf+vmcoreinfo", "elf-no-note", "banks", "load.cmm", "wiped")
#: Open the banks and find the VMCOREINFO page; prints the seconds and what it found.
FIND = """\
import sys, time
t = time.perf_counter()
from rmem_inspect.collect.ramdump import find_vmcoreinfo, open_banks
ram = open_banks(sys.argv[1])
hits = find_vmcoreinfo(ram)
print(time.perf_counter() - t, hex(hits[0][0]) if hits else None)
"""


@dataclass
class SetResult:
    name: str
    ram_bytes: int
    banks: int
    runs: dict[str, list[Run]] = field(default_factory=dict)
    find_s: list[float] = field(default_factory=list)
    found_at: str | None = None

    def median(self, form: str, what: str) -> float:
        return statistics.median(getattr(r, what) for r in self.runs[form])


def _args(rs: RamdumpSet, form: str) -> list[str]:
    if form == "elf+vmcoreinfo":
        vmcore = str(rs.path(rs.reference))
    elif form == "elf-no-note":
        vmcore = str(rs.path(rs.qemu_elf))
    elif form == "banks":
        vmcore = rs.bank_args
    elif form == "load.cmm":
        vmcore = str(rs.path(rs.load_cmm))
    else:
        vmcore = str(rs.path(f"{rs.wiped}/load.cmm"))
    return [sys.executable, "-m", "rmem_inspect", "report", "--vmcore", vmcore,
            "--vmlinux", str(rs.path(rs.vmlinux))]  # fmt: skip


def bench_set(rs: RamdumpSet, reps: int) -> SetResult:
    import subprocess

    res = SetResult(f"{rs.series}/{rs.scenario}", sum(b["size"] for b in rs.banks), len(rs.banks))
    for form in FORMS:
        run_child(_args(rs, form))  # page cache
        res.runs[form] = []
    for i in range(reps):
        for form in FORMS if i % 2 == 0 else reversed(FORMS):
            res.runs[form].append(run_child(_args(rs, form)))
        out = subprocess.run([sys.executable, "-c", FIND, rs.bank_args], capture_output=True,
                             text=True, check=True, cwd=ROOT).stdout.split()  # fmt: skip
        res.find_s.append(float(out[0]))
        res.found_at = out[1]
    elf = res.median("elf+vmcoreinfo", "wall")
    print(
        f"{res.name:16} {res.ram_bytes >> 30} GiB, {res.banks} banks: ELF {elf:.2f} s; "
        + "; ".join(
            f"{f} x{res.median(f, 'wall') / elf:.2f} ({res.median(f, 'rss') / 1024:.0f} MiB)"
            for f in FORMS[1:]
        )
        + f"; VMCOREINFO page {res.found_at} found in {statistics.median(res.find_s):.2f} s",
        flush=True,
    )
    return res


def markdown(info: dict[str, str], sets: list[SetResult], reps: int) -> str:
    out = [
        f"Machine: {info['cpu']}, {info['nproc']} CPUs, {info['memory']} RAM; Python "
        f"{info['python']}, drgn {info['drgn']}; {info['date']}; load average {info['loadavg']}"
        f" at start. Median of {reps} repetitions.",
        "",
        "| set | form | wall s | x ELF | peak RSS MiB | CPU s | CPU x ELF |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in sets:
        elf = s.median("elf+vmcoreinfo", "wall")
        for f in FORMS:
            out.append(
                f"| {s.name} ({s.ram_bytes >> 30} GiB, {s.banks} banks) | {f} | "
                f"{s.median(f, 'wall'):.2f} | **{s.median(f, 'wall') / elf:.2f}** | "
                f"{s.median(f, 'rss') / 1024:.0f} | {s.median(f, 'cpu'):.2f} | "
                f"{s.median(f, 'cpu') / s.median('elf+vmcoreinfo', 'cpu'):.2f} |"
            )
        out.append(
            f"| {s.name} | find the VMCOREINFO page ({s.found_at}) | "
            f"{statistics.median(s.find_s):.2f} | | | | |"
        )
    return "\n".join(out) + "\n"


def targets(sets: list[SetResult]) -> list[str]:
    missed = []
    for s in sets:
        elf = s.median("elf+vmcoreinfo", "wall")
        for f in FORMS[1:]:
            if s.median(f, "wall") > WALL_RATIO * elf:
                missed.append(f"{s.name} {f}: wall x{s.median(f, 'wall') / elf:.2f} > {WALL_RATIO}")
    big, small = max(sets, key=lambda s: s.ram_bytes), min(sets, key=lambda s: s.ram_bytes)
    if big is not small:
        for f in FORMS[1:]:
            ratio = big.median(f, "rss") / small.median(f, "rss")
            if ratio > RSS_SIZE_RATIO:
                missed.append(
                    f"{f}: RSS {big.name} / {small.name} = {ratio:.2f} > {RSS_SIZE_RATIO}"
                )
    return missed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/ramdump.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", "--series", default="6.12")
    ap.add_argument("-s", "--scenario", action="append", help="default: highmem and baseline")
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    want = args.scenario or ["highmem", "baseline"]
    found = {
        r.scenario: r for r in load_ramdumps() if r.arch == "arm64" and r.series == args.series
    }
    missing = [s for s in want if s not in found]
    if missing:
        print(f"bench/ramdump.py: no raw set for {args.series} {', '.join(missing)}: "
              "run python -m vmcores.ramdump", file=sys.stderr)  # fmt: skip
        return 2
    compileall.compile_dir(ROOT / "rmem_inspect", quiet=1)
    info = machine()
    sets = [bench_set(found[s], args.reps) for s in want]
    text = markdown(info, sets, args.reps)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in sets], indent=1) + "\n")
    missed = targets(sets)
    for m in missed:
        print(f"target missed: {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
