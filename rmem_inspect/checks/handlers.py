# SPDX-License-Identifier: GPL-2.0-or-later
"""
handlers
--------

A region whose compatible this kernel has no handler for (RMEM-NO-HANDLER): the kernel
was built without the option that declares the handler (kernel/dma/swiotlb.c with
CONFIG_DMA_RESTRICTED_POOL, kernel/dma/contiguous.c with CONFIG_DMA_CMA, ...), which is
not the same as a handler that exists and failed (RMEM-NO-INIT). Decided on the kernel's
own ``__reservedmem_of_table`` (snapshot ``kernel.rmem_handlers``) and the declarations of
the kernel sources (:mod:`rmem_inspect.kernel.handlers`).
"""

from __future__ import annotations

from typing import Any

from rmem_inspect.checks.codes import Need, code
from rmem_inspect.checks.context import Context
from rmem_inspect.checks.registry import Check, register
from rmem_inspect.kernel.handlers import HandlerGap, handler_gap, identify
from rmem_inspect.model import DtRegion, KernelInfo, RmemEntry

__all__ = ["CHECK", "check_no_handler", "handler_evidence", "region_gap"]


def region_props(r: DtRegion) -> list[str]:
    """The properties of ``r`` the handlers' init functions test."""
    return [
        p
        for p, on in (
            ("reusable", r.reusable),
            ("no-map", r.nomap),
            ("linux,cma-default", r.cma_default),
        )
        if on
    ]


def region_gap(kernel: KernelInfo, r: DtRegion) -> HandlerGap | None:
    """What this kernel lacks to initialise ``r``; None when it has the handler or when
    its table was not read."""
    if kernel.rmem_handlers is None:
        return None
    present = [identify(h.name, h.compatible, h.data) for h in kernel.rmem_handlers]
    return handler_gap(r.compatible, region_props(r), [d for d in present if d is not None])


def handler_evidence(kernel: KernelInfo, gap: HandlerGap, read_from: Any) -> dict[str, Any]:
    return {
        "handlers": [
            f"{h.name or '?'}: {h.compatible or '?'} -> {h.data or '?'}"
            for h in kernel.rmem_handlers or []
        ],
        "handlers_from": read_from if isinstance(read_from, str) else "",
        "missing": gap.options,
        "declared": gap.evidence(),
    }


def check_no_handler(c: Context, r: DtRegion, e: RmemEntry) -> bool:
    """RMEM-NO-HANDLER for a tracked region left without ops because this kernel has no
    handler that accepts it. True when reported (RMEM-NO-INIT then says nothing more)."""
    if e.ops is not None or c.derived or not e.size:
        return False  # initialised, placement unknown, or never allocated (UNALLOCATED)
    gap = region_gap(c.snap.kernel, r)
    if gap is None:
        return False
    failed = c.log.named("match_fail", r.name) if c.log.events["match_fail"] else []
    what = (
        "so its init failed ('compatible matching fail' in the kernel log) and the kernel "
        "gave its memory back"
        if failed
        else "so nothing initialised it (ops is NULL): the kernel keeps it reserved"
    )
    c.add(
        "RMEM-NO-HANDLER",
        r.name,
        f"{r.name} is compatible with {gap.compatible} but {gap.sentence()}, {what} and "
        f"devices cannot use it; build the kernel with {' or '.join(gap.options)}.",
        ops=e.ops,
        log=failed,
        **handler_evidence(c.snap.kernel, gap, c.snap.source.get("rmem_handlers")),
    )
    return True


CHECK = register(
    Check(
        "handlers",
        32,
        (
            code(
                "RMEM-NO-HANDLER",
                "warning",
                "no handler for the region's compatible in this kernel",
                needs=(Need.DEVICETREE, Need.RESERVED_MEM_TRUSTED),
                advice="build the kernel with the option the finding names",
                explains_failure=True,
            ),
        ),
        None,
    )
)
