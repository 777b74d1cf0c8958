# SPDX-License-Identifier: GPL-2.0-or-later
"""
Kernel image in raw RAM: riscv64 and 32-bit Arm
-----------------------------------------------

The image search of :mod:`rmem_inspect.kernel.image` (``linux_banner`` plus the
build-id note) for the other architectures, each reading its own variables:

- riscv64: ``kernel_map`` (``struct kernel_mapping``, arch/riscv/include/asm/page.h:
  page_offset, virt_addr, virt_offset, phys_addr, size, va_pa_offset,
  va_kernel_pa_offset, seven unsigned longs without CONFIG_XIP_KERNEL), whose
  ``phys_addr`` must be the image's place; ``phys_ram_base`` (arch/riscv/mm/init.c);
  ``satp_mode`` (SATP_MODE_39/48/57 = 8/9/10 << 60, arch/riscv/include/asm/csr.h)
  for VA_BITS; VMALLOC and VMEMMAP bounds as arch/riscv/include/asm/pgtable.h
  computes them (KERN_VIRT_SIZE = PTRS_PER_PGD / 2 * PGDIR_SIZE / 2, VMALLOC_START =
  PAGE_OFFSET - KERN_VIRT_SIZE / 2, VMEMMAP_SIZE = 1 << (VA_BITS - PAGE_SHIFT - 1 +
  STRUCT_PAGE_MAX_SHIFT), a 64-byte struct page).
- 32-bit Arm: ``__pv_offset`` (PHYS_OFFSET - PAGE_OFFSET, arch/arm/kernel/head.S, with
  ARM_PATCH_PHYS_VIRT), PAGE_OFFSET ``_text`` rounded down to 16 MiB (``_text`` is
  PAGE_OFFSET + TEXT_OFFSET, arch/arm/kernel/vmlinux.lds.S), LPAE when
  ``swapper_pg_dir`` lies ``PG_DIR_SIZE`` 0x5000 below ``_text`` (0x4000 without,
  arch/arm/kernel/head.S); no KASLR on arm.

The VMCOREINFO written mirrors the lines of arch/riscv/kernel/vmcore_info.c and
arch/arm/kernel/vmcore_info.c a debugger needs.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from rmem_inspect.kernel.image import (
    MASK64,
    ImageFit,
    ImageNotFound,
    PhysMemory,
    Vmlinux,
    fit_arm64,
    read_u64,
    search_image,
)

__all__ = ["fit_arm", "fit_image", "fit_riscv64"]

SATP_MODES = {8: 39, 9: 48, 10: 57}
PAGE_SHIFT = 12
STRUCT_PAGE_MAX_SHIFT = 6
#: arch/riscv/include/asm/sparsemem.h (64-bit) and SECTION_SIZE_BITS there.
RISCV_MAX_PHYSMEM_BITS = 56
RISCV_SECTION_SIZE_BITS = 27


def fit_image(
    arch: str,
    mem: PhysMemory,
    vm: Vmlinux,
    *,
    kaslr: int | None = None,
    vabits: int | None = None,
    ranges: Iterable[tuple[int, int]] = (),
) -> ImageFit:
    """The image search for ``arch`` (arm64, riscv64 or arm)."""
    if arch == "arm64":
        return fit_arm64(mem, vm, kaslr=kaslr, vabits=vabits, ranges=ranges)
    if arch == "riscv64":
        return fit_riscv64(mem, vm, kaslr=kaslr, ranges=ranges)
    if arch == "arm":
        return fit_arm(mem, vm, ranges=ranges)
    raise ImageNotFound(f"finding a {arch} kernel image is not implemented")


def _release(banner: bytes) -> str:
    return banner[len(b"Linux version ") :].split(b" ", 1)[0].decode(errors="replace")


def fit_riscv64(
    mem: PhysMemory,
    vm: Vmlinux,
    *,
    kaslr: int | None = None,
    ranges: Iterable[tuple[int, int]] = (),
) -> ImageFit:
    syms = vm.symbols
    # the image starts at _start, KERNEL_LINK_ADDR (arch/riscv/kernel/vmlinux.lds.S)
    need = ("_start", "linux_banner", "kernel_map", "phys_ram_base", "satp_mode",
            "swapper_pg_dir", "init_uts_ns")  # fmt: skip

    def fit(text_phys: int, banner: bytes) -> ImageFit | str:
        text = syms["_start"]

        def at(name: str) -> int:
            return text_phys + syms[name] - text

        raw = mem.read(at("kernel_map"), 7 * 8)
        ram_base = read_u64(mem, at("phys_ram_base"))
        satp = read_u64(mem, at("satp_mode"))
        if raw is None or ram_base is None or satp is None:
            return "kernel_map, phys_ram_base or satp_mode not in the banks"
        page_offset, virt, _voff, phys, _size, _va_pa, kva_pa = struct.unpack("<7Q", raw)
        va_bits = SATP_MODES.get(satp >> 60)
        if va_bits is None:
            return f"satp_mode {satp:#x} is no Sv39/48/57 mode"
        if phys != text_phys and kaslr is None:
            return f"kernel_map.phys_addr {phys:#x} is not where the image lies"
        # kernel_map.virt_addr is KERNEL_LINK_ADDR (the link address of _start) + KASLR
        link = text
        off = (virt - link) & MASK64 if kaslr is None else kaslr
        if kaslr is not None:
            kva_pa = (text + kaslr - text_phys) & MASK64
        pgdir_shift = {39: 30, 48: 39, 57: 48}[va_bits]
        kern_virt_size = (512 // 2 << pgdir_shift) // 2
        vmalloc_start = (page_offset - (kern_virt_size >> 1)) & MASK64
        vmemmap_start = vmalloc_start - (1 << (va_bits - PAGE_SHIFT - 1 + STRUCT_PAGE_MAX_SHIFT))
        # NR_SECTION_ROOTS for struct mem_section of at most 64 bytes: an upper bound
        roots = (1 << (RISCV_MAX_PHYSMEM_BITS - RISCV_SECTION_SIZE_BITS)) // (4096 // 64)
        lines = [
            f"OSRELEASE={_release(banner)}",
            *([f"BUILD-ID={vm.build_id}"] if vm.build_id else []),
            "PAGESIZE=4096",
            f"SYMBOL(init_uts_ns)={(syms['init_uts_ns'] + off) & MASK64:x}",
            f"SYMBOL(swapper_pg_dir)={(syms['swapper_pg_dir'] + off) & MASK64:x}",
            f"LENGTH(mem_section)={roots}",
            f"NUMBER(SECTION_SIZE_BITS)={RISCV_SECTION_SIZE_BITS}",
            f"NUMBER(MAX_PHYSMEM_BITS)={RISCV_MAX_PHYSMEM_BITS}",
            f"NUMBER(phys_ram_base)={ram_base}",
            f"NUMBER(PAGE_OFFSET)={page_offset:#x}",
            f"NUMBER(VMALLOC_START)={vmalloc_start:#x}",
            f"NUMBER(VMALLOC_END)={page_offset:#x}",
            f"NUMBER(VA_BITS)={va_bits}",
            f"NUMBER(VMEMMAP_START)={vmemmap_start:#x}",
            f"NUMBER(VMEMMAP_END)={vmalloc_start:#x}",
            f"NUMBER(KERNEL_LINK_ADDR)={link:#x}",
            f"NUMBER(va_kernel_pa_offset)={kva_pa:#x}",
            *([f"KERNELOFFSET={off:x}"] if off else []),
        ]
        evidence = (
            f"kernel image matched at phys {text_phys:#x} (linux_banner and the build-id "
            f"note); kernel_map (phys_addr {phys:#x}, va_kernel_pa_offset {kva_pa:#x}), "
            f"phys_ram_base {ram_base:#x} and satp_mode (Sv{va_bits}) read from the image"
        )
        return ImageFit(text_phys, off, "\n".join(lines) + "\n", evidence)

    # arch/riscv: the 64-bit kernel is loaded at a 2 MiB (PMD) boundary
    return search_image(mem, vm, need, 2 << 20, ranges, fit, base="_start")


def fit_arm(mem: PhysMemory, vm: Vmlinux, *, ranges: Iterable[tuple[int, int]] = ()) -> ImageFit:
    syms = vm.symbols
    need = ("_text", "linux_banner", "__pv_offset", "swapper_pg_dir", "init_uts_ns")

    def fit(text_phys: int, banner: bytes) -> ImageFit | str:
        text = syms["_text"]
        pv = read_u64(mem, text_phys + syms["__pv_offset"] - text)
        if pv is None:
            return "__pv_offset not in the banks"
        page_offset = text & ~0xFFFFFF
        phys_offset = (page_offset + pv) & MASK64
        if phys_offset + text - page_offset != text_phys:
            return f"__pv_offset {pv:#x} does not put _text at phys {text_phys:#x}"
        lpae = text - syms["swapper_pg_dir"] == 0x5000
        lines = [
            f"OSRELEASE={_release(banner)}",
            *([f"BUILD-ID={vm.build_id}"] if vm.build_id else []),
            "PAGESIZE=4096",
            f"SYMBOL(init_uts_ns)={syms['init_uts_ns']:x}",
            f"SYMBOL(swapper_pg_dir)={syms['swapper_pg_dir']:x}",
            *(["CONFIG_ARM_LPAE=y"] if lpae else []),
        ]
        evidence = (
            f"kernel image matched at phys {text_phys:#x} (linux_banner and the build-id "
            f"note); __pv_offset {pv:#x} (PHYS_OFFSET {phys_offset:#x}) read from the image"
            + (", LPAE page tables" if lpae else "")
        )
        return ImageFit(text_phys, 0, "\n".join(lines) + "\n", evidence)

    return search_image(mem, vm, need, 4096, ranges, fit)
