# SPDX-License-Identifier: GPL-2.0-or-later
"""
Kernel image in raw RAM
-----------------------

How to find a kernel in raw physical memory without its VMCOREINFO, from the
vmlinux alone, and rebuild the VMCOREINFO a debugger needs from the image's own
variables. The search every architecture shares (:func:`search_image`) and arm64 are
here; riscv64 and 32-bit Arm are in :mod:`rmem_inspect.kernel.image_arch`. On arm64:

1. ``linux_banner`` (init/version-timestamp.c, in .rodata) is searched for in RAM; a
   hit puts ``_text`` at ``hit - (linux_banner - _text)``, which must be aligned to
   ``MIN_KIMG_ALIGN`` (64 KiB, arch/arm64/include/asm/boot.h). The image's GNU
   build-id note (``.notes``, read-only) at the same distance must equal the
   vmlinux's: the image and the vmlinux are the same build.
2. The image's variables, read at ``_text_phys + (symbol - _text)``:
   ``kimage_voffset`` (the virtual - physical offset of the image;
   ``__kimg_to_phys()``, arch/arm64/include/asm/memory.h), so the KASLR offset is
   ``_text_phys + kimage_voffset - _text`` (``kaslr_offset()`` = ``&_text -
   KIMAGE_VADDR``); ``memstart_addr`` (``PHYS_OFFSET``).
3. The VA size in use (TCR_EL1.T1SZ is a register, not memory): the page tables at
   ``swapper_pg_dir`` are walked for each size arm64 supports, and the one that maps
   ``init_uts_ns`` onto its place in the image wins. The configured ``VA_BITS`` is 52
   when that size is 52, or when ``memstart_addr`` carries the 52-bit adjustment
   arm64_memblock_init() applies on hardware without 52-bit VAs (``memstart_addr -=
   _PAGE_OFFSET(vabits_actual) - _PAGE_OFFSET(52)``, arch/arm64/mm/init.c); else the
   size in use.

The VMCOREINFO written is the subset of what arch_crash_save_vmcoreinfo()
(arch/arm64/kernel/vmcore_info.c) and crash_save_vmcoreinfo_init()
(kernel/vmcore_info.c) write that a debugger needs to translate addresses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "IMAGE_SYMBOLS",
    "ImageFit",
    "ImageNotFound",
    "PhysMemory",
    "Vmlinux",
    "fit_arm64",
    "read_u64",
    "search_image",
    "walk_arm64",
]

#: The symbols the image search reads (vmlinux .symtab), every architecture's.
IMAGE_SYMBOLS = (
    "_text",
    "_start",
    "kernel_map",
    "phys_ram_base",
    "satp_mode",
    "__pv_offset",
    "_stext",
    "linux_banner",
    "kimage_voffset",
    "memstart_addr",
    "swapper_pg_dir",
    "init_uts_ns",
    "mem_section",
    "vabits_actual",
)
#: arch/arm64/include/asm/boot.h
MIN_KIMG_ALIGN = 64 << 10
#: How many banner hits are tried at most (the log buffer holds copies too).
MAX_HITS = 64
MASK64 = (1 << 64) - 1


class PhysMemory(Protocol):
    """Raw RAM by physical address."""

    def read(self, paddr: int, size: int) -> bytes | None:
        """``size`` bytes at ``paddr``, or None where no bank has them all."""

    def find(self, needle: bytes, limit: int) -> list[int]:
        """Physical addresses where ``needle`` starts (at most ``limit``)."""


class Vmlinux(Protocol):
    """What the search needs from the vmlinux (formats.elf_image.VmlinuxImage)."""

    symbols: dict[str, int]
    build_id: str | None
    build_id_note: tuple[int, bytes] | None

    def c_string(self, addr: int, limit: int = 1024) -> bytes | None: ...


class ImageNotFound(LookupError):
    """The vmlinux's image is not in the banks; the message says what was searched."""


@dataclass
class ImageFit:
    """Where the image lies and the VMCOREINFO rebuilt from it."""

    text_phys: int
    kaslr_offset: int
    vmcoreinfo: str
    #: What matched, for the report's source line.
    evidence: str
    numbers: dict[str, int] = field(default_factory=dict)


def read_u64(mem: PhysMemory, paddr: int) -> int | None:
    """The little-endian u64 at ``paddr`` (None: not in the banks)."""
    data = mem.read(paddr, 8)
    return None if data is None else int.from_bytes(data, "little")


