# SPDX-License-Identifier: GPL-2.0-or-later
"""
riscv_mmu
---------

drgn has no riscv64 address translation. A kdump capture's program headers map
the kernel image and the linear map (kexec-tools writes both), which covers almost
everything this tool reads; what they do not cover is the fixmap, where riscv
keeps the boot FDT (arch/riscv/mm/init.c: ``dtb_early_va = fix_fdt_va + ...``;
``initial_boot_params`` and every unflattened property value point there), and the
vmemmap, where the ``struct page`` array lives.

:func:`install_translation` probes drgn's own translation first and, only when
drgn raises NotImplementedError, registers the fixmap as a drgn memory segment
read through this module's walk of ``swapper_pg_dir`` (Sv39/Sv48/Sv57: 9 bits a
level over 4 KiB pages, the mode given by VMCOREINFO's VA_BITS; PTE layout from
arch/riscv/include/asm/pgtable-bits.h and pgtable-64.h).
"""

from __future__ import annotations

from collections.abc import Callable

from drgn import FaultError, Program

from rmem_inspect.kernel.arch import arch_of, kimage_to_phys

__all__ = ["fixmap_range", "install_translation", "linear_walker", "walk"]

PAGE_SHIFT = 12
#: _PAGE_PRESENT; _PAGE_READ | _PAGE_WRITE | _PAGE_EXEC (_PAGE_LEAF); _PAGE_PFN_SHIFT;
#: _PAGE_PFN_MASK = GENMASK(53, 10).
PTE_V = 1 << 0
PTE_LEAF = 0b1110
PFN_SHIFT = 10
PFN_MASK = ((1 << 54) - 1) & ~((1 << 10) - 1)
#: arch/riscv/include/asm/pgtable.h (64-bit): PCI_IO_SIZE, PMD_SIZE + FIX_FDT_SIZE.
PCI_IO_SIZE = 16 << 20
FIXADDR_SIZE = (2 << 20) + (2 << 20) + (2 << 20)


def _vmcoreinfo(prog: Program) -> dict[str, str]:
    text = prog["VMCOREINFO"].string_().decode(errors="replace")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def fixmap_range(prog: Program) -> tuple[int, int]:
    """[FIXADDR_START, FIXADDR_TOP): FIXADDR_TOP = PCI_IO_START = VMEMMAP_START - 16 MiB."""
    top = int(_vmcoreinfo(prog)["NUMBER(VMEMMAP_START)"], 16) - PCI_IO_SIZE
    return top - FIXADDR_SIZE, top


def walk(prog: Program, root: int, levels: int, va: int) -> int:
    """Physical address of ``va`` in the table at physical ``root``.

    :raises FaultError: not mapped.
    """
    table = root
    for level in range(levels - 1, -1, -1):
        shift = PAGE_SHIFT + 9 * level
        index = (va >> shift) & 0x1FF
        pte = prog.read_u64(table + 8 * index, True)
        if not pte & PTE_V:
            raise FaultError("riscv64 page table: not mapped", va)
        phys = ((pte & PFN_MASK) >> PFN_SHIFT) << PAGE_SHIFT
        if pte & PTE_LEAF:  # a leaf at any level maps 1 << shift bytes
            return phys + (va & ((1 << shift) - 1))
        table = phys
    raise FaultError("riscv64 page table: no leaf", va)


def install_translation(prog: Program) -> str | None:
    """Read the fixmap and vmemmap through this module's page-table walk when drgn cannot
    translate; returns the sentence the report header shows, or None."""
    facts = arch_of(prog)
    if facts is None or facts.name != "riscv64":
        return None
    try:
        from drgn.helpers.linux.mm import follow_phys

        follow_phys(prog["init_mm"].address_of_(), prog["init_mm"].address_of_().value_())
        return None  # this drgn translates riscv64 itself
    except NotImplementedError:
        pass
    except (FaultError, LookupError, ValueError):
        return None
    try:
        info = _vmcoreinfo(prog)
        levels = (int(info["NUMBER(VA_BITS)"]) - PAGE_SHIFT) // 9
        root = kimage_to_phys(prog, prog.symbol("swapper_pg_dir").address)
        start, end = fixmap_range(prog)
        vmemmap = (int(info["NUMBER(VMEMMAP_START)"], 16), int(info["NUMBER(VMEMMAP_END)"], 16))
    except (LookupError, ValueError, FaultError):
        return None

    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        out = bytearray()
        while len(out) < count:
            va = address + len(out)
            n = min(count - len(out), (1 << PAGE_SHIFT) - (va & ((1 << PAGE_SHIFT) - 1)))
            out += prog.read(walk(prog, root, levels, va), n, True)
        return bytes(out)

    prog.add_memory_segment(start, end - start, read)
    # struct page lives in the vmemmap (the init-array evidence reads it)
    prog.add_memory_segment(vmemmap[0], vmemmap[1] - vmemmap[0], read)
    return (
        f"drgn has no riscv64 address translation: the fixmap ({start:#x}..{end:#x}, the "
        f"boot FDT) and the vmemmap are read through rmem_inspect's "
        f"Sv{levels * 9 + PAGE_SHIFT} walk of swapper_pg_dir; the rest through the dump's "
        "program headers"
    )


def linear_walker(prog: Program) -> tuple[int, Callable[[int], int]] | None:
    """For the no-map check where drgn cannot walk riscv64 page tables: the linear-map
    offset (``kernel_map.va_pa_offset``: linear_mapping_pa_to_va() adds it) and a
    function translating a virtual address through ``swapper_pg_dir`` (raises
    FaultError where nothing is mapped). None on other architectures."""
    facts = arch_of(prog)
    if facts is None or facts.name != "riscv64":
        return None
    try:
        levels = (int(_vmcoreinfo(prog)["NUMBER(VA_BITS)"]) - PAGE_SHIFT) // 9
        root = kimage_to_phys(prog, prog.symbol("swapper_pg_dir").address)
        offset = prog["kernel_map"].va_pa_offset.value_()
    except (LookupError, ValueError, FaultError, AttributeError):
        return None
    return offset, lambda va: walk(prog, root, levels, va)
