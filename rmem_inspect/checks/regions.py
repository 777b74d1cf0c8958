# SPDX-License-Identifier: GPL-2.0-or-later
"""
regions
-------

Every devicetree region against reserved_mem: dropped (RMEM-DROPPED, with the kernel's
reason), never allocated (RMEM-UNALLOCATED), reserved but untracked (RMEM-UNTRACKED),
disabled on purpose (RMEM-DISABLED), or in a /reserved-memory node the kernel rejects
as a whole (RMEM-DT-FORMAT). Tracked regions go on to :mod:`.placement` and :mod:`.cma`.
"""

from __future__ import annotations

from rmem_inspect.checks.cma import check_cma, check_cma_cmdline
from rmem_inspect.checks.codes import Need, code
from rmem_inspect.checks.context import GENERIC_INIT, REJECTED_ROOT_RULE, Context
from rmem_inspect.checks.findings import RegionView, Verdict
from rmem_inspect.checks.placement import check_placement, check_tracked
from rmem_inspect.checks.registry import Check, register
from rmem_inspect.kernel.layouts import Layout
from rmem_inspect.model import DtRegion
from rmem_inspect.ranges import fmt_range, human_size

__all__ = ["CHECK", "check_regions", "drop_cause"]


def drop_cause(c: Context, r: DtRegion, saved_rank: int | None) -> tuple[str, list[str]]:
    """Why the kernel did not track ``r``, with the log lines that say so."""
    rm = c.snap.reserved_mem
    log = c.log
    if c.rejected_root:
        return (
            "the kernel ignored the whole /reserved-memory node ("
            + "; ".join(c.rejected_root)
            + "), so nothing in it was reserved or tracked",
            log.event_lines["unsupported"][:2],
        )
    if r.invalid:
        return "invalid property: " + "; ".join(r.invalid), log.by_region.get(r.name, [])[:3]
    lines = log.named("too_many_dynamic", r.name)
    if lines:
        return (
            "more than 64 dynamic regions: the early scan skipped it and never allocated it",
            lines,
        )
    lines = log.named("alloc_failed", r.name)
    if lines:
        window = (
            ", ".join(fmt_range(b, s) for b, s in r.alloc_ranges)
            if r.alloc_ranges
            else "all memory"
        )
        return (
            f"allocation of {human_size(r.size or 0)} failed in {window}",
            lines,
        )
    lines = log.named("match_fail", r.name)
    if lines:
        return "its compatible's init failed; the kernel released the region", lines
    lines = log.named("not_enough", r.name)
    if lines:
        return f"reserved_mem array full ({rm.capacity if rm else '?'} entries)", lines
    if log.event_lines["array_alloc_failed"]:
        return (
            "the dynamic reserved_mem array could not be allocated; the kernel dropped every "
            "region",
            log.event_lines["array_alloc_failed"][:2],
        )
    if rm is not None and rm.layout == Layout.STATIC_ARRAY:
        if (rm.count or 0) >= rm.max_regions and (
            saved_rank is None or saved_rank >= rm.max_regions
        ):
            return (
                f"static reserved_mem array full: it holds {rm.max_regions} entries and this "
                f"node is number {saved_rank + 1 if saved_rank is not None else '?'} in "
                "devicetree order",
                log.event_lines["not_enough"][:1]
                + [f"({len(log.event_lines['not_enough'])} such lines)"],
            )
    # a dynamic array is sized to what the early scan counted, so count == capacity is its
    # usual state: "full" only when the kernel said so
    if log.event_lines["not_enough"]:
        return (
            f"reserved_mem array full ({rm.capacity if rm else '?'} entries)",
            log.event_lines["not_enough"][:2],
        )
    if not log.available:
        return "not tracked; the kernel log was not available to say why", []
    return "not tracked, and no kernel log line explains why", log.by_region.get(r.name, [])[:3]


