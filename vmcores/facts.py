# SPDX-License-Identifier: GPL-2.0-or-later
"""
What each kernel series actually did with each scenario, read from its boot
log (Debian 6.1.176, 6.12.117, 7.3.4 cloud-arm64, booted by the factory on
2026-11-25; the real-board scenarios on 2026-12-02), so that tests assert facts
rather than guesses.

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
    "nomap-outside-ram": [
        Fact(ALL, r"failed to|not enough space|OVERLAP", 0, "both no-map ranges are accepted"),
        Fact(
            DYNAMIC,
            r"\(1024 KiB\) nomap non-reusable sram-fw@e000000$",
            1,
            "no-map below RAM: tracked, nothing reserved or marked",
        ),
        Fact(DYNAMIC, r"\(2048 KiB\) nomap non-reusable boot-fw@3ff00000$", 1),
        Fact(
            ALL,
            r"node   0: \[mem 0x0000000040000000-0x00000000400fffff\]",
            1,
            "only the RAM half of boot-fw is marked NOMAP (memblock splits the bank there)",
        ),
    ],
    "banks": [
        Fact(ALL, r"failed to|not enough space|OVERLAP", 0),
        Fact(ALL, r"node   0: \[mem 0x0000000040000000-0x000000005fffffff\]", 1, "bank 1"),
        Fact(ALL, r"node   0: \[mem 0x0000000068000000-0x000000006fffffff\]", 1, "bank 2"),
        Fact(ALL, r"node   0: \[mem 0x0000000070000000-0x00000000701fffff\]", 1, "bank2-fw NOMAP"),
        Fact(ALL, DT_CMA_POOL, 1, "CMA at the top of bank 2"),
        Fact(DYNAMIC, r"\(2048 KiB\) nomap non-reusable hole-fw@62000000$", 1),
        Fact(DYNAMIC, r"\(1024 KiB\) map non-reusable hole-buf@64000000$", 1),
        Fact(
            DYNAMIC,
            r"0x000000006f800000\.\.0x000000006fffffff \(8192 KiB\) map non-reusable dsp-pool$",
            1,
        ),
    ],
    "mem-limit": [
        Fact(
            ALL,
            r"failed to allocate memory for node 'hi-pool': size 8 MiB",
            1,
            "its window lies above the mem=768M limit",
        ),
        Fact(ALL, r"node   0: \[mem 0x0000000040000000-0x000000006fffffff\]", 1, "RAM cut at 768M"),
        Fact(ALL, r"failed to reserve|not enough space|OVERLAP", 0),
        Fact(DYNAMIC, r"\(2048 KiB\) nomap non-reusable modem-fw@78000000$", 1),
        Fact(DYNAMIC, r"\(1024 KiB\) map non-reusable ramlog@7a000000$", 1),
    ],
    "rmem-cells": [
        Fact(("6.1",), r"OF: fdt: Reserved memory: unsupported node format, ignoring", 1),
        Fact(
            DYNAMIC,
            r"OF: reserved mem: Reserved memory: unsupported node format, ignoring",
            2,
            "refused by the early scan and again by the late one",
        ),
        Fact(ALL, r"Failed to allocate memory for reserved_mem array", 0),
        Fact(ALL, r" \(\d+ KiB\) (no)?map (non-)?reusable ", 0, "nothing initialised"),
        Fact(ALL, DEFAULT_CMA, 1),
    ],
    "highmem": [
        Fact(ALL, r"failed to|not enough space|OVERLAP", 0),
        Fact(
            ALL,
            r"Reserved memory: created CMA memory pool at 0x000000013[ce]000000, size 32 MiB",
            1,
            "the default CMA pool at the top of RAM, above 4 GiB",
        ),
        Fact(
            DYNAMIC,
            r"0x000000013e000000\.\.0x000000013fffffff \(32768 KiB\) map non-reusable hi-pool$",
            1,
        ),
        Fact(DYNAMIC, r"\(16384 KiB\) map non-reusable hi-carveout@110000000$", 1),
        Fact(DYNAMIC, r"\(2048 KiB\) nomap non-reusable hi-fw@120000000$", 1),
    ],
    "kaslr": [
        Fact(ALL, DT_CMA_POOL, 1),
        Fact(ALL, r"failed to|not enough space|OVERLAP", 0),
        Fact(DYNAMIC, r"\(8192 KiB\) map non-reusable dsp-pool$", 1),
    ],
    "memreserve": [
        Fact(
            ("6.1",),
            r"OF: fdt: Reserved memory: failed to reserve memory for node 'spl-log@5f000000': "
            r"base 0x000000005f000000, size 1 MiB",
            1,
            "6.1 reserves /memreserve/ before the scan: the no-map over it is refused (-EBUSY)",
        ),
        Fact(
            DYNAMIC,
            r"failed to reserve",
            0,
            "6.12+ reserve /memreserve/ after the scan: the no-map goes through",
        ),
        Fact(DYNAMIC, r"\(1024 KiB\) nomap non-reusable spl-log@5f000000$", 1),
        Fact(ALL, r"crashkernel reserved: 0x[0-9a-f]+ - 0x[0-9a-f]+ \(64 MB\)", 1),
        Fact(ALL, r"cma: Reserved 16 MiB at 0x[0-9a-f]+", 1, "cma=16M on the command line"),
    ],
    "cma-cmdline": [
        Fact(
            ("6.1", "6.12"),
            r"^Reserved memory: bypass linux,cma node, using cmdline CMA params instead$",
            1,
            "rmem_cma_setup() gives the DT default pool up for cma=",
        ),
        Fact(("6.1", "6.12"), r"node linux,cma compatible matching fail", 1, "its memory freed"),
        Fact(
            ("7.x",),
            r'^Skipping dt linux,cma-default node in favor for "cma=" kernel param\.$',
            1,
            "__rmem_cma_verify_node() skips it in the early scan",
        ),
        Fact(ALL, DT_CMA_POOL, 0, "no CMA pool from the DT"),
        Fact(ALL, r"cma: Reserved 16 MiB at 0x[0-9a-f]+", 1, "the default area from cma=16M"),
    ],
    "mt8192": [
        Fact(
            ALL,
            r"initialized node (audio-dma-pool|scp@50000000), compatible id shared-dma-pool$",
            2,
            "kernel/dma/coherent.c takes both no-map shared-dma-pools",
        ),
        Fact(
            ALL,
            r"node wifi@c0000000|restricted",
            0,
            "no restricted-dma-pool handler (no CONFIG_DMA_RESTRICTED_POOL): neither "
            "initialised nor 'compatible matching fail'",
        ),
        Fact(DYNAMIC, r"\(65536 KiB\) map non-reusable wifi@c0000000$", 1, "tracked, reserved"),
    ],
}


def facts_for(scenario: str, series: str) -> list[Fact]:
    return [f for f in FACTS.get(scenario, []) if series in f.series]
