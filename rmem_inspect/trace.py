# SPDX-License-Identifier: GPL-2.0-or-later
"""
trace
-----

``rmem-inspect trace``: live eBPF tracing, with bcc, of the code that hands
reserved-memory carveouts to devices at run time, so a missing carveout shows
up as the call that failed:

- ``of_reserved_mem_device_init_by_idx()`` (kprobe + kretprobe): device, the
  consumer's DT node, the ``memory-region`` index, the region it resolved to,
  the return value;
- ``of_reserved_mem_lookup()``: the region's DT node, the ``reserved_mem``
  entry returned, or NULL: a carveout the kernel does not have;
- the carveout's ``device_init`` op (``rmem_dma_device_init``,
  ``rmem_cma_device_init``, ``rmem_swiotlb_device_init``);
- CMA: the ``cma:cma_alloc_start``, ``cma:cma_alloc_finish`` and
  ``cma:cma_release`` tracepoints (area, pages, result), with the device of the
  ``dma_alloc_attrs()``/``dma_free_attrs()`` call they happen in;
- coherent pools: ``dma_alloc_from_dev_coherent()``, or the ``dma:dma_alloc``
  tracepoint where only that exists.

Each probe is feature-probed on the running kernel with bcc's own helpers
(``BPF.get_kprobe_functions``, ``BPF.tracepoint_exists``) and skipped, with a
note, when absent; tracepoint fields that changed between kernels (the
``errorno`` of ``cma_alloc_finish``) are read from the tracepoint's format file.
With debug info (``--vmlinux`` or the build-id search of ``report``) or a
``--snapshot``, failures are correlated with the boot verdicts of
:func:`rmem_inspect.checks.run`. Decoding, filters, the summary and the
correlation are in :mod:`rmem_inspect.trace_events` (no bcc needed).

bcc comes from the distribution (Debian: ``apt install python3-bpfcc``); PyPI's
``bcc`` is an unrelated package. This module imports bcc only in
:func:`run_trace`.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rmem_inspect.trace_events import Correlator

# rmem_inspect.trace_events (the decoder) is imported where it is used: this module's
# BPF program and probing need none of it.

__all__ = [
    "PROBES",
    "Probe",
    "bpf_text",
    "kernel_cflags",
    "run_trace",
]

INSTALL_HINT = "bcc is not installed: apt install python3-bpfcc (Debian/Ubuntu; not PyPI's 'bcc')"


@dataclass(frozen=True)
class Probe:
    """One thing to trace: a kernel function (kprobe + kretprobe) or a tracepoint."""

    #: Function name, or ``category:event``.
    target: str
    #: ``#define`` that compiles its BPF code in.
    define: str
    entry: str | None = None
    ret: str | None = None

    @property
    def tracepoint(self) -> bool:
        return ":" in self.target


PROBES = (
    Probe("of_reserved_mem_device_init_by_idx", "RMEM_HAVE_INIT", "kp_init", "kr_init"),
    Probe("of_reserved_mem_lookup", "RMEM_HAVE_LOOKUP", "kp_lookup", "kr_lookup"),
    Probe("rmem_dma_device_init", "RMEM_HAVE_OP_DMA", "kp_op_dma", "kr_op"),
    Probe("rmem_cma_device_init", "RMEM_HAVE_OP_CMA", "kp_op_cma", "kr_op"),
    Probe("rmem_swiotlb_device_init", "RMEM_HAVE_OP_SWIOTLB", "kp_op_swiotlb", "kr_op"),
    Probe("dma_alloc_from_dev_coherent", "RMEM_HAVE_COHERENT", "kp_coherent", "kr_coherent"),
    Probe("dma_alloc_attrs", "RMEM_HAVE_DMA_DEV", "kp_dma_dev", "kr_dma_dev"),
    Probe("dma_free_attrs", "RMEM_HAVE_DMA_DEV", "kp_dma_dev", "kr_dma_dev"),
    Probe("cma:cma_alloc_start", "RMEM_HAVE_CMA_START"),
    Probe("cma:cma_alloc_finish", "RMEM_HAVE_CMA_FINISH"),
    Probe("cma:cma_release", "RMEM_HAVE_CMA_RELEASE"),
    Probe("dma:dma_alloc", "RMEM_HAVE_DMA_ALLOC_TP"),
)

BPF_PROGRAM = r"""
#include <uapi/linux/ptrace.h>
#include <linux/device.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#include <linux/sched.h>