def check_regions(c: Context, views: dict[str, RegionView]) -> None:
    dt = c.dt
    rm = c.snap.reserved_mem
    if dt is None:
        return
    if c.rejected_root:
        hit = [r.name for r, _, ok, _ in c.regions if ok]
        c.add(
            "RMEM-DT-FORMAT",
            "/reserved-memory",
            "the kernel ignores the whole /reserved-memory node: "
            + "; ".join(c.rejected_root)
            + f"; none of its {len(hit)} available regions is reserved or tracked: give it "
            "the root's #address-cells and #size-cells and an empty ranges.",
            problems=c.rejected_root,
            rule=REJECTED_ROOT_RULE,
            regions=hit[:16],
            log=c.log.event_lines["unsupported"][:2],
        )
    # Rank of each node among those the 6.1 kernel saves (okay nodes with reg or size).
    rank = 0
    consumers_of: dict[str, list[str]] = {}
    for con in (c.snap.dt or dt).consumers:
        for t in con.targets:
            if t:
                consumers_of.setdefault(t.rsplit("/", 1)[-1], []).append(con.path)
    by_name = c.by_name
    # Whether a tracked static region can be passed without check_tracked() when its
    # view shows it reserved where the devicetree puts it (see there).
    quick = not c.derived and c.memblock_ok and not c.log.events["match_fail"]
    for r, kind, available, ranges in c.regions:
        if not available:
            c.add(
                "RMEM-DISABLED",
                r.name,
                f'{r.name} has status "{r.status}": the kernel skips it on purpose'
                + (
                    f"; {', '.join(consumers_of[r.name])} will get no memory from it."
                    if r.name in consumers_of
                    else "."
                ),
                status=r.status,
                consumers=consumers_of.get(r.name, []),
            )
            continue
        saved_rank = rank if (not r.invalid and kind != "invalid") else None
        if saved_rank is not None:
            rank += 1
        if rm is None:
            continue
        if r.cma_default and c.rm_trusted and check_cma_cmdline(c, r, views):
            continue  # given way to cma= on purpose: nothing else to judge
        if not c.rm_trusted:
            # Not found in a reserved_mem that did not read: unknown, not "dropped".
            if r.name not in c.by_name and r.name in views:
                views[r.name].verdict = Verdict.UNKNOWN
            continue
        e = by_name.get(r.name)
        if e is not None and len(ranges) == 1 and kind == "static":
            # The usual case, kept short: one reg entry, tracked.
            view = views[r.name]
            if (
                quick
                and view.reserved
                and view.base == e.base
                and view.size == e.size
                and not r.nomap
                and (e.ops is not None or GENERIC_INIT.isdisjoint(r.compatible))
                and c.memory.covers(e.base, e.size)
            ):
                # tracked where the devicetree says, reserved, initialised (or needing
                # no init): nothing check_tracked() could report
                view.tracked = True
            else:
                check_tracked(c, r, kind, e, view)
            if r.reusable:
                check_cma(c, r, e)
            continue
        if e is None:
            cause, lines = drop_cause(c, r, saved_rank)
            reserved = None
            if kind == "static" and c.memblock_ok:
                reserved = c.covered.covers(r.reg[0][0], r.reg[0][1])
            c.add(
                "RMEM-DROPPED",
                r.name,
                f"{r.name} ({kind}, "
                f"{fmt_range(*r.reg[0]) if r.reg else human_size(r.size or 0)}) is "
                f"not in reserved_mem: {cause}; drivers looking it up get nothing.",
                cause=cause,
                log=lines,
                dt_index=r.index,
                memblock_reserved=reserved,
            )
            views[r.name].verdict = Verdict.DROPPED
        # Extra reg entries: the kernel tracks only the first.
        for name, base, size in ranges[1:]:
            only = c.log.named("only_first", r.name) or c.log.named("ignores", r.name, 2)
            c.add(
                "RMEM-DROPPED",
                name,
                f"{name} {fmt_range(base, size)} is reg entry {name.rsplit('[', 1)[1][:-1]} of "
                f"{r.name}: the kernel tracks only a node's first reg entry.",
                cause="only the first reg entry of a node is tracked",
                log=only,
            )
            views[name].verdict = Verdict.DROPPED
        # Memory for dynamic regions.
        if kind == "dynamic" and (e is None or e.size == 0):
            lines = c.log.named("alloc_failed", r.name) or c.log.named("too_many_dynamic", r.name)
            why = (
                "allocation failed"
                if c.log.named("alloc_failed", r.name)
                else (
                    "the kernel ignored the whole /reserved-memory node"
                    if c.rejected_root
                    else (
                        "it was never allocated (dropped before allocation)"
                        if e is None
                        else "its reserved_mem entry has size 0"
                    )
                )
            )
            c.add(
                "RMEM-UNALLOCATED",
                r.name,
                f"dynamic region {r.name} ({human_size(r.size or 0)}) has no memory: {why}; the "
                "carveout does not exist.",
                size=r.size,
                alignment=r.alignment,
                alloc_ranges=[fmt_range(b, s) for b, s in r.alloc_ranges],
                log=lines,
                entry=(f"[{e.index}] base {e.base:#x} size {e.size:#x}" if e else None),
            )
            views[r.name].verdict = Verdict.UNALLOCATED
        # Static ranges reserved but not tracked.
        if c.memblock_ok and kind == "static":
            for i, (name, base, size) in enumerate(ranges):
                tracked = e is not None and i == 0
                if tracked or not size:
                    continue
                if c.covered.covers(base, size):
                    c.add(
                        "RMEM-UNTRACKED",
                        name,
                        f"{name} {fmt_range(base, size)} is reserved in memblock but not tracked "
                        "in reserved_mem: the memory is lost to the system and drivers "
                        "cannot look it up.",
                        memblock=c.memblock_region_evidence(base, size),
                    )
                    if views[name].verdict == Verdict.OK:
                        views[name].verdict = Verdict.UNTRACKED
        if e is None:
            continue
        check_tracked(c, r, kind, e, views[r.name])
        check_cma(c, r, e)
    # Entries that match no DT region.
    dt_names = c.dt_names
    for e in c.entries:
        if e.name is not None and e.name not in dt_names and e.size and not e.error:
            check_placement(c, e.name, e, nomap=False)


