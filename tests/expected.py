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
- early_init_dt_reserve_memory() (every series) accepts a no-map range that is not
  memory on purpose: nothing is reserved or marked, nothing is wrong (info
  RMEM-OUTSIDE-RAM); a mapped range outside RAM is memblock_reserve()d as usual.
  mem= cuts memblock.memory before the scan (arm64_memblock_init()), so carveouts
  above the limit are outside RAM and windows above it cannot be allocated from.
- __reserved_mem_check_root() rejects a /reserved-memory whose #address-cells or
  #size-cells differ from the root's: nothing is reserved, marked or tracked, on
  every series; 7.x then counts 0 regions and keeps reserved_mem at the init array
  on purpose (no RMEM-ARRAY-NOT-DYNAMIC).
- kernel/dma/contiguous.c: with cma= on the command line a linux,cma-default pool
  gives way on purpose: 6.1/6.12 bypass it in rmem_cma_setup() (memory freed, entry
  kept without ops), 7.x skips it in the early scan (never reserved).
- /memreserve/ entries are memblock-reserved before the scan on 6.1 and after it on
  6.12+ (early_init_fdt_scan_reserved_mem()): a no-map region over one is refused
  (-EBUSY) on 6.1 only.
- __reserved_mem_init_node() walks the kernel's __reservedmem_of_table: a compatible
  with no entry there (restricted-dma-pool: Debian builds without
  CONFIG_DMA_RESTRICTED_POOL, kernel/dma/swiotlb.c) is kept tracked and reserved with ops
  NULL and nothing logged (-ENOENT / -ENODEV): RMEM-NO-HANDLER, never RMEM-NO-INIT.
"""

from __future__ import annotations

from rmem_inspect.checks import CODES

__all__ = [
    "CLEAN",
    "OUTSIDE_RAM",
    "SERIES",
    "expected_findings",
    "expected_info",
    "expected_triples",
]

SERIES = ("6.1", "6.12", "7.x")
CLEAN = (
    "baseline",
    "disabled",
    "no-reserved-memory",
    "nomap-outside-ram",
    "banks",
    "highmem",
    "kaslr",
    "cma-cmdline",
)

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
    if scenario == "mem-limit":
        if static:
            return {("RMEM-UNALLOCATED", "hi-pool")}
        return {("RMEM-DROPPED", "hi-pool"), ("RMEM-UNALLOCATED", "hi-pool")}
    if scenario == "rmem-cells":
        regions = ("fw@50000000", "vpu@50400000", "dsp-pool")
        return (
            {("RMEM-DT-FORMAT", "/reserved-memory")}
            | _both(("RMEM-DROPPED",), regions)
            | {("RMEM-UNALLOCATED", "dsp-pool")}
            # the firmware's no-map was never applied: it sits in the linear map
            | {("RMEM-NOMAP-MAPPED", "fw@50000000")}
            | {("RMEM-CONSUMER-ORPHAN", "vpu@50400000")}
        )
    if scenario == "mt8192":
        # every series logged "initialized node" for the two shared-dma-pool regions
        # and only the placement line for wifi@c0000000 (no handler, no init)
        return {("RMEM-NO-HANDLER", "wifi@c0000000")}
    if scenario == "memreserve":
        if static:
            return {
                ("RMEM-NOMAP-MISSING", "spl-log@5f000000"),
                ("RMEM-NOMAP-MAPPED", "spl-log@5f000000"),
            }
        return set()
    raise KeyError(scenario)


#: Regions outside RAM in each scenario (info RMEM-OUTSIDE-RAM on every series).
OUTSIDE_RAM = {
    "nomap-outside-ram": ("sram-fw@e000000", "boot-fw@3ff00000"),
    "banks": ("hole-fw@62000000", "hole-buf@64000000"),
    "mem-limit": ("modem-fw@78000000", "ramlog@7a000000"),
}


def expected_info(scenario: str, series: str) -> set[Pair]:
    """Info findings: the static-array notice on 6.1 and disabled nodes."""
    out: set[Pair] = set()
    if series == "6.1" and scenario not in ("overflow", "dynamic-limit"):
        out.add(("RMEM-STATIC-ARRAY", None))
    if scenario == "disabled":
        out |= {("RMEM-DISABLED", "gpu-old@51000000"), ("RMEM-DISABLED", "old-pool")}
    if scenario == "consumers":
        out.add(("RMEM-DISABLED", "old-fb@51000000"))
    out |= _both(("RMEM-OUTSIDE-RAM",), OUTSIDE_RAM.get(scenario, ()))
    if scenario == "cma-cmdline":
        # linux,cma-default gives way to cma= on every series (bypassed on 6.1/6.12,
        # skipped by the early scan on 7.x): on purpose, so info
        out.add(("RMEM-CMA-CMDLINE", "linux,cma"))
    return out


def expected_triples(scenario: str, series: str) -> set[tuple[str, str | None, str]]:
    """Every finding the scenario must produce, with its severity: each code's own,
    but RMEM-STATIC-ARRAY, an error when the array overflowed and info otherwise."""
    out = {
        (code, region, "error" if code == "RMEM-STATIC-ARRAY" else CODES[code][0])
        for code, region in expected_findings(scenario, series)
    }
    return out | {(code, region, "info") for code, region in expected_info(scenario, series)}
