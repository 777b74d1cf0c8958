# SPDX-License-Identifier: GPL-2.0-or-later
"""
The kernel's sort
-----------------

lib/sort.c's sort() as 6.1 has it, for the replays that sort the reserved_mem
array: the order it leaves equal entries in decides which one memblock serves first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["kernel_sort"]

T = TypeVar("T")


def kernel_sort(items: list[T], cmp: Callable[[T, T], int]) -> None:
    """
    Sort ``items`` in place exactly like lib/sort.c's sort() of 6.1: a bottom-up
    heapsort, not stable. The order of entries that compare equal (6.1's dynamic
    entries, all base 0 and size 0) decides which one memblock serves first.
    """
    n = len(items)
    a = n // 2
    if not a:
        return
    while True:
        if a:
            a -= 1
        else:
            n -= 1
            if n == 0:
                break
            items[0], items[n] = items[n], items[0]
        b = a
        while True:
            c = 2 * b + 1
            d = c + 1
            if d >= n:
                break
            b = c if cmp(items[c], items[d]) >= 0 else d
        if d == n:
            b = c
        while b != a and cmp(items[a], items[b]) >= 0:
            b = (b - 1) // 2
        c = b
        while b != a:
            b = (b - 1) // 2
            items[b], items[c] = items[c], items[b]
