# SPDX-License-Identifier: GPL-2.0-or-later
"""
Architecture facts
------------------

Per-architecture facts in one place: the ELF machine and class of dumps and
vmlinux files, whether memblock survives boot, how a kernel-image address becomes
physical, and which page-table walk stands behind the no-map check.

Kernel differences are never decided by version strings: :func:`kimage_to_phys`
probes the variables each architecture records (``kimage_voffset`` on arm64,
``kernel_map`` on riscv, ``__pv_offset`` on 32-bit Arm) and uses the first that
exists. The records cite the kernel source they encode.

The alignments preflight replays (``SMP_CACHE_BYTES``, ``PAGE_SIZE``,
``CMA_MIN_ALIGNMENT_BYTES``) are recorded for arm64 only; preflight replays an
arm64 kernel, and the other records leave them None (not known here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drgn import Program

__all__ = [
    "ARCHES",
    "ArchFacts",
    "arch_for_machine",
    "arch_of",
    "kimage_to_phys",
    "linear_to_phys",
]


@dataclass(frozen=True)
class ArchFacts:
    """What this tool needs to know about one architecture."""

    #: The kernel's name for it (``ARCH=``).
    name: str
    #: ELF ``e_machine`` of its vmlinux and crash dumps.
    elf_machine: int
    #: ELF classes its dumps come in: 64-bit kernels write ELF64; a 32-bit Arm
    #: kernel writes ELF32 (/proc/vmcore, fs/proc/vmcore.c with Elf32 headers from
    #: kexec-tools) and QEMU switches to ELF64 when guest RAM lies above 4 GiB
    #: (target/arm/arch_dump.c, cpu_get_dump_info()).
    elf_classes: tuple[int, ...]
    #: Pointer width in bits.
    bits: int
    #: When memblock's arrays survive boot (``ARCH_KEEP_MEMBLOCK`` in arch/*/Kconfig);
    #: collect/memblock.py probes the kernel itself, this is the sentence reported.
    memblock_rule: str
    #: How a kernel-image (symbol) address becomes physical.
    kimage_rule: str
    #: How a linear-map address becomes physical.
    linear_rule: str
    #: Where the no-map check's page-table walk comes from.
    page_tables: str
    #: Does drgn translate this architecture's virtual addresses? "yes", or when not,
    #: what this tool does instead.
    drgn_translation: str
    #: ``SMP_CACHE_BYTES`` (``L1_CACHE_BYTES``): the default alignment of
    #: early_init_dt_alloc_reserved_memory_arch(); None: not recorded.
    smp_cache_bytes: int | None = None
    #: ``PAGE_SIZE`` of the kernels replayed (memblock_find_in_range_node() never
    #: returns the first page; early_mem() rounds ``mem=`` down to it).
    page_size: int | None = None
    #: ``CMA_MIN_ALIGNMENT_BYTES``: pageblock_nr_pages pages.
    cma_min_alignment_bytes: int | None = None


ARCHES: dict[str, ArchFacts] = {
    a.name: a
    for a in (
        ArchFacts(
            name="arm64",
            elf_machine=183,
            elf_classes=(2,),
            bits=64,
            memblock_rule="kept after boot: arch/arm64/Kconfig selects ARCH_KEEP_MEMBLOCK",
            kimage_rule="__kimg_to_phys(): addr - kimage_voffset (arch/arm64/include/asm/memory.h)",
            linear_rule="__lm_to_phys(): (addr - PAGE_OFFSET) + PHYS_OFFSET "
            "(arch/arm64/include/asm/memory.h)",
            page_tables="drgn's arm64 page-table walker (follow_phys on init_mm)",
            drgn_translation="yes",
            # arch/arm64/include/asm/cache.h: L1_CACHE_SHIFT 6
            smp_cache_bytes=64,
            page_size=4096,
            # 4 KiB pages: pageblock_order = HUGETLB_PAGE_ORDER (9), 512 pages
            cma_min_alignment_bytes=2 << 20,
        ),
        ArchFacts(
            name="arm",
            elf_machine=40,
            elf_classes=(1, 2),
            bits=32,
            memblock_rule="kept after boot on 6.12+: arch/arm/Kconfig selects ARCH_KEEP_MEMBLOCK "
            "(older kernels only with HAVE_ARCH_PFN_VALID or KEXEC)",
            kimage_rule="the kernel image lies in the linear map: __virt_to_phys_nodebug(), "
            "addr + __pv_offset with ARM_PATCH_PHYS_VIRT (arch/arm/include/asm/memory.h)",
            linear_rule="addr + __pv_offset (PHYS_OFFSET - PAGE_OFFSET); highmem has no "
            "linear-map address at all",
            page_tables="drgn's 32-bit Arm page-table walker, short and LPAE descriptors "
            "(drgn 0.0.28+)",
            drgn_translation="yes (drgn 0.0.28+)",
        ),
        ArchFacts(
            name="riscv64",
            elf_machine=243,
            elf_classes=(2,),
            bits=64,
            memblock_rule="freed after boot unless ACPI: arch/riscv/Kconfig selects "
            "ARCH_KEEP_MEMBLOCK if ACPI",
            kimage_rule="kernel_mapping_va_to_pa(): addr - kernel_map.va_kernel_pa_offset "
            "(arch/riscv/include/asm/page.h)",
            linear_rule="linear_mapping_va_to_pa(): addr - kernel_map.va_pa_offset "
            "(arch/riscv/include/asm/page.h)",
            page_tables="none in drgn: the no-map check is skipped",
            drgn_translation="no: drgn has no riscv64 page-table walker; only addresses a "
            "dump's program headers map can be read",
        ),
    )
}

_BY_MACHINE = {a.elf_machine: a for a in ARCHES.values()}
#: drgn's ``Architecture`` names -> the kernel's.
_DRGN_NAMES = {"AARCH64": "arm64", "ARM": "arm", "RISCV64": "riscv64"}


def arch_for_machine(machine: int) -> ArchFacts | None:
    """The record for an ELF ``e_machine``, or None for an architecture not covered."""
    return _BY_MACHINE.get(machine)


def arch_of(prog: Program) -> ArchFacts | None:
    """The record for a program's platform, or None."""
    platform = prog.platform
    if platform is None:
        return None
    return ARCHES.get(_DRGN_NAMES.get(platform.arch.name, ""))


