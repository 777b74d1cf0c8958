# SPDX-License-Identifier: GPL-2.0-or-later
"""
dynamic_array
-------------

The replay of 6.12 to 7.0 (Layout.DYNAMIC_ARRAY), from 6.12's
drivers/of/of_reserved_mem.c: the early scan counts the regions
(``total_reserved_mem_cnt``) and allocates the dynamic ones into the init-time
``reserved_mem_array``; after paging, alloc_reserved_mem_array() sizes the real
array and fdt_scan_reserved_mem_reg_nodes() saves the static regions (commit
00c9a452a235 "of: reserved_mem: Add code to dynamically allocate reserved_mem
array").
"""

from __future__ import annotations

from rmem_inspect.kernel.constants import MAX_RESERVED_REGIONS
from rmem_inspect.kernel.layouts import Layout
from rmem_inspect.preflight.replay import Entry, Node, Replay, cell_pairs, register_replay

__all__ = ["DynamicArrayReplay"]


@register_replay
class DynamicArrayReplay(Replay):
    """6.12's two scans: reserve and count early, save the static regions late."""

    LAYOUT = Layout.DYNAMIC_ARRAY
    #: total_reserved_mem_cnt when there is no valid /reserved-memory node: 6.12's
    #: fdt_scan_reserved_mem() returns -ENODEV and leaves it at MAX_RESERVED_REGIONS.
    COUNT_WITHOUT_NODE = MAX_RESERVED_REGIONS
    #: A reg of no whole <base size> pair reads as absent (-ENOENT, 7.1's
    #: of_flat_dt_get_addr_size_prop()); before, it is invalid and logged (-EINVAL).
    RAGGED_REG_IS_ABSENT = False
    #: 7.1+ reserves only a node's first reg entry in the early scan and says so;
    #: 6.12 reserves them all and the late scan logs that it ignores the others.
    FIRST_REG_ONLY_EARLY = False
    #: __rmem_cmp() breaks ties by fdt_node up to 7.0 (7.1 dropped the member).
    SORT_BY_FDT_NODE = True

    def reg_entries(self, node: Node) -> list[tuple[int, int]] | None:
        """The node's reg as this layout's early scan sees it; None: absent (-ENOENT)."""
        reg = node.props.get("reg")
        if reg is None:
            return None
        if self.RAGGED_REG_IS_ABSENT and (not reg or len(reg) % self.t_len):
            return None
        return cell_pairs(reg, self.ac, self.sc)

    def run(self) -> None:
        """fdt_scan_reserved_mem() (the early scan: reserve each reg, count, collect the
        dynamic nodes), their allocation, /memreserve/, then after paging
        fdt_scan_reserved_mem_reg_nodes() saves the static ones (6.12+)."""
        # fdt_reserve_elfcorehdr() comes first (no elfcorehdr here); /memreserve/ after the scan.
        if self.rmem is None:
            self.memreserve()
            # fdt_scan_reserved_mem() sets total_reserved_mem_cnt to 0 here from 7.x on;
            # 6.12 returns -ENODEV and leaves it at MAX_RESERVED_REGIONS
            self.capacity = self.COUNT_WITHOUT_NODE
            self.pr("Reserved memory: No reserved-memory node in the DT")
            return
        if not self.check_root():
            self.pr("Reserved memory: unsupported node format, ignoring")
            for n in self.children:
                if n.available:
                    self.place(n, "dropped", "/reserved-memory has unsupported cells/ranges")
            self.memreserve()
            self.capacity = self.COUNT_WITHOUT_NODE
            return
        count = 0
        dynamic: list[Node] = []
        for node in self.children:
            if not node.available:
                continue
            reg = node.props.get("reg")
            pairs = self.reg_entries(node)
            if pairs is None:
                err = "ENOENT"
            elif self.CMA_GIVES_WAY_EARLY and self.cma_gives_way(node):
                self.place(node, "dropped", "skipped in favour of cma= on the command line")
                err = "EBUSY"
            elif not self.RAGGED_REG_IS_ABSENT and len(reg or b"") % self.t_len:
                self.pr(f"Reserved memory: invalid reg property in '{node.name}', skipping node.")
                self.place(node, "dropped", f"invalid reg property (length {len(reg or b'')})")
                err = "EINVAL"
            else:
                if self.FIRST_REG_ONLY_EARLY and len(pairs) > 1:
                    self.pr(
                        f"Reserved memory: node '{node.name}' has {len(pairs)} <base size> "
                        "entries, only the first is used"
                    )
                for b, s in pairs[:1] if self.FIRST_REG_ONLY_EARLY else pairs:
                    self.reserve_one(node, b, s)
                err = ""
                count += 1
            if err != "ENOENT" or not node.has("size"):
                if err == "ENOENT":
                    why = (
                        f"invalid reg property (length {len(reg)}) and no size"
                        if reg is not None
                        else "neither reg nor size"
                    )
                    self.place(node, "dropped", why)
                continue
            if len(dynamic) == MAX_RESERVED_REGIONS:
                self.pr(f"too many defined dynamic regions, skip '{node.name}'")
                self.place(
                    node,
                    "dropped",
                    f"more than {MAX_RESERVED_REGIONS} dynamic regions: skipped by the early "
                    "scan, never allocated",
                )
                continue
            dynamic.append(node)
        for node in dynamic:
            base, size, why = self.alloc_size(node)
            if not base:
                self.place(node, "dropped", why)
                continue
            e = self.save(node, base, size)
            if e is not None:
                self.init_node(e)
                self.place(node, "tracked", "", base, size)
            count += 1
        self.capacity = count
        self.memreserve()
        # After paging: fdt_scan_reserved_mem_reg_nodes() / fdt_scan_reserved_mem_late().
        for node in self.children:
            reg = node.props.get("reg")
            if reg is None or not node.available:
                continue
            pairs = self.reg_entries(node)
            if pairs is None or (not self.RAGGED_REG_IS_ABSENT and len(reg) % self.t_len):
                continue
            if self.CMA_GIVES_WAY_EARLY and self.cma_gives_way(node):
                continue
            if not pairs:
                # 6.12 reads past an empty reg: what it saves is undefined.
                self.place(node, "dropped", "reg is empty")
                continue
            if not self.FIRST_REG_ONLY_EARLY and len(pairs) > 1:
                self.pr(
                    f"fdt_scan_reserved_mem_reg_nodes() ignores {len(pairs) - 1} regions in "
                    f"node '{node.name}'"
                )
            b, s = pairs[0]
            if not s:
                self.place(node, "dropped", "reg size is 0")
                continue
            e = self.save(node, b, s)
            if e is not None:
                self.init_node(e)
                self.place(node, "tracked", "", b, s)

        def cmp(a: Entry, b: Entry) -> int:
            return (
                (a.base > b.base) - (a.base < b.base)
                or (a.size > b.size) - (a.size < b.size)
                or (
                    (a.node.fdt_node > b.node.fdt_node) - (a.node.fdt_node < b.node.fdt_node)
                    if self.SORT_BY_FDT_NODE
                    else 0
                )
            )

        self.check_overlap(cmp)