@EVENT_C@
#define KIND(n) (n)

BPF_PERF_OUTPUT(events);
BPF_PERCPU_ARRAY(scratch, struct rmem_event, 1);
BPF_HASH(pending_init, u64, struct rmem_event, 1024);
BPF_HASH(pending_lookup, u64, struct rmem_event, 1024);
BPF_HASH(pending_op, u64, struct rmem_event, 1024);
BPF_HASH(pending_coherent, u64, struct rmem_event, 1024);
BPF_HASH(coherent_ptrs, u64, u64, 1024);
BPF_HASH(cma_start, u64, u64, 1024);
BPF_HASH(dma_dev, u64, u64, 1024);

static __always_inline struct rmem_event *new_event(u32 kind)
{
    int zero = 0;
    struct rmem_event *e = scratch.lookup(&zero);
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->ts = bpf_ktime_get_ns();
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->kind = kind;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    return e;
}

static __always_inline void read_device(struct rmem_event *e, struct device *dev)
{
    const char *name = 0;
    if (!dev)
        return;
    bpf_probe_read_kernel(&name, sizeof(name), &dev->kobj.name);
    if (name)
        bpf_probe_read_kernel_str(e->device, sizeof(e->device), name);
}

/* The node's path, leaf first, without the root. */
static __always_inline void read_node(struct rmem_event *e, struct device_node *np)
{
#pragma unroll
    for (int i = 0; i < RMEM_NODE_DEPTH; i++) {
        struct device_node *parent = 0;
        const char *name = 0;
        if (!np)
            return;
        bpf_probe_read_kernel(&parent, sizeof(parent), &np->parent);
        if (!parent)
            return;
        bpf_probe_read_kernel(&name, sizeof(name), &np->full_name);
        if (name)
            bpf_probe_read_kernel_str(e->node[i], RMEM_NAME_LEN, name);
        e->node_depth = i + 1;
        np = parent;
    }
    if (np) {
        struct device_node *parent = 0;
        bpf_probe_read_kernel(&parent, sizeof(parent), &np->parent);
        if (parent)
            e->flags |= @FLAG_NODE_TRUNCATED@;
    }
}

static __always_inline void read_rmem(struct rmem_event *e, struct reserved_mem *rmem)
{
    const char *name = 0;
    bpf_probe_read_kernel(&name, sizeof(name), &rmem->name);
    if (name)
        bpf_probe_read_kernel_str(e->region, RMEM_NAME_LEN, name);
    bpf_probe_read_kernel(&e->addr, sizeof(e->addr), &rmem->base);
    bpf_probe_read_kernel(&e->size, sizeof(e->size), &rmem->size);
}

static __always_inline void read_dma_dev(struct rmem_event *e)
{
    u64 id = bpf_get_current_pid_tgid();
    u64 *dev = dma_dev.lookup(&id);
    if (dev)
        read_device(e, (struct device *)*dev);
}

static __always_inline void finish(struct pt_regs *ctx, struct rmem_event *e)
{
    e->lat = bpf_ktime_get_ns() - e->ts;
    events.perf_submit(ctx, e, sizeof(*e));
}

#ifdef RMEM_HAVE_INIT
int kp_init(struct pt_regs *ctx, struct device *dev, struct device_node *np, int idx)
{
    u64 id = bpf_get_current_pid_tgid();
    struct rmem_event *e = new_event(@KIND_device_init@);
    if (!e)
        return 0;
    read_device(e, dev);
    read_node(e, np);
    e->count = idx;
    pending_init.update(&id, e);
    return 0;
}

