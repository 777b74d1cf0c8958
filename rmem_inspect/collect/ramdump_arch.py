# SPDX-License-Identifier: GPL-2.0-or-later
"""
ramdump_arch
------------

Where drgn cannot start translating kernel addresses from raw physical memory, the
virtual ranges a kdump capture's program headers would map are given to drgn as
virtual memory segments read from the banks, computed the way kexec-tools writes
those headers (kexec/crashdump-elf.c; kexec/arch/riscv/crashdump-riscv.c,
kexec/arch/arm/crashdump-arm.c) from the offsets the kernel itself recorded:

- riscv64 (drgn has no riscv64 page-table walker): the linear map, ``va = pa -
  phys_ram_base + PAGE_OFFSET``, and the kernel mapping, ``va = pa +
  va_kernel_pa_offset``, all from VMCOREINFO (arch/riscv/kernel/vmcore_info.c);
  the fixmap and vmemmap then go through rmem_inspect's own walk
  (:mod:`rmem_inspect.collect.riscv_mmu`).
- 32-bit Arm (drgn walks the page tables but must first read ``swapper_pg_dir``,
  a linear-map address): the lowmem linear map, ``va = pa - PHYS_OFFSET +
  PAGE_OFFSET``. VMCOREINFO records neither offset on arm
  (arch/arm/kernel/vmcore_info.c): PAGE_OFFSET is ``swapper_pg_dir`` rounded down
  to 16 MiB (arch/arm/kernel/head.S puts it ``PG_DIR_SIZE`` below ``PAGE_OFFSET +
  TEXT_OFFSET``; arch/arm/Kconfig's PAGE_OFFSET choices are 16 MiB multiples), and
  PHYS_OFFSET the bank base at which ``init_uts_ns`` holds the release VMCOREINFO
  names.
"""

from __future__ import annotations

from collections.abc import Callable

import drgn

from rmem_inspect.collect.ramdump import Bank, RamSet

__all__ = ["install_virtual_segments"]

MASK64 = (1 << 64) - 1
#: The highest lowmem can reach on arm: vmalloc_min = VMALLOC_END (0xff800000,
#: arch/arm/include/asm/pgtable.h) - 240 MiB - VMALLOC_OFFSET (8 MiB)
#: (arch/arm/mm/mmu.c); above it lie vmalloc, the fixmap and the FDT window.
LOWMEM_TOP = 0xF0000000
#: struct new_utsname: sysname, nodename, then release (65 bytes each), at the start
#: of init_uts_ns.name; searched within the first page of init_uts_ns.
UTS_WINDOW = 512


def _reader(bank: Bank, delta: int) -> Callable[[int, int, int, bool], bytes]:
    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        return bank.read((address - delta) & MASK64, count)

    return read


def install_virtual_segments(
    prog: drgn.Program, ram: RamSet, arch: str, info: dict[str, str]
) -> str | None:
    """Add the segments for ``arch``; the sentence the report shows, or None.

    :raises LookupError: the offsets cannot be established (the message says why).
    """
    if arch == "riscv64":
        return _riscv64(prog, ram, info)
    if arch == "arm":
        return _arm(prog, ram, info)
    return None


def _riscv64(prog: drgn.Program, ram: RamSet, info: dict[str, str]) -> str:
    try:
        ram_base = int(info["NUMBER(phys_ram_base)"], 0)
        page_offset = int(info["NUMBER(PAGE_OFFSET)"], 16)
        kva_pa = int(info["NUMBER(va_kernel_pa_offset)"], 16)
    except (KeyError, ValueError) as e:
        raise LookupError(f"VMCOREINFO lacks the riscv64 offsets ({e})") from None
    for b in ram.banks:
        if b.end <= ram_base:
            continue
        start = max(b.paddr, ram_base)
        delta = (page_offset - ram_base) & MASK64
        prog.add_memory_segment((start + delta) & MASK64, b.end - start, _reader(b, delta))
        top = (b.end + kva_pa) & MASK64
        if top > (b.paddr + kva_pa) & MASK64:  # no wrap past 2**64
            prog.add_memory_segment((b.paddr + kva_pa) & MASK64, b.size, _reader(b, kva_pa))
    return (
        "riscv64 raw RAM: the linear map (PAGE_OFFSET - phys_ram_base) and the kernel mapping "
        "(va_kernel_pa_offset) from VMCOREINFO, as kexec-tools maps them"
    )


def _arm(prog: drgn.Program, ram: RamSet, info: dict[str, str]) -> str:
    try:
        pgd = int(info["SYMBOL(swapper_pg_dir)"], 16)
        uts = int(info["SYMBOL(init_uts_ns)"], 16)
        release = info["OSRELEASE"].encode()
    except (KeyError, ValueError) as e:
        raise LookupError(f"VMCOREINFO lacks swapper_pg_dir or init_uts_ns ({e})") from None
    page_offset = pgd & ~0xFFFFFF
    phys_offset = None
    for b in ram.banks:
        data = ram.read(uts - page_offset + b.paddr, UTS_WINDOW)
        if data is not None and b"\0" + release + b"\0" in data:
            phys_offset = b.paddr
            break
    if phys_offset is None:
        raise LookupError(
            f"init_uts_ns ({uts:#x}) holds {info['OSRELEASE']!r} at no bank base taken as "
            f"PHYS_OFFSET (PAGE_OFFSET {page_offset:#x})"
        )
    for b in ram.banks:
        if b.end <= phys_offset:
            continue
        start = max(b.paddr, phys_offset)
        va = start - phys_offset + page_offset
        size = min(b.end - start, LOWMEM_TOP - va)
        if size > 0:
            prog.add_memory_segment(va, size, _reader(b, page_offset - phys_offset))
    return (
        f"32-bit Arm raw RAM: the linear map PAGE_OFFSET {page_offset:#x} -> PHYS_OFFSET "
        f"{phys_offset:#x} (init_uts_ns found there), the rest through the page tables"
    )
