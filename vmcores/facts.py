# SPDX-License-Identifier: GPL-2.0-or-later
"""
What each kernel series actually did with each scenario, read from its boot
log (Debian 6.1.176, 6.12.117, 7.3.4 cloud-arm64, booted by the factory on
2026-11-25), so that tests assert facts rather than guesses.

A :class:`Fact` is a regular expression and how many kernel-log lines match it
(0: must not appear). The vmcore tier checks every fact against the printk
buffer inside the dump itself (and the factory's saved dmesg.txt).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FACTS", "Fact", "facts_for"]

ALL = ("6.1", "6.12", "7.x")
DYNAMIC = ("6.12", "7.x")

NOT_ENOUGH = r"OF: reserved mem: not enough space for all defined regions"
TOO_MANY_DYNAMIC = r"OF: reserved mem: too many defined dynamic regions, skip '(dyn\d+)'"
OVERLAP = r"OF: reserved mem: OVERLAP DETECTED!"
DT_CMA_POOL = r"Reserved memory: created CMA memory pool at 0x000000007e000000, size 32 MiB"
DEFAULT_CMA = r"cma: Reserved 64 MiB at 0x[0-9a-f]+"
NO_NODE = r"OF: reserved mem: Reserved memory: No reserved-memory node in the DT"


@dataclass(frozen=True)
class Fact:
    series: tuple[str, ...]
    pattern: str
    count: int
    why: str = ""


FACTS: dict[str, list[Fact]] = {
    "baseline": [
        Fact(ALL, DT_CMA_POOL, 1, "linux,cma becomes the default CMA area"),
        Fact(ALL, r"created DMA memory pool at 0x0000000051000000, size (1 MiB|1024 KiB)$", 1),
        Fact(ALL, DEFAULT_CMA, 0, "the DT pool replaces the config default"),
        Fact(ALL, r"failed to|not enough space|OVERLAP", 0),
        Fact(DYNAMIC, r"\(8192 KiB\) map non-reusable dsp-pool$", 1),
        Fact(DYNAMIC, r"\(2048 KiB\) nomap non-reusable firmware@50000000$", 1),
    ],
    "overflow": [
        Fact(("6.1",), NOT_ENOUGH, 5, "69 regions into a 64-entry static array"),
        Fact(("6.1",), DT_CMA_POOL, 0, "linux,cma is the 69th region: never set up"),
        Fact(("6.1",), DEFAULT_CMA, 1, "so the kernel falls back to its config-sized CMA"),
        Fact(DYNAMIC, NOT_ENOUGH, 0, "the dynamic array is sized from the DT"),
        Fact(DYNAMIC, DT_CMA_POOL, 1),
        Fact(DYNAMIC, r" \(\d+ KiB\) (no)?map (non-)?reusable ", 69, "every region initialised"),
    ],
    "dynamic-limit": [
        Fact(("6.1",), NOT_ENOUGH, 6, "70 dynamic regions into 64 entries"),
        Fact(DYNAMIC, TOO_MANY_DYNAMIC, 6, "dyn64..dyn69 are skipped by the early scan"),
        Fact(DYNAMIC, r"skip 'dyn64'", 1),
        Fact(DYNAMIC, r" \(256 KiB\) map non-reusable dyn\d+$", 64),
    ],
    "alloc-fail": [
        Fact(ALL, r"failed to allocate memory for node 'big-pool': size 64 MiB", 1),
        Fact(DYNAMIC, r"\(8192 KiB\) map non-reusable dsp-pool$", 1),
    ],
    "nomap-conflict": [
        Fact(
            ALL,
            r"Reserved memory: failed to reserve memory for node 'fw-shared@52100000': "
            r"base 0x0000000052100000, size 1 MiB",
            1,
            "no-map refused (-EBUSY): the range is already reserved by vpu",
        ),
        Fact(ALL, OVERLAP, 1),
        Fact(
            ALL, r"vpu@52000000 \(0x0+52000000--0x0+52400000\) overlaps with fw-shared@52100000", 1
        ),
        Fact(DYNAMIC, r"\(1024 KiB\) nomap non-reusable fw-shared@52100000$", 1),
    ],
    "overlap": [
        Fact(ALL, OVERLAP, 1),
        Fact(
            ALL, r"camera@54000000 \(0x0+54000000--0x0+54400000\) overlaps with display@54200000", 1
        ),
    ],
    "disabled": [
        Fact(ALL, r"gpu-old|old-pool", 0, "disabled nodes are skipped silently"),
        Fact(ALL, r"failed to|not enough space|OVERLAP", 0),
        Fact(DYNAMIC, r" \(\d+ KiB\) (no)?map (non-)?reusable ", 3),
    ],
    "multi-reg": [
        Fact(
            ("6.1",),
            r"multi@55000000",
            0,
            "6.1 reserves all entries, tracks the first, says nothing",
        ),
        Fact(
            ("6.12",),
            r"fdt_scan_reserved_mem_reg_nodes\(\) ignores 2 regions in node 'multi@55000000'",
            1,
        ),
        Fact(
            ("7.x",),
            r"node 'multi@55000000' has 3 <base size> entries, only the first is used",
            1,
        ),
        Fact(DYNAMIC, r"\(1024 KiB\) map non-reusable multi@55000000$", 1),
    ],
    "no-reserved-memory": [
        Fact(ALL, DEFAULT_CMA, 1),
        Fact(DYNAMIC, NO_NODE, 1),
    ],
    "consumers": [
        Fact(ALL, r"failed to allocate memory for node 'missing-pool': size 64 MiB", 1),
        Fact(ALL, DT_CMA_POOL, 1),
        Fact(ALL, r"old-fb", 0),
    ],
}


def facts_for(scenario: str, series: str) -> list[Fact]:
    return [f for f in FACTS.get(scenario, []) if series in f.series]
