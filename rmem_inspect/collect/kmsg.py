# SPDX-License-Identifier: GPL-2.0-or-later
"""
kmsg
----

The kernel log lines that explain reserved-memory decisions, read from the
printk ring buffer with drgn's printk helpers. Attribution of a line to a region
happens in the checks (they know the region names); here we only select.
"""

from __future__ import annotations

import re

from drgn import FaultError, Program

from rmem_inspect.model import LogLine

__all__ = ["RELEVANT", "is_relevant", "read_kernel_log"]

#: Lines worth keeping: reserved-memory, CMA, coherent pools, DMA pools, memblock.
RELEVANT = re.compile(
    r"OF: reserved mem:|OF: fdt:|Reserved memory:|reserved mem|^cma:|\bcma: |"
    r"overlaps with|assigned reserved memory node|DMA memory pool|CMA memory pool|"
    r"^Memory: \d+K/|NUMA: |memblock"
)


def is_relevant(text: str) -> bool:
    return bool(RELEVANT.search(text))


def read_kernel_log(prog: Program, errors: list[str], keep_all: bool = False) -> list[LogLine]:
    """Relevant kernel log lines (all lines when ``keep_all``)."""
    try:
        from drgn.helpers.linux.printk import get_printk_records
    except ImportError as e:  # pragma: no cover - every supported drgn has it
        errors.append(f"drgn has no printk helpers: {e}")
        return []
    try:
        records = get_printk_records(prog)
    except (FaultError, LookupError, ValueError) as e:
        errors.append(f"kernel log unreadable: {e}")
        return []
    out = []
    for rec in records:
        text = rec.text.decode(errors="replace")
        # A record may hold continuation lines (OVERLAP DETECTED!\n<a> overlaps with <b>).
        for line in text.splitlines() or [""]:
            if keep_all or is_relevant(line):
                out.append(LogLine(text=line, timestamp=rec.timestamp / 1e9))
    return out
