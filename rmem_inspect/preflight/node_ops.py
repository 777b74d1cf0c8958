# SPDX-License-Identifier: GPL-2.0-or-later
"""
node_ops
--------

The replay of 7.1 and later (Layout.NODE_OPS), from 7.3's
drivers/of/of_reserved_mem.c with the count rules of 7.2: the dynamic array's two
scans, with ``fdt_node`` dropped from struct reserved_mem, reserved_mem_ops'
node_validate/node_fixup/node_init hooks (CMA's __rmem_cma_verify_node() in the
early scan) and of_flat_dt_get_addr_size_prop() reading reg and alloc-ranges.
"""

from __future__ import annotations

from rmem_inspect.kernel.layouts import Layout
from rmem_inspect.preflight.dynamic_array import DynamicArrayReplay
from rmem_inspect.preflight.replay import register_replay

__all__ = ["NodeOpsReplay"]


@register_replay
class NodeOpsReplay(DynamicArrayReplay):
    """7.x: the 6.12 flow with the node hooks' rules."""

    LAYOUT = Layout.NODE_OPS
    #: 7.2: "unsupported node format" and no node both leave total_reserved_mem_cnt 0.
    COUNT_WITHOUT_NODE = 0
    RAGGED_REG_IS_ABSENT = True
    FIRST_REG_ONLY_EARLY = True
    SORT_BY_FDT_NODE = False
    CMA_GIVES_WAY_EARLY = True
    BAD_ALLOC_RANGES_SKIPS_NODE = False
    DMA_POOL_SIZE_KIB = True
    ARRAY_FULL_NAMES_NODE = True
    COHERENT_REFUSAL_FAILS = False
