# SPDX-License-Identifier: GPL-2.0-or-later
"""rmem_inspect.preflight.memblock and .sort: the pieces the replays share."""

from __future__ import annotations

import pytest

import rmem_inspect.preflight as preflight
from rmem_inspect.preflight.memblock import ANYWHERE, Memblock, memblock_state
from rmem_inspect.preflight.sort import kernel_sort

pytestmark = pytest.mark.unit


def test_public_names_stay_importable_from_the_package() -> None:
    assert preflight.kernel_sort is kernel_sort
    for name in preflight.__all__:
        assert hasattr(preflight, name), name


def test_top_down_then_bottom_up_allocation() -> None:
    mb = Memblock([(0x40000000, 0x40000000)])
    top = mb.phys_alloc_range(1 << 20, 1 << 20, 0, ANYWHERE)
    assert top == 0x7FF00000
    mb.bottom_up = True
    assert mb.phys_alloc_range(1 << 20, 1 << 20, 0, ANYWHERE) == 0x40000000
    assert mb.is_region_reserved(0x7FF00000, 1 << 20)


def test_nomap_is_split_out_of_memory() -> None:
    mb = Memblock([(0x40000000, 0x10000000)])
    mb.mark_nomap(0x48000000, 0x100000)
    state = memblock_state(mb)
    assert [(r.base, r.size, r.flags) for r in state.memory] == [
        (0x40000000, 0x8000000, 0),
        (0x48000000, 0x100000, 4),
        (0x48100000, 0x7F00000, 0),
    ]


def test_kernel_sort_sorts() -> None:
    items = [5, 3, 9, 1, 1, 7]
    kernel_sort(items, lambda a, b: (a > b) - (a < b))
    assert items == sorted(items)
