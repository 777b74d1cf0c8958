# SPDX-License-Identifier: GPL-2.0-or-later
"""
arm_fdt
-------

32-bit Arm maps the boot FDT at a fixed virtual window (arch/arm/include/asm/memory.h:
``FDT_FIXED_BASE`` 0xff800000, ``FDT_FIXED_SIZE`` two sections), and
``initial_boot_params`` and every unflattened property value point there.

kexec-tools gives each RAM range of a 32-bit Arm kdump the program-header address
``phys_to_virt(start)`` truncated to 32 bits and no highmem exception on arm
(kexec/crashdump-elf.c: lowmem_limit is 0 there), so with about 1 GiB of RAM or more
above PHYS_OFFSET the linear addresses of the top of RAM wrap onto that window, and
drgn, which prefers a dump's segments to its page tables, reads the FDT from the
wrong RAM. :func:`install_fdt_window` registers the window as a segment read through
drgn's own page-table walk (``follow_phys`` on ``init_mm``), which overrides the
aliased program header.
"""

from __future__ import annotations

from drgn import FaultError, Program

from rmem_inspect.kernel.arch import arch_of

__all__ = ["FDT_FIXED_BASE", "FDT_WINDOW", "install_fdt_window"]

FDT_FIXED_BASE = 0xFF800000
#: 2 * SECTION_SIZE with LPAE (2 MiB sections); covers the 2-level (1 MiB) case too.
FDT_WINDOW = 4 << 20
PAGE_SIZE = 4096


def install_fdt_window(prog: Program) -> bool:
    """Read the FDT window through the page tables; False when this is not a 32-bit
    Arm kernel with its FDT in that window."""
    facts = arch_of(prog)
    if facts is None or facts.name != "arm":
        return False
    try:
        from drgn.helpers.linux.mm import follow_phys

        fdt = prog["initial_boot_params"].value_()
        mm = prog["init_mm"].address_of_()
        follow_phys(mm, fdt)
    except (LookupError, FaultError, ValueError, NotImplementedError):
        return False
    if not FDT_FIXED_BASE <= fdt < FDT_FIXED_BASE + FDT_WINDOW:
        return False

    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        out = bytearray()
        while len(out) < count:
            va = address + len(out)
            n = min(count - len(out), PAGE_SIZE - va % PAGE_SIZE)
            out += prog.read(follow_phys(mm, va).value_(), n, True)
        return bytes(out)

    prog.add_memory_segment(FDT_FIXED_BASE, FDT_WINDOW, read)
    return True
