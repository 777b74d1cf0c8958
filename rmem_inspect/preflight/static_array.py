# SPDX-License-Identifier: GPL-2.0-or-later
"""
static_array
------------

The replay of kernels up to 6.11 (Layout.STATIC_ARRAY), from 6.1's
drivers/of/fdt.c and drivers/of/of_reserved_mem.c: ``reserved_mem`` is a fixed
array of MAX_RESERVED_REGIONS entries filled in devicetree order.
"""

from __future__ import annotations

from rmem_inspect.kernel.layouts import Layout
from rmem_inspect.kernel.messages import FDT_PREFIX
from rmem_inspect.preflight.replay import Entry, Replay, cell_pairs, register_replay

__all__ = ["StaticArrayReplay"]


@register_replay
class StaticArrayReplay(Replay):
    """6.1's scan: reserve and save in one pass, allocate the dynamic regions after."""

    LAYOUT = Layout.STATIC_ARRAY
    RESERVE_FAILED_PREFIX = FDT_PREFIX
    ALLOC_BY_NEIGHBOURS = False
    LOGS_REGION_LINE = False

    def run(self) -> None:
        """fdt_scan_reserved_mem() and fdt_init_reserved_mem() (drivers/of/fdt.c,
        drivers/of/of_reserved_mem.c, 6.1): /memreserve/ first, each reg reserved and
        its first entry saved in devicetree order, then the dynamic ones allocated."""
        for b, s in self.mem_reserve:
            self.memblock.reserve(b, s)
        if self.rmem is None:
            return
        if not self.check_root():
            self.pr("Reserved memory: unsupported node format, ignoring", FDT_PREFIX)
            for n in self.children:
                if n.available:
                    self.place(n, "dropped", "/reserved-memory has unsupported cells/ranges")
            return
        for node in self.children:
            if not node.available:
                continue
            reg = node.props.get("reg")
            if reg is not None:
                if len(reg) and len(reg) % self.t_len:
                    self.pr(
                        f"Reserved memory: invalid reg property in '{node.name}', skipping node.",
                        FDT_PREFIX,
                    )
                    self.place(node, "dropped", f"invalid reg property (length {len(reg)})")
                    continue
                pairs = cell_pairs(reg, self.ac, self.sc)
                for i, (b, s) in enumerate(pairs):
                    self.reserve_one(node, b, s)
                    if i == 0:
                        e = self.save(node, b, s)
                        if e is not None:
                            self.place(node, "tracked", "", b, s)
                if not pairs:
                    self.place(node, "dropped", "reg is empty")
            elif node.has("size"):
                if self.save(node, 0, 0) is not None:
                    self.place(node, "unallocated", "not allocated yet")

        def cmp(a: Entry, b: Entry) -> int:
            return (a.base > b.base) - (a.base < b.base) or (a.size > b.size) - (a.size < b.size)

        self.check_overlap(cmp)
        for e in self.entries:
            if e.size == 0:
                base, size, why = self.alloc_size(e.node)
                if not base:
                    self.place(e.node, "unallocated", why or "size 0")
                    continue
                e.base, e.size = base, size
                self.place(e.node, "tracked", "", base, size)
            self.init_node(e)
