# SPDX-License-Identifier: GPL-2.0-or-later
"""
trace.run
---------

``rmem-inspect trace`` itself (:func:`run_trace`): probe the running kernel, read
the boot verdicts for the correlation, compile the BPF program with bcc, attach it,
print each event as it comes and the summary at the end (Ctrl-C, SIGTERM or
``--duration``). ``--ebpf`` prints the program instead, without loading it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from rmem_inspect.trace.bpf_program import bpf_text, kernel_cflags
from rmem_inspect.trace.events import (
    HEADER,
    Attribution,
    Correlator,
    Event,
    Summary,
    decode,
    format_event,
    format_summary,
    json_line,
    matches,
    summary_json_line,
)
from rmem_inspect.trace.probes import PROBES, probe_kernel

__all__ = [
    "INSTALL_HINT",
    "run_trace",
]

INSTALL_HINT = "bcc is not installed: apt install python3-bpfcc (Debian/Ubuntu; not PyPI's 'bcc')"


def _print_program() -> int:
    """``--ebpf`` (bcc's convention): the program text, without loading it."""
    defines: list[str] | None = None
    try:
        from bcc import BPF

        if os.geteuid() == 0:
            defines = probe_kernel(BPF)[2]
    except ImportError:
        pass
    if defines is None:
        defines = [p.define for p in PROBES]
        sys.stdout.write(
            "/* every probe compiled in: without bcc and root the running kernel was not "
            "probed */\n"
        )
    sys.stdout.write(bpf_text(defines))
    return 0


def _err(msg: str) -> int:
    print(f"rmem-inspect trace: error: {msg}", file=sys.stderr)
    return 2


def _correlator(args: argparse.Namespace) -> tuple[Correlator | None, str | None]:
    """Boot verdicts for the correlation; (None, why) when not available."""
    from rmem_inspect.errors import InputError
    from rmem_inspect.inputs import Source, open_input

    if args.no_correlate:
        return None, None
    try:
        if args.snapshot:
            source = Source(snapshot=args.snapshot)
        else:  # the running kernel with drgn, never the sysfs fallback
            source = Source(vmlinux=args.vmlinux, sysfs_fallback=False, linear_map=False)
        report = open_input(source).report()
        return Correlator(report), None
    except (InputError, OSError, ValueError, ImportError) as e:
        return None, str(e).splitlines()[0] if str(e) else type(e).__name__


class _Stop(Exception):
    pass


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def run_trace(args: argparse.Namespace) -> int:
    """Run ``rmem-inspect trace``; returns the exit status."""
    if getattr(args, "ebpf", False):
        return _print_program()
    try:
        from bcc import BPF
    except ImportError:
        return _err(INSTALL_HINT)
    if os.geteuid() != 0:
        return _err("tracing needs root (bcc loads BPF programs into the kernel)")
    if args.duration is not None and args.duration <= 0:
        return _err("--duration must be a positive number of seconds")
    present, skipped, defines = probe_kernel(BPF)
    if not any(p.target in ("of_reserved_mem_lookup", "cma:cma_alloc_finish") for p, _ in present):
        return _err(
            "this kernel offers none of the carveout probes (no of_reserved_mem_lookup, "
            "no cma tracepoints): " + ", ".join(skipped)
        )
    t = time.monotonic()
    correlator, why = _correlator(args)
    if why is not None:
        print(f"rmem-inspect trace: no boot verdicts ({why}); tracing anyway", file=sys.stderr)
    elif correlator is not None:
        n = len(correlator.report.findings)
        print(
            f"Boot verdicts: {n} findings, read in {time.monotonic() - t:.1f} s.", file=sys.stderr
        )
    t = time.monotonic()
    try:
        bpf = BPF(text=bpf_text(defines), cflags=kernel_cflags())
    except Exception as e:  # bcc raises plain Exception on compile failure
        if args.debug:
            raise
        hint = "" if os.path.isdir(f"/lib/modules/{os.uname().release}/build") else (
            f"; install the kernel headers: apt install linux-headers-{os.uname().release}"
        )  # fmt: skip
        return _err(f"could not compile the BPF program: {str(e).splitlines()[0]}{hint}")
    attached = []
    try:
        for p, sym in present:
            if p.tracepoint:
                attached.append(p.target)
                continue
            assert p.entry is not None and p.ret is not None
            bpf.attach_kprobe(event=sym, fn_name=p.entry)
            bpf.attach_kretprobe(event=sym, fn_name=p.ret)
            attached.append(sym)
    except Exception as e:
        bpf.cleanup()
        if args.debug:
            raise
        return _err(f"could not attach: {str(e).splitlines()[0]}")

    page_size = os.sysconf("SC_PAGE_SIZE")
    summary = Summary()
    attribution = Attribution()
    seen: dict[str, int] = {}
    lost = [0]
    t0 = [0]  # CLOCK_MONOTONIC when tracing started, as bpf_ktime_get_ns() counts
    out = sys.stdout

    def on_event(cpu: int, data: Any, size: int) -> None:
        import ctypes

        raw = ctypes.string_at(data, size)
        try:
            e: Event = decode(raw, page_size)
        except ValueError:
            return
        attribution.annotate(e)
        if correlator is not None:
            correlator.annotate(e)
        if not matches(e, args.device, args.region):
            return
        seen[e.kind] = seen.get(e.kind, 0) + 1
        if e.kind == "lookup" and e.device:
            seen["nested_lookup"] = seen.get("nested_lookup", 0) + 1
        summary.add(e)
        out.write((json_line(e) if args.json else format_event(e, t0[0])) + "\n")
        out.flush()

    def on_lost(count: int) -> None:
        lost[0] += count

    bpf["events"].open_perf_buffer(on_event, page_cnt=64, lost_cb=on_lost)
    print(f"Compiled and attached in {time.monotonic() - t:.1f} s.", file=sys.stderr)
    print(f"Tracing {len(attached)} probes: {', '.join(attached)}.", file=sys.stderr)
    if skipped:
        print(f"Skipped (absent on this kernel): {', '.join(skipped)}.", file=sys.stderr)
    print(
        "Hit Ctrl-C to end." if args.duration is None else f"Tracing for {args.duration:g} s.",
        file=sys.stderr,
    )
    if not args.json:
        print(HEADER)
    sys.stdout.flush()
    t0[0] = time.monotonic_ns()
    old = signal.signal(signal.SIGTERM, _on_term)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        while deadline is None or time.monotonic() < deadline:
            bpf.perf_buffer_poll(timeout=200)
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        try:
            bpf.perf_buffer_poll(timeout=0)
        except (KeyboardInterrupt, _Stop):
            pass
        bpf.cleanup()
    if (
        seen.get("device_init")
        and not seen.get("nested_lookup")
        and "of_reserved_mem_lookup" in attached
    ):
        print(
            "Note: of_reserved_mem_lookup() never ran inside of_reserved_mem_device_init_by_idx(): "
            "this kernel's compiler inlined it there, so those lookups are not traced; the "
            "regions of device_init come from the devicetree (boot verdicts) instead.",
            file=sys.stderr,
        )
    if args.json:
        out.write(summary_json_line(summary, lost[0], [s.split(" ")[0] for s in skipped]) + "\n")
    else:
        out.write(format_summary(summary))
        if lost[0]:
            out.write(f"{lost[0]} events lost (perf buffer full)\n")
    out.flush()
    return 0