def walk_arm64(word: Callable[[int], int | None], root: int, va: int, va_bits: int,
               page_shift: int = 12) -> int | None:  # fmt: skip
    """Physical address of kernel ``va`` through the table at physical ``root``, as the
    MMU walks TTBR1 with ``va_bits`` (descriptor formats of the Arm ARM: bits [1:0]
    3 = table/page, 1 = block; with 52-bit VAs and 4K/16K pages (LPA2) output address
    bits [51:50] sit in descriptor bits [9:8]). None: not mapped or unreadable."""
    shift = page_shift - 3
    levels = (va_bits - page_shift + shift - 1) // shift
    low_mask = 0x0000FFFFFFFFF000 & ~((1 << page_shift) - 1)
    lpa2 = va_bits == 52 and page_shift != 16
    if lpa2:
        low_mask |= 0x0003000000000000
    table = root
    entries = 1 << ((va_bits - page_shift - 1) % shift + 1)
    for level in range(levels, 0, -1):
        level_shift = page_shift + shift * (level - 1)
        index = (va >> level_shift) & (entries - 1)
        entries = 1 << shift
        entry = word(table + 8 * index)
        if entry is None:
            return None
        out = entry & low_mask
        if lpa2:
            out |= (entry & 0x300) << 42
        elif page_shift == 16:
            out |= (entry & 0xF000) << 36
        kind = entry & 3
        if level == 1:
            return out | (va & ((1 << page_shift) - 1)) if kind == 3 else None
        if kind == 1:
            mask = (1 << level_shift) - 1
            return (out & ~mask) | (va & mask)
        if kind != 3:
            return None
        table = out
    return None


def _banner_hits(mem: PhysMemory, vm: Vmlinux) -> tuple[bytes, list[int]]:
    syms = vm.symbols
    banner = vm.c_string(syms["linux_banner"])
    if not banner or not banner.startswith(b"Linux version "):
        raise ImageNotFound("the vmlinux's linux_banner is not readable text")
    return banner, mem.find(banner, MAX_HITS)


def fit_arm64(
    mem: PhysMemory,
    vm: Vmlinux,
    *,
    kaslr: int | None = None,
    vabits: int | None = None,
    ranges: Iterable[tuple[int, int]] = (),
) -> ImageFit:
    """Find the arm64 image of ``vm`` in ``mem`` (see the module docstring).

    :param kaslr: ``--kaslr``: the KASLR offset to use instead of the image's.
    :param vabits: ``--vabits``: the VA size in use instead of the walk's answer.
    :param ranges: (start, size) of the banks, named in the error.
    :raises ImageNotFound: with what was searched and what to check.
    """

    need = ("_text", "linux_banner", "kimage_voffset", "swapper_pg_dir", "init_uts_ns",
            "memstart_addr")  # fmt: skip
    def fit(text_phys: int, banner: bytes) -> ImageFit | str:
        return _fit_at(mem, vm, text_phys, banner, kaslr, vabits)

    return search_image(mem, vm, need, MIN_KIMG_ALIGN, ranges, fit)


def search_image(
    mem: PhysMemory,
    vm: Vmlinux,
    need: tuple[str, ...],
    align: int,
    ranges: Iterable[tuple[int, int]],
    fit: Callable[[int, bytes], ImageFit | str],
    base: str = "_text",
) -> ImageFit:
    """The banner search every architecture shares: each hit's implied image start
    (symbol ``base``) must be ``align``-ed and carry the vmlinux's build-id note; ``fit``
    gets that physical address and the banner, and returns the fit or why not."""
    syms = vm.symbols
    missing = [s for s in need if s not in syms]
    if missing:
        raise ImageNotFound(f"the vmlinux lacks the symbols {', '.join(missing)}")
    banner, hits = _banner_hits(mem, vm)
    where = ", ".join(f"{a:#x}..{a + s - 1:#x}" for a, s in ranges) or "the banks"
    text = syms[base]
    tried = []
    for hit in hits:
        text_phys = hit - (syms["linux_banner"] - text)
        if text_phys < 0 or text_phys % align:
            tried.append(f"{hit:#x} (implied {base} {text_phys:#x} not {align:#x}-aligned)")
            continue
        if vm.build_id_note is not None:
            note_addr, note = vm.build_id_note
            if mem.read(text_phys + note_addr - text, len(note)) != note:
                tried.append(f"{hit:#x} (no matching build-id note beside it)")
                continue
        got = fit(text_phys, banner)
        if isinstance(got, ImageFit):
            return got
        tried.append(f"{hit:#x} ({got})")
    found = "; ".join(tried) if tried else "no copy of it"
    raise ImageNotFound(
        f"searched {where} for the vmlinux's linux_banner ({banner[:40].decode(errors='replace')}"
        f"...) and found {found}: check that the dump is of this kernel's boot and that each "
        "bank's physical base is right"
    )