int kr_init(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    struct rmem_event *e = pending_init.lookup(&id);
    if (!e)
        return 0;
    int ret = PT_REGS_RC(ctx);
    e->ret = ret;
    e->failed = ret != 0;
    finish(ctx, e);
    pending_init.delete(&id);
    return 0;
}
#endif

#ifdef RMEM_HAVE_LOOKUP
int kp_lookup(struct pt_regs *ctx, struct device_node *np)
{
    u64 id = bpf_get_current_pid_tgid();
    struct rmem_event *e = new_event(@KIND_lookup@);
    if (!e)
        return 0;
    read_node(e, np);
    pending_lookup.update(&id, e);
    return 0;
}

int kr_lookup(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    struct rmem_event *e = pending_lookup.lookup(&id);
    if (!e)
        return 0;
    struct reserved_mem *rmem = (struct reserved_mem *)PT_REGS_RC(ctx);
    e->ret = rmem != 0;  /* 1: found, 0: NULL */
    if (rmem) {
        read_rmem(e, rmem);
    } else {
        e->failed = 1;
        e->flags |= @FLAG_REGION_FROM_NODE@;
        __builtin_memcpy(e->region, e->node[0], RMEM_NAME_LEN);
    }
#ifdef RMEM_HAVE_INIT
    struct rmem_event *init = pending_init.lookup(&id);
    if (init) {
        __builtin_memcpy(init->region, e->region, RMEM_NAME_LEN);
        __builtin_memcpy(e->device, init->device, RMEM_DEVICE_LEN);
        init->addr = e->addr;
        init->size = e->size;
        init->flags |= e->flags & @FLAG_REGION_FROM_NODE@;
    }
#endif
    finish(ctx, e);
    pending_lookup.delete(&id);
    return 0;
}
#endif

#if defined(RMEM_HAVE_OP_DMA) || defined(RMEM_HAVE_OP_CMA) || defined(RMEM_HAVE_OP_SWIOTLB)
static __always_inline int op_entry(u32 op, struct reserved_mem *rmem, struct device *dev)
{
    u64 id = bpf_get_current_pid_tgid();
    struct rmem_event *e = new_event(@KIND_init_op@);
    if (!e)
        return 0;
    e->op = op;
    read_rmem(e, rmem);
    read_device(e, dev);
    pending_op.update(&id, e);
    return 0;
}

int kr_op(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    struct rmem_event *e = pending_op.lookup(&id);
    if (!e)
        return 0;
    int ret = PT_REGS_RC(ctx);
    e->ret = ret;
    e->failed = ret != 0;
    finish(ctx, e);
    pending_op.delete(&id);
    return 0;
}
#endif
#ifdef RMEM_HAVE_OP_DMA
int kp_op_dma(struct pt_regs *ctx, struct reserved_mem *rmem, struct device *dev)
{
    return op_entry(1, rmem, dev);
}
#endif
#ifdef RMEM_HAVE_OP_CMA
int kp_op_cma(struct pt_regs *ctx, struct reserved_mem *rmem, struct device *dev)
{
    return op_entry(2, rmem, dev);
}
#endif
#ifdef RMEM_HAVE_OP_SWIOTLB
int kp_op_swiotlb(struct pt_regs *ctx, struct reserved_mem *rmem, struct device *dev)
{
    return op_entry(3, rmem, dev);
}
#endif

#ifdef RMEM_HAVE_COHERENT
int kp_coherent(struct pt_regs *ctx, struct device *dev, ssize_t size, dma_addr_t *handle,
                void **ret)
{
    u64 id = bpf_get_current_pid_tgid();
    u64 ptr = (u64)ret;
    struct rmem_event *e = new_event(@KIND_coherent_alloc@);
    if (!e)
        return 0;
    read_device(e, dev);
    e->size = size;
    pending_coherent.update(&id, e);
    coherent_ptrs.update(&id, &ptr);
    return 0;
}

