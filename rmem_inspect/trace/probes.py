# SPDX-License-Identifier: GPL-2.0-or-later
"""
trace.probes
------------

What ``rmem-inspect trace`` traces (:data:`PROBES`: kernel functions, kprobe +
kretprobe, and tracepoints, each with the ``#define`` that compiles its BPF code in)
and which of it the running kernel offers (:func:`probe_kernel`), with bcc's own
helpers (``BPF.get_kprobe_functions``, ``BPF.tracepoint_exists``) and the
tracepoints' format files for fields that changed between kernels.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROBES",
    "TRACEFS",
    "Probe",
    "probe_kernel",
    "tracepoint_fields",
]


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


def probe_kernel(bpf_cls: Any) -> tuple[list[tuple[Probe, str]], list[str], list[str]]:
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