def kimage_to_phys(prog: Program, addr: int) -> int:
    """Physical address of a kernel-image (symbol) address, the way the kernel's
    ``__pa_symbol()`` computes it; probes what each architecture records.

    :raises LookupError: no known offset variable (architecture not covered).
    :raises drgn.FaultError: the variable is there but cannot be read.
    """
    mask = (1 << 64) - 1
    try:
        # arm64: __kimg_to_phys(addr) = addr - kimage_voffset
        return (addr - prog["kimage_voffset"].value_()) & mask
    except KeyError:
        pass
    try:
        # riscv: kernel_mapping_va_to_pa(y) = y - kernel_map.va_kernel_pa_offset
        kmap = prog["kernel_map"]
        return (addr - kmap.va_kernel_pa_offset.value_()) & mask
    except (KeyError, AttributeError):
        pass
    # 32-bit Arm: the image lies in the linear map (__pa_symbol() is __virt_to_phys()).
    return linear_to_phys(prog, addr)


def linear_to_phys(prog: Program, addr: int) -> int:
    """Physical address of a linear-map address from the offsets the kernel records
    (used where drgn has no translation for the architecture).

    :raises LookupError: no known offset variable.
    """
    mask = (1 << 64) - 1
    try:
        # riscv: linear_mapping_va_to_pa(x) = x - kernel_map.va_pa_offset
        return (addr - prog["kernel_map"].va_pa_offset.value_()) & mask
    except (KeyError, AttributeError):
        pass
    try:
        # 32-bit Arm, ARM_PATCH_PHYS_VIRT: __virt_to_phys_nodebug() adds __pv_offset
        # (u64 PHYS_OFFSET - PAGE_OFFSET, defined in arch/arm/kernel/head.S, so a
        # symbol without DWARF) to the 32-bit virtual address.
        pv_offset = prog.read_u64(prog.symbol("__pv_offset").address)
        return (addr + pv_offset) & mask
    except LookupError:
        pass
    raise LookupError("no linear-map offset variable found (kernel_map, __pv_offset)")
