# SPDX-License-Identifier: GPL-2.0-or-later
"""
cma
---

Reusable shared-dma-pool regions and their CMA areas (RMEM-CMA-MISSING), and the default
pool that gives way to ``cma=`` on purpose (RMEM-CMA-CMDLINE).
"""

from __future__ import annotations

import re

from rmem_inspect.checks.codes import Need, code
from rmem_inspect.checks.context import Context
from rmem_inspect.checks.findings import RegionView, Verdict
from rmem_inspect.checks.handlers import handler_evidence, region_gap
from rmem_inspect.checks.registry import Check, register
from rmem_inspect.model import DtRegion, RmemEntry
from rmem_inspect.ranges import fmt_range, human_size

__all__ = ["CHECK", "check_cma", "check_cma_cmdline", "check_dropped_cma", "cma_gave_way"]


def check_cma(c: Context, r: DtRegion, e: RmemEntry) -> None:
    if not (r.reusable and "shared-dma-pool" in r.compatible) or c.snap.cma is None:
        return
    if e.size and any(a.base == e.base for a in c.snap.cma):
        return
    gap = region_gap(c.snap.kernel, r)
    if gap is not None:
        c.add(
            "RMEM-CMA-MISSING",
            r.name,
            f"{r.name} is a reusable shared-dma-pool but {gap.sentence()}"
            + (
                " (and the kernel has no CONFIG_CMA: its debug info has no cma_areas)"
                if "CONFIG_CMA" in c.snap.kernel.features_missing
                else ""
            )
            + f": no CMA area can exist; build the kernel with {' or '.join(gap.options)}, "
            "or drop the node.",
            cause=f"kernel built without {' or '.join(gap.options)}",
            cma_areas=[f"{a.name} {fmt_range(a.base, a.size)}" for a in c.snap.cma],
            **handler_evidence(c.snap.kernel, gap, c.snap.source.get("rmem_handlers")),
        )
        return
    if "CONFIG_CMA" in c.snap.kernel.features_missing:
        # RESERVEDMEM_OF_DECLARE(cma, "shared-dma-pool", rmem_cma_setup) is in
        # kernel/dma/contiguous.c, built only with CONFIG_DMA_CMA (which needs CMA):
        # __reserved_mem_init_node() finds no match ("compatible matching fail").
        c.add(
            "RMEM-CMA-MISSING",
            r.name,
            f"{r.name} is a reusable shared-dma-pool but this kernel is built without "
            "CONFIG_CMA (its debug info has no cma_areas): no CMA area can exist, the "
            "shared-dma-pool CMA setup is not in the kernel, so the node fails compatible "
            "matching; build the kernel with CONFIG_CMA and CONFIG_DMA_CMA, or drop the node.",
            cause="kernel built without CONFIG_CMA",
            cma_areas=[],
        )
        return
    c.add(
        "RMEM-CMA-MISSING",
        r.name,
        f"{r.name} is a reusable shared-dma-pool but no CMA area covers it.",
        cma_areas=[f"{a.name} {fmt_range(a.base, a.size)}" for a in c.snap.cma],
    )


def cma_gave_way(c: Context, r: DtRegion) -> tuple[list[str], str] | None:
    """
    Did ``r``, a linux,cma-default pool, give way to ``cma=`` on the command line? The
    kernel's rule (kernel/dma/contiguous.c, ``size_cmdline != -1``): on 6.1 and 6.12
    rmem_cma_setup() logs "Reserved memory: bypass %s node, using cmdline CMA params
    instead" and fails with -EBUSY, so fdt_init_reserved_mem() frees the pool's memory
    and keeps its entry without ops; on 7.x __rmem_cma_verify_node() logs 'Skipping dt
    linux,cma-default node in favor for "cma=" kernel param.' and the early scan never
    reserves it. (The log lines that say so, the cma= argument), or None.
    """
    lines = c.log.named("cma_bypass", r.name) + c.log.event_lines["cma_skip"][:1]
    found = re.findall(r"(?:^|\s)(cma=\S+)", c.snap.kernel.cmdline or "")
    arg = found[-1] if found else "cma="
    if lines:
        return lines, arg
    if not c.log.available and found:
        return [], arg  # the kernel's own predicate, from the command line
    return None


def check_cma_cmdline(c: Context, r: DtRegion, views: dict[str, RegionView]) -> bool:
    gave_way = cma_gave_way(c, r)
    if gave_way is None:
        return False
    lines, arg = gave_way
    e = c.by_name.get(r.name)
    default = [a for a in c.snap.cma or [] if a.is_default]
    instead = (
        f"; the default CMA area is '{default[0].name}' "
        f"{fmt_range(default[0].base, default[0].size)}"
        f" from {arg}"
        if default
        else ""
    )
    if e is not None:
        what = (
            f"the kernel bypassed the devicetree's default CMA pool, returned its "
            f"{human_size(e.size)} to the page allocator "
            f"and kept its reserved_mem entry without ops"
        )
    else:
        what = "the kernel skipped the devicetree's default CMA pool and never reserved it"
    c.add(
        "RMEM-CMA-CMDLINE",
        r.name,
        f"{r.name} gave way to {arg} on the kernel command line, on purpose: {what}{instead}; "
        "drop cma= from the boot loader's command line to use the devicetree pool.",
        cmdline=arg,
        tracked=e is not None,
        entry=(f"[{e.index}] base {e.base:#x} size {e.size:#x} ops {e.ops}" if e else None),
        cma_areas=[f"{a.name} {fmt_range(a.base, a.size)}" for a in c.snap.cma or []],
        log=lines,
        rule="kernel/dma/contiguous.c: a linux,cma-default node gives way to cma= "
        "(size_cmdline != -1)",
    )
    if r.name in views:
        views[r.name].verdict = Verdict.SKIPPED
        views[r.name].tracked = e is not None
    return True


def check_dropped_cma(c: Context, views: dict[str, RegionView]) -> None:
    """A reusable pool the kernel dropped has no CMA area either."""
    if c.dt is None or c.snap.cma is None or not c.rm_trusted:
        return
    for r in c.dt.regions:
        if r.reusable and r.available and "shared-dma-pool" in r.compatible:
            if r.name in c.by_name or (r.cma_default and cma_gave_way(c, r) is not None):
                continue
            default = [a for a in c.snap.cma if a.is_default]
            c.add(
                "RMEM-CMA-MISSING",
                r.name,
                f"{r.name} is a reusable shared-dma-pool but the kernel dropped it, so no CMA "
                "area was created from it"
                + (
                    f"; the default CMA area is '{default[0].name}' "
                    f"{fmt_range(default[0].base, default[0].size)} instead"
                    + (" (from the kernel config, not the devicetree)" if r.cma_default else "")
                    if default
                    else ""
                )
                + ".",
                cma_areas=[f"{a.name} {fmt_range(a.base, a.size)}" for a in c.snap.cma],
            )


_PER_REGION = (Need.DEVICETREE, Need.RESERVED_MEM_TRUSTED)
CHECK = register(
    Check(
        "cma",
        40,
        (
            code(
                "RMEM-CMA-MISSING",
                "error",
                "reusable shared-dma-pool without a CMA area",
                needs=(*_PER_REGION, Need.CMA),
                advice="check the pool's size and alignment (CMA needs pageblock alignment)",
                explains_failure=True,
            ),
            code(
                "RMEM-CMA-CMDLINE",
                "info",
                "linux,cma-default pool replaced by cma= on purpose",
                needs=_PER_REGION,
            ),
        ),
        check_dropped_cma,
    )
)
