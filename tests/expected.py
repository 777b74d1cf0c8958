# SPDX-License-Identifier: GPL-2.0-or-later
"""
Expected (code, region) findings at warning or error severity for every factory
scenario on every kernel series, and the info findings we also pin.

Each entry is derived from what the kernel did, as recorded from its boot log in
vmcores/facts.py and from the kernel sources (drivers/of/of_reserved_mem.c of
Debian's 6.1.176, 6.12.117 and 7.3.4), not from this tool's output:

- 6.1 saves static and dynamic nodes in DT order into a 64-entry array
  ("not enough space for all defined regions." once per extra node); a dynamic
  node saved there whose allocation fails stays in the array with size 0.
- 6.12/7.x size the array from the DT; more than 64 *dynamic* nodes are skipped
  by the early scan ("too many defined dynamic regions, skip 'dynN'"); a failed
  allocation is never saved.
- A no-map node over an already reserved range is refused with -EBUSY ("failed to
  reserve memory for node") but saved anyway, so it is tracked, mapped, not NOMAP.
- Only a node's first reg entry is tracked; 6.1/6.12 still memblock_reserve the
  others (UNTRACKED), 7.x does not (only the first is used).
"""

from __future__ import annotations

__all__ = ["CLEAN", "SERIES", "expected_findings", "expected_info"]

SERIES = ("6.1", "6.12", "7.x")
CLEAN = ("baseline", "disabled", "no-reserved-memory")

Pair = tuple[str, str | None]


def _both(codes: tuple[str, ...], names: tuple[str, ...]) -> set[Pair]:
    return {(c, n) for c in codes for n in names}


def expected_findings(scenario: str, series: str) -> set[Pair]:
    """(code, region) of every warning or error the scenario must produce."""
    static = series == "6.1"
    if scenario in CLEAN:
        return set()
    if scenario == "overflow":
        if not static:
            return set()
        dropped_static = ("ip52@52d00000", "ip53@52d40000")
        dropped_dynamic = ("pool8", "pool9", "linux,cma")
        return (
            {("RMEM-STATIC-ARRAY", None)}
            | _both(("RMEM-DROPPED",), dropped_static + dropped_dynamic)
            | _both(("RMEM-UNALLOCATED",), dropped_dynamic)
            | _both(("RMEM-UNTRACKED",), dropped_static)
            | {("RMEM-CMA-MISSING", "linux,cma")}
            | {("RMEM-CONSUMER-ORPHAN", "pool9"), ("RMEM-CONSUMER-ORPHAN", "ip53@52d40000")}
        )
    if scenario == "dynamic-limit":
        extra = tuple(f"dyn{i}" for i in range(64, 70))
        out = _both(("RMEM-DROPPED", "RMEM-UNALLOCATED"), extra)
        if static:
            out.add(("RMEM-STATIC-ARRAY", None))
        return out
    if scenario == "alloc-fail":
        if static:
            return {("RMEM-UNALLOCATED", "big-pool")}
        return {("RMEM-DROPPED", "big-pool"), ("RMEM-UNALLOCATED", "big-pool")}
    if scenario == "nomap-conflict":
        return {
            ("RMEM-NOMAP-MISSING", "fw-shared@52100000"),
            ("RMEM-NOMAP-MAPPED", "fw-shared@52100000"),
            ("RMEM-OVERLAP", "vpu@52000000"),
        }
    if scenario == "overlap":
        return {("RMEM-OVERLAP", "camera@54000000")}
    if scenario == "multi-reg":
        extra = ("multi@55000000[1]", "multi@55000000[2]")
        out = _both(("RMEM-DROPPED",), extra)
        if series in ("6.1", "6.12"):
            out |= _both(("RMEM-UNTRACKED",), extra)
        return out
    if scenario == "consumers":
        out = {("RMEM-UNALLOCATED", "missing-pool"), ("RMEM-CONSUMER-ORPHAN", "missing-pool")}
        if not static:
            out.add(("RMEM-DROPPED", "missing-pool"))
        return out
    raise KeyError(scenario)


def expected_info(scenario: str, series: str) -> set[Pair]:
    """Info findings: the static-array notice on 6.1 and disabled nodes."""
    out: set[Pair] = set()
    if series == "6.1" and scenario not in ("overflow", "dynamic-limit"):
        out.add(("RMEM-STATIC-ARRAY", None))
    if scenario == "disabled":
        out |= {("RMEM-DISABLED", "gpu-old@51000000"), ("RMEM-DISABLED", "old-pool")}
    if scenario == "consumers":
        out.add(("RMEM-DISABLED", "old-fb@51000000"))
    return out