int kr_coherent(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    struct rmem_event *e = pending_coherent.lookup(&id);
    u64 *ptr = coherent_ptrs.lookup(&id);
    int handled = PT_REGS_RC(ctx);
    if (e && ptr && handled) {  /* 0: the device has no coherent pool */
        void *vaddr = 0;
        bpf_probe_read_kernel(&vaddr, sizeof(vaddr), (void *)*ptr);
        e->ret = handled;
        e->failed = vaddr == 0;
        finish(ctx, e);
    }
    pending_coherent.delete(&id);
    coherent_ptrs.delete(&id);
    return 0;
}
#endif

#ifdef RMEM_HAVE_DMA_DEV
int kp_dma_dev(struct pt_regs *ctx, struct device *dev)
{
    u64 id = bpf_get_current_pid_tgid();
    u64 d = (u64)dev;
    dma_dev.update(&id, &d);
    return 0;
}

int kr_dma_dev(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    dma_dev.delete(&id);
    return 0;
}
#endif

#ifdef RMEM_HAVE_CMA_START
TRACEPOINT_PROBE(cma, cma_alloc_start)
{
    u64 id = bpf_get_current_pid_tgid();
    u64 ts = bpf_ktime_get_ns();
    cma_start.update(&id, &ts);
    return 0;
}
#endif

#ifdef RMEM_HAVE_CMA_FINISH
TRACEPOINT_PROBE(cma, cma_alloc_finish)
{
    u64 id = bpf_get_current_pid_tgid();
    struct rmem_event *e = new_event(@KIND_cma_alloc@);
    if (!e)
        return 0;
    unsigned short off = args->data_loc_name & 0xFFFF;
    bpf_probe_read_kernel_str(e->region, RMEM_NAME_LEN, (char *)args + off);
    e->count = args->count;
    e->addr = args->pfn;
    e->failed = args->page == 0;
#ifdef RMEM_CMA_ERRORNO
    e->ret = args->errorno;
#else
    e->ret = e->failed ? -12 : 0;
#endif
    read_dma_dev(e);
    u64 *start = cma_start.lookup(&id);
    if (start) {
        e->lat = e->ts - *start;
        cma_start.delete(&id);
    }
    events.perf_submit(args, e, sizeof(*e));
    return 0;
}
#endif

#ifdef RMEM_HAVE_CMA_RELEASE
TRACEPOINT_PROBE(cma, cma_release)
{
    struct rmem_event *e = new_event(@KIND_cma_release@);
    if (!e)
        return 0;
    unsigned short off = args->data_loc_name & 0xFFFF;
    bpf_probe_read_kernel_str(e->region, RMEM_NAME_LEN, (char *)args + off);
    e->count = args->count;
    e->addr = args->pfn;
    read_dma_dev(e);
    events.perf_submit(args, e, sizeof(*e));
    return 0;
}
#endif

