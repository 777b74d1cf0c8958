# SPDX-License-Identifier: GPL-2.0-or-later
"""
linear_map
----------

Is a no-map region present in the kernel's linear map? Walk the kernel page
tables (``init_mm``) for the linear-map address of every page of the region
with drgn's ``follow_phys()`` (riscv64, which drgn cannot walk: with
collect/riscv_mmu.py's walk of ``swapper_pg_dir``): a no-map region must fault on every page (a page
that translates to another physical page is not the region's own mapping).
"""

from __future__ import annotations

from collections.abc import Callable

from drgn import FaultError, Program

from rmem_inspect.collect.riscv_mmu import linear_walker
from rmem_inspect.model import LinearMapCheck

__all__ = ["MAX_PAGES_CHECKED", "check_linear_map"]

#: Pages walked per region at most; larger regions are sampled evenly.
MAX_PAGES_CHECKED = 4096


def check_linear_map(prog: Program, name: str, base: int, size: int) -> LinearMapCheck:
    """Walk the page tables over [base, base + size) in the linear map."""
    from drgn.helpers.linux.mm import follow_phys, phys_to_virt

    page_size = prog["PAGE_SIZE"].value_()
    own: Callable[[int], int] | None = None
    try:
        init_mm = prog["init_mm"].address_of_()
        virt = phys_to_virt(prog, base).value_()
    except NotImplementedError as e:
        # drgn cannot translate here (riscv64): walk swapper_pg_dir ourselves
        walker = linear_walker(prog)
        if walker is None:
            return LinearMapCheck(name, base, size, 0, 0, 0, error=str(e))
        virt, own = (base + walker[0]) & ((1 << 64) - 1), walker[1]
    except (FaultError, LookupError, ValueError) as e:
        return LinearMapCheck(name, base, size, 0, 0, 0, error=str(e))
    pages = max(1, size // page_size)
    step = max(1, pages // MAX_PAGES_CHECKED)
    checked = mapped = 0
    first: int | None = None
    for i in range(0, pages, step):
        addr = virt + i * page_size
        checked += 1
        try:
            phys = own(addr) if own is not None else follow_phys(init_mm, addr).value_()
        except FaultError:
            continue
        except (ValueError, NotImplementedError) as e:
            return LinearMapCheck(name, base, size, virt, checked, mapped, first, error=str(e))
        if phys != base + i * page_size:
            # the address translates, but not to this page: not the linear map of the
            # region (a range outside RAM has no linear-map address of its own)
            continue
        mapped += 1
        if first is None:
            first = phys
    return LinearMapCheck(name, base, size, virt, checked, mapped, first)
