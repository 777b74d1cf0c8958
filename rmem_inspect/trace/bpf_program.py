# SPDX-License-Identifier: GPL-2.0-or-later
"""
trace.bpf_program
-----------------

The BPF C program of ``rmem-inspect trace`` (:data:`BPF_PROGRAM`): one kprobe and
kretprobe pair or tracepoint handler per probe of :data:`~rmem_inspect.trace.probes.PROBES`,
each compiled in by its ``#define``, all writing ``struct rmem_event``
(:data:`~rmem_inspect.trace.events.EVENT_C`) to one perf buffer; :func:`bpf_text`
fills it in, :func:`kernel_cflags` gives the compiler flags the running kernel's
headers need.
"""

from __future__ import annotations

import os
import re

from rmem_inspect.trace.events import EVENT_C, FLAG_NODE_TRUNCATED, FLAG_REGION_FROM_NODE, KIND_IDS

__all__ = [
    "BPF_PROGRAM",
    "bpf_text",
    "kernel_cflags",
]

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