_PER_REGION = (Need.DEVICETREE, Need.RESERVED_MEM_TRUSTED)
CHECK = register(
    Check(
        "regions",
        30,
        (
            code(
                "RMEM-DROPPED",
                "error",
                "okay DT region missing from reserved_mem",
                needs=_PER_REGION,
                advice="see each region's cause below",
                consequences=(
                    "RMEM-UNALLOCATED",
                    "RMEM-UNTRACKED",
                    "RMEM-CMA-MISSING",
                    "RMEM-CONSUMER-ORPHAN",
                ),
                explains_failure=True,
            ),
            code(
                "RMEM-UNALLOCATED",
                "error",
                "dynamic region never got memory",
                needs=_PER_REGION,
                advice=(
                    "make room for the region: widen or move its alloc-ranges, lower its size "
                    "or alignment, or move what is already reserved in the window"
                ),
                consequences=("RMEM-CMA-MISSING", "RMEM-CONSUMER-ORPHAN"),
                explains_failure=True,
            ),
            code(
                "RMEM-UNTRACKED",
                "warning",
                "DT range reserved in memblock but not in reserved_mem",
                needs=(*_PER_REGION, Need.MEMBLOCK),
                advice="give the range its own /reserved-memory node the kernel can track",
            ),
            code(
                "RMEM-DISABLED",
                "info",
                'status = "disabled" node, skipped on purpose',
                needs=(Need.DEVICETREE,),
                advice='nothing to do unless the region should be used: set status = "okay"',
            ),
            code(
                "RMEM-DT-FORMAT",
                "error",
                "/reserved-memory has cells/ranges the kernel rejects",
                needs=(Need.DEVICETREE,),
                advice=(
                    "give /reserved-memory the root's #address-cells and #size-cells and an "
                    "empty ranges property"
                ),
            ),
        ),
        check_regions,
    )
)
