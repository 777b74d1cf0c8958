# SPDX-License-Identifier: GPL-2.0-or-later
"""
Kernel messages
---------------

The kernel log lines this tool writes (preflight predicts them) or parses (the
checks, collect/sysfs.py), each defined once: the format as the kernel prints it,
citing the file and function, and its parser, a compiled regex. ``pr_fmt`` of
drivers/of/of_reserved_mem.c is :data:`RMEM_PREFIX`, of drivers/of/fdt.c
:data:`FDT_PREFIX`.

:data:`LOG_PATTERNS` and :data:`LOG_LITERALS` are, key for key, the patterns and
the literals the checks look for in a log (a literal each match contains, for a
cheap substring test before the regex).
"""

from __future__ import annotations

import re

__all__ = [
    "ALLOC_FAILED",
    "ARRAY_ALLOC_FAILED",
    "CMA_BYPASS",
    "CMA_SKIP",
    "FDT_PREFIX",
    "IGNORES",
    "INVALID",
    "LOG_LITERALS",
    "LOG_PATTERNS",
    "MATCH_FAIL",
    "MATCH_FAIL_LINE",
    "MEM_LIMIT",
    "NOT_ENOUGH",
    "ONLY_FIRST",
    "OVERLAP",
    "REGION_LINE",
    "RESERVE_FAILED",
    "RMEM_PREFIX",
    "TOO_MANY_DYNAMIC",
    "UNSUPPORTED",
    "alloc_failed",
    "match_fail",
    "mem_limit",
    "region_line",
]

#: ``pr_fmt`` of drivers/of/of_reserved_mem.c.
RMEM_PREFIX = "OF: reserved mem: "
#: ``pr_fmt`` of drivers/of/fdt.c.
FDT_PREFIX = "OF: fdt: "

# --------------------------------------------------------------------------
# drivers/of/of_reserved_mem.c (and drivers/of/fdt.c for <= 6.11)

#: save/alloc into a full array: "not enough space for all defined regions." (6.1,
#: 6.12 fdt_reserved_mem_save_node()) or "..., skip '%s'" (7.x).
NOT_ENOUGH = re.compile(r"not enough space for all defined regions(?:, skip '([^']+)')?")
#: fdt_scan_reserved_mem() (6.12+): "too many defined dynamic regions, skip '%s'".
TOO_MANY_DYNAMIC = re.compile(r"too many defined dynamic regions, skip '([^']+)'")
#: __reserved_mem_alloc_size(): "failed to allocate memory for node '%s': size %lu MiB".
ALLOC_FAILED = re.compile(r"failed to allocate memory for node '([^']+)'")
#: __reserved_mem_reserve_reg(): "Reserved memory: failed to reserve memory for node
#: '%s': base %pa, size %lu MiB".
RESERVE_FAILED = re.compile(r"failed to reserve memory for node '([^']+)'")
#: __reserved_mem_init_node(): "node %s compatible matching fail".
MATCH_FAIL = re.compile(r"node (\S+) compatible matching fail")
#: The same, anchored on :data:`RMEM_PREFIX` (what collect/sysfs.py reads).
MATCH_FAIL_LINE = re.compile(r"OF: reserved mem: node (\S+) compatible matching fail")
#: alloc_reserved_mem_array() (6.12+): "Failed to allocate memory for reserved_mem array
#: with err: %d".
ARRAY_ALLOC_FAILED = re.compile(r"Failed to allocate memory for reserved_mem array")
#: "invalid %s property in '%s'..." (reg, size, alignment, alloc-ranges).
INVALID = re.compile(r"invalid (\S+) property in '([^']+)'")
#: fdt_scan_reserved_mem(): "Reserved memory: unsupported node format, ignoring".
UNSUPPORTED = re.compile(r"unsupported node format, ignoring")
#: fdt_scan_reserved_mem_reg_nodes() (6.12): "fdt_scan_reserved_mem_reg_nodes() ignores
#: %d regions in node '%s'".
IGNORES = re.compile(r"ignores (\d+) regions in node '([^']+)'")
#: __reserved_mem_reserve_reg() (7.x): "Reserved memory: node '%s' has %d <base size>
#: entries, only the first is used".
ONLY_FIRST = re.compile(r"node '([^']+)' has (\d+) <base size> entries, only the first")
#: __rmem_check_for_overlap(): "OVERLAP DETECTED!\n%s (%pa--%pa) overlaps with %s
#: (%pa--%pa)" (the second line, as a log line of its own).
OVERLAP = re.compile(r"^(\S+) \((0x[0-9a-f]+)--(0x[0-9a-f]+)\) overlaps with (\S+) ")
#: fdt_init_reserved_mem_node() (6.12+): "%pa..%pa (%lu KiB) %s %s %s" (map/nomap,
#: reusable/non-reusable, the name), under :data:`RMEM_PREFIX`.
REGION_LINE = re.compile(
    r"OF: reserved mem: (0x[0-9a-f]+)\.\.(0x[0-9a-f]+) \((\d+) KiB\) (map|nomap) "
    r"(reusable|non-reusable) (\S+)$"
)