def _fit_at(
    mem: PhysMemory,
    vm: Vmlinux,
    text_phys: int,
    banner: bytes,
    kaslr: int | None,
    vabits: int | None,
) -> ImageFit | str:
    syms = vm.symbols
    text = syms["_text"]

    def at(name: str) -> int:
        return text_phys + syms[name] - text

    voffset = read_u64(mem, at("kimage_voffset"))
    memstart = read_u64(mem, at("memstart_addr"))
    if voffset is None or memstart is None:
        return "kimage_voffset or memstart_addr not in the banks"
    if kaslr is None:
        kaslr = (text_phys + voffset - text) & MASK64
    else:
        voffset = (text + kaslr - text_phys) & MASK64
    root = at("swapper_pg_dir")
    target_va = (syms["init_uts_ns"] + kaslr) & MASK64
    target_pa = at("init_uts_ns")

    def word(pa: int) -> int | None:
        return read_u64(mem, pa)

    in_use = None
    page_shift = 12
    candidates = [vabits] if vabits else [48, 52, 47, 42, 39, 36]
    for shift in (12, 14, 16):
        for bits in candidates:
            if walk_arm64(word, root, target_va, bits, shift) == target_pa:
                in_use, page_shift = bits, shift
                break
        if in_use:
            break
    if in_use is None:
        return (
            f"swapper_pg_dir at phys {root:#x} does not map init_uts_ns "
            f"({target_va:#x}) onto phys {target_pa:#x} with KASLR offset {kaslr:#x}"
        )
    signed = memstart - (1 << 64) if memstart >> 63 else memstart
    config = 52 if in_use == 52 or signed < -(1 << in_use) else in_use
    release = banner[len(b"Linux version ") :].split(b" ", 1)[0].decode(errors="replace")
    numbers = {"VA_BITS": config, "vabits_actual": in_use, "kimage_voffset": voffset,
               "PHYS_OFFSET": memstart, "page_size": 1 << page_shift}  # fmt: skip
    lines = [
        f"OSRELEASE={release}",
        *([f"BUILD-ID={vm.build_id}"] if vm.build_id else []),
        f"PAGESIZE={1 << page_shift}",
        f"SYMBOL(init_uts_ns)={(syms['init_uts_ns'] + kaslr) & MASK64:x}",
        f"SYMBOL(swapper_pg_dir)={(syms['swapper_pg_dir'] + kaslr) & MASK64:x}",
        *([f"SYMBOL(_stext)={(syms['_stext'] + kaslr) & MASK64:x}"] if "_stext" in syms else []),
    ]
    if "mem_section" in syms:
        # drgn finds vmemmap through mem_section (SPARSEMEM_EXTREME); LENGTH is
        # NR_SECTION_ROOTS for the widest physical address arm64 has (52 bits,
        # arch/arm64/Kconfig ARM64_PA_BITS), SECTION_SIZE_BITS of
        # arch/arm64/include/asm/sparsemem.h and a 16-byte struct mem_section: an upper
        # bound; only the roots of present sections are ever read.
        section_bits = 29 if page_shift == 16 else 27
        roots = max(1, (1 << (52 - section_bits)) // ((1 << page_shift) // 16))
        ms = read_u64(mem, at("mem_section"))
        if ms:
            lines.append(f"SYMBOL(mem_section)={ms:x}")
        lines.append(f"LENGTH(mem_section)={roots}")
    lines += [
        f"NUMBER(VA_BITS)={config}",
        f"NUMBER(kimage_voffset)={voffset:#x}",
        f"NUMBER(PHYS_OFFSET)={memstart:#x}",
        f"NUMBER(TCR_EL1_T1SZ)={64 - in_use:#x}",
        f"KERNELOFFSET={kaslr:x}",
    ]
    evidence = (
        f"kernel image matched at phys {text_phys:#x} (linux_banner"
        + (" and the build-id note" if vm.build_id_note else "")
        + f"); kimage_voffset {voffset:#x}, memstart_addr {memstart:#x} read from the image; "
        f"page tables walked with {in_use}-bit VAs"
    )
    return ImageFit(text_phys, kaslr, "\n".join(lines) + "\n", evidence, numbers)