#ifdef RMEM_HAVE_DMA_ALLOC_TP
TRACEPOINT_PROBE(dma, dma_alloc)
{
    struct rmem_event *e = new_event(@KIND_dma_alloc@);
    if (!e)
        return 0;
    unsigned short off = args->data_loc_device & 0xFFFF;
    bpf_probe_read_kernel_str(e->device, RMEM_DEVICE_LEN, (char *)args + off);
    e->size = args->size;
    e->addr = args->dma_addr;
    e->failed = args->virt_addr == 0;
    events.perf_submit(args, e, sizeof(*e));
    return 0;
}
#endif
"""


def bpf_text(defines: list[str]) -> str:
    """The BPF C program with the probes in ``defines`` compiled in."""
    from rmem_inspect.trace_events import (
        EVENT_C,
        FLAG_NODE_TRUNCATED,
        FLAG_REGION_FROM_NODE,
        KIND_IDS,
    )

    text = BPF_PROGRAM.replace("@EVENT_C@", EVENT_C)
    text = text.replace("@FLAG_NODE_TRUNCATED@", str(FLAG_NODE_TRUNCATED))
    text = text.replace("@FLAG_REGION_FROM_NODE@", str(FLAG_REGION_FROM_NODE))
    for name, kind in KIND_IDS.items():
        text = text.replace(f"@KIND_{name}@", str(kind))
    head = "".join(f"#define {d} 1\n" for d in sorted(set(defines)))
    return head + text


def kernel_cflags(release: str | None = None, build: str | None = None) -> list[str]:
    """Compiler flags the running kernel's headers need and bcc does not pass.

    The kernel compiles itself with ``CONFIG_CC_MS_EXTENSIONS`` (``-fms-extensions``,
    in its .config from 6.19 on) because its headers use tagged anonymous structs:
    7.x's include/linux/fs.h embeds ``struct __filename_head;`` in ``struct filename``
    and checks its size with a static_assert, which fails without the flag. Read from
    the build tree the headers package installs (``/lib/modules/RELEASE/build``).
    """
    build = build or f"/lib/modules/{release or os.uname().release}/build"
    for path in (f"{build}/include/config/auto.conf", f"{build}/.config"):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        # auto.conf writes strings unquoted, .config quoted
        m = re.search(r'^CONFIG_CC_MS_EXTENSIONS="?([^"\n]*)"?$', text, re.M)
        return m.group(1).split() if m else []
    return []


TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def tracepoint_fields(category: str, event: str) -> set[str] | None:
    """Field names of a tracepoint, from its format file (None: not readable)."""
    for root in TRACEFS:
        try:
            with open(os.path.join(root, "events", category, event, "format")) as f:
                text = f.read()
        except OSError:
            continue
        return set(re.findall(r"field:[^;]*?\b(\w+)(?:\[\d*\])?;", text))
    return None


def _kprobe_name(bpf: Any, func: str) -> str | None:
    """The kernel's symbol for ``func`` (possibly with a .isra/.constprop suffix)."""
    found = bpf.get_kprobe_functions(f"^{re.escape(func)}(\\.[a-z]+\\.\\d+)*$".encode())
    if not found:
        return None
    names = sorted(n.decode() for n in found)
    return func if func in names else names[0]


def _probe(bpf_cls: Any) -> tuple[list[tuple[Probe, str]], list[str], list[str]]:
    """Which probes the running kernel offers: (present, skipped notes, defines)."""
    present: list[tuple[Probe, str]] = []
    skipped: list[str] = []
    defines: list[str] = []
    have_coherent = False
    for p in PROBES:
        if p.tracepoint:
            cat, ev = p.target.split(":")
            if p.target == "dma:dma_alloc" and have_coherent:
                continue  # the kprobe says more (pool events only)
            if not bpf_cls.tracepoint_exists(cat, ev):
                skipped.append(f"{p.target} (no such tracepoint)")
                continue
            if p.target == "cma:cma_alloc_finish":
                fields = tracepoint_fields(cat, ev) or set()
                if "errorno" in fields:
                    defines.append("RMEM_CMA_ERRORNO")
            present.append((p, p.target))
        else:
            sym = _kprobe_name(bpf_cls, p.target)
            if sym is None:
                skipped.append(f"{p.target} (not kprobe-able)")
                continue
            if p.target == "dma_alloc_from_dev_coherent":
                have_coherent = True
            present.append((p, sym))
        defines.append(p.define)
    return present, skipped, defines


def _print_program() -> int:
    """``--ebpf`` (bcc's convention): the program text, without loading it."""
    defines: list[str] | None = None
    try:
        from bcc import BPF

        if os.geteuid() == 0:
            defines = _probe(BPF)[2]
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
    from rmem_inspect.trace_events import Correlator

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
    from rmem_inspect.trace_events import (
        HEADER,
        Attribution,
        Event,
        Summary,
        decode,
        format_event,
        format_summary,
        json_line,
        matches,
        summary_json_line,
    )

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
    present, skipped, defines = _probe(BPF)
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


if __name__ == "__main__":
    # python3 -m rmem_inspect.trace ARGS: the trace command on its own
    from rmem_inspect.commands.trace import main

    sys.exit(main())
