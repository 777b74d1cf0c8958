# SPDX-License-Identifier: GPL-2.0-or-later
"""
The writing job of bench/run.py: the machine a run was made on, and the Markdown
tables of its results (docs/bench.md).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime

from bench.measure import DumpResult, Stat
from bench.scale import SyntheticResult

__all__ = [
    "BTF_RSS_RATIO",
    "BTF_WALL_RATIO",
    "CHECKS_10K_MS",
    "RSS_RATIO",
    "WALL_RATIO",
    "cpu_ticks",
    "machine",
    "markdown",
]

#: Targets of issue 8.
WALL_RATIO = 1.3
RSS_RATIO = 1.2
CHECKS_10K_MS = 200.0
#: Targets of issue 16: the no-vmlinux report against bare drgn with the vmlinux.
BTF_WALL_RATIO = 0.35
BTF_RSS_RATIO = 0.5


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


def cpu_ticks() -> tuple[int, int] | None:
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