# --------------------------------------------------------------------------
# arch/arm64/mm/init.c, kernel/dma/contiguous.c

#: arm64 early_mem(): "Memory limited to %lldMB".
MEM_LIMIT = re.compile(r"^Memory limited to (\d+)MB")
#: rmem_cma_setup() (6.1, 6.12): "Reserved memory: bypass %s node, using cmdline CMA
#: params instead".
CMA_BYPASS = re.compile(r"Reserved memory: bypass (\S+) node, using cmdline CMA params")
#: __rmem_cma_verify_node() (7.x): 'Skipping dt linux,cma-default node in favor for
#: "cma=" kernel param.'.
CMA_SKIP = re.compile(r'Skipping dt linux,cma-default node in favor for "cma=" kernel')

#: The checks' log events: kind -> pattern.
LOG_PATTERNS: dict[str, re.Pattern[str]] = {
    "not_enough": NOT_ENOUGH,
    "too_many_dynamic": TOO_MANY_DYNAMIC,
    "alloc_failed": ALLOC_FAILED,
    "reserve_failed": RESERVE_FAILED,
    "match_fail": MATCH_FAIL,
    "array_alloc_failed": ARRAY_ALLOC_FAILED,
    "invalid": INVALID,
    "unsupported": UNSUPPORTED,
    "ignores": IGNORES,
    "only_first": ONLY_FIRST,
    "overlap": OVERLAP,
    "mem_limit": MEM_LIMIT,
    "cma_bypass": CMA_BYPASS,
    "cma_skip": CMA_SKIP,
}

#: A literal each pattern's matches contain: most lines contain none, and a substring
#: test is much cheaper than a regex search.
LOG_LITERALS: dict[str, str] = {
    "not_enough": "not enough space for all defined regions",
    "too_many_dynamic": "too many defined dynamic regions, skip '",
    "alloc_failed": "failed to allocate memory for node '",
    "reserve_failed": "failed to reserve memory for node '",
    "match_fail": " compatible matching fail",
    "array_alloc_failed": "Failed to allocate memory for reserved_mem array",
    "invalid": " property in '",
    "unsupported": "unsupported node format, ignoring",
    "ignores": " regions in node '",
    "only_first": " <base size> entries, only the first",
    "overlap": ") overlaps with ",
    "mem_limit": "Memory limited to ",
    "cma_bypass": "Reserved memory: bypass ",
    "cma_skip": "Skipping dt linux,cma-default node",
}


# --------------------------------------------------------------------------
# Formats: the lines as the kernel prints them (what preflight writes)


def alloc_failed(name: str, size: int) -> str:
    """__reserved_mem_alloc_size()'s failure line (without the prefix)."""
    return f"failed to allocate memory for node '{name}': size {size >> 20} MiB"


def match_fail(name: str) -> str:
    """__reserved_mem_init_node()'s failure line (without the prefix)."""
    return f"node {name} compatible matching fail"


def mem_limit(limit: int) -> str:
    """arm64 early_mem()'s line for ``memory_limit`` bytes."""
    return f"Memory limited to {limit >> 20}MB"


def region_line(base: int, size: int, nomap: bool, reusable: bool, name: str) -> str:
    """fdt_init_reserved_mem_node()'s line (6.12+, without the prefix)."""
    kind = ("nomap" if nomap else "map") + (" reusable" if reusable else " non-reusable")
    return f"{base:#018x}..{base + size - 1:#018x} ({size >> 10} KiB) {kind} {name}"
