# SPDX-License-Identifier: GPL-2.0-or-later
"""
ramdump_program
---------------

A drgn :class:`~drgn.Program` on raw RAM banks (:mod:`rmem_inspect.collect.ramdump`):
find the kernel (its VMCOREINFO page, else the vmlinux's image), hand drgn the banks
as physical memory of a custom Linux target, load the vmlinux or the kernel's own
kallsyms and BTF, and check that kernel memory reads back. Needs drgn 0.3.0
(``Program.set_linux_kernel_custom``).

``--kaslr OFFSET`` and ``--vabits N`` (crash's ``--kaslr`` and ``-m vabits_actual=N``)
replace what neither source gives right: the KASLR offset and the VA size in use.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import drgn

from rmem_inspect.collect.ramdump import RAMDUMP_CACHE_KEY, RamSet, find_vmcoreinfo, open_banks
from rmem_inspect.collect.ramdump_arch import install_virtual_segments
from rmem_inspect.errors import InputError
from rmem_inspect.formats.elf import ElfError
from rmem_inspect.formats.elf_image import VmlinuxImage, open_vmlinux_image
from rmem_inspect.kernel.arch import ARCHES, arch_for_machine
from rmem_inspect.kernel.image import IMAGE_SYMBOLS, ImageNotFound
from rmem_inspect.kernel.image_arch import fit_image

__all__ = ["RamdumpOptions", "open_ramdump", "parse_kaslr", "ramdump_support"]

_LE64 = drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN
_PLATFORMS = {
    "arm64": (drgn.Architecture.AARCH64, _LE64),
    "arm": (drgn.Architecture.ARM, drgn.PlatformFlags.IS_LITTLE_ENDIAN),
    "riscv64": (drgn.Architecture.RISCV64, _LE64),
}
MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class RamdumpOptions:
    """crash's overrides for raw RAM."""

    #: ``--kaslr OFFSET``: the KASLR offset.
    kaslr: int | None = None
    #: ``--vabits N`` / ``-m vabits_actual=N``: the VA size in use (arm64).
    vabits: int | None = None


def parse_kaslr(text: str) -> int | None:
    """``--kaslr`` as crash takes it: a hexadecimal offset (``0x`` optional), or ``auto``
    (None: what the dump says)."""
    t = text.strip().lower()
    if t == "auto":
        return None
    t = t[2:] if t.startswith("0x") else t
    if not re.fullmatch(r"[0-9a-f]{1,16}", t):
        raise InputError(f"--kaslr {text!r} is not a hexadecimal offset")
    return int(t, 16)


def ramdump_support() -> str | None:
    """None when this drgn reads raw RAM, else the sentence saying what is needed."""
    if not hasattr(drgn.Program, "set_linux_kernel_custom"):
        return (
            f"reading raw RAM needs drgn 0.3.0 or later (Program.set_linux_kernel_custom); "
            f"this is drgn {drgn.__version__}"
        )
    return None


def _arch_of(ram: RamSet, vm: VmlinuxImage | None, info: dict[str, str] | None) -> str:
    machine = vm.machine if vm is not None else ram.machine
    if machine is not None:
        facts = arch_for_machine(machine)
        if facts is None:
            raise InputError(
                f"{ram.shown} is for ELF machine {machine}: this tool reads "
                f"{', '.join(sorted(ARCHES))} kernels only"
            )
        return facts.name
    info = info or {}
    # what each architecture's arch_crash_save_vmcoreinfo() adds
    if "NUMBER(kimage_voffset)" in info:  # arch/arm64/kernel/vmcore_info.c
        return "arm64"
    if "NUMBER(va_kernel_pa_offset)" in info:  # arch/riscv/kernel/vmcore_info.c
        return "riscv64"
    return "arm"  # arch/arm/kernel/vmcore_info.c adds only CONFIG_ARM_LPAE


def _override(text: str, opts: RamdumpOptions) -> str:
    """Apply --kaslr / --vabits to a VMCOREINFO from RAM. The image's virtual -
    physical offset moves by as much as the KASLR offset: arm64's kimage_voffset,
    riscv64's va_kernel_pa_offset (riscv writes no KERNELOFFSET line: one is added)."""
    info = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    out = []
    lines = text.splitlines()
    if opts.kaslr is not None and "KERNELOFFSET" not in info:
        lines.append("KERNELOFFSET=0")
    for line in lines:
        key = line.split("=", 1)[0]
        if opts.kaslr is not None and key == "KERNELOFFSET":
            line = f"KERNELOFFSET={opts.kaslr:x}"
        elif opts.kaslr is not None and key in (
            "NUMBER(kimage_voffset)",
            "NUMBER(va_kernel_pa_offset)",
        ):
            old = int(info.get("KERNELOFFSET", "0"), 16)
            line = f"{key}={(int(line.split('=', 1)[1], 16) + opts.kaslr - old) & MASK64:#x}"
        elif opts.vabits is not None and key == "NUMBER(TCR_EL1_T1SZ)":
            line = f"{key}={64 - opts.vabits:#x}"
        out.append(line)
    return "\n".join(out) + "\n"


def open_ramdump(
    spec: str,
    vmlinux: str | None = None,
    types: str = "auto",
    opts: RamdumpOptions = RamdumpOptions(),
) -> tuple[drgn.Program, dict[str, Any]]:
    """A Program on the raw RAM ``spec`` names, and the report's source record."""
    from rmem_inspect.collect.debuginfo import debuginfod_vmlinux, find_vmlinux

    why = ramdump_support()
    if why:
        raise InputError(f"{spec}: {why}")
    ram = open_banks(spec)
    try:
        pages = find_vmcoreinfo(ram)
        if vmlinux is None and types != "btf":
            for _phys, fields, _text in pages:
                vmlinux = find_vmlinux(fields.get("OSRELEASE", ""), fields.get("BUILD-ID"))
                if vmlinux is None and fields.get("BUILD-ID"):
                    vmlinux = debuginfod_vmlinux(fields["BUILD-ID"])
                if vmlinux:
                    break
        if types == "btf":
            vmlinux = None
        elif types == "dwarf" and vmlinux is None:
            fields = pages[0][1] if pages else {}
            raise InputError(
                f"no vmlinux with debug info found for {ram.shown} (release "
                f"{fields.get('OSRELEASE', 'unknown')}, build-id "
                f"{fields.get('BUILD-ID', 'unknown')}); pass --vmlinux"
            )
        vm = _open_vmlinux(vmlinux) if vmlinux else None
        try:
            prog, source = _build(ram, pages, vm, types, opts)
        finally:
            if vm is not None:
                vm.close()
    except BaseException:
        ram.close()
        raise
    return prog, source


def _open_vmlinux(path: str) -> VmlinuxImage:
    if not os.path.isfile(path):
        raise InputError(f"vmlinux not found: {path} (check the --vmlinux path)")
    try:
        return open_vmlinux_image(path, IMAGE_SYMBOLS)
    except (OSError, ElfError) as e:
        raise InputError(f"{path} is not a usable vmlinux: {e}") from None


def _pick(
    ram: RamSet, pages: list[tuple[int, dict[str, str], str]], vm: VmlinuxImage | None
) -> tuple[str, str, list[str]]:
    """(VMCOREINFO text, how it was found, notes) from the pages, or ("", "", notes)."""
    notes = []
    for phys, fields, text in pages:
        bid = fields.get("BUILD-ID")
        if vm is not None and vm.build_id and bid and bid != vm.build_id:
            notes.append(
                f"VMCOREINFO page at phys {phys:#x} has BUILD-ID {bid}, not the vmlinux's "
                f"{vm.build_id} (the vmlinux of another build, or an earlier boot's page "
                "left in RAM): not used"
            )
            continue
        check = " (BUILD-ID matches the vmlinux)" if vm is not None and bid == vm.build_id else ""
        return text, f"VMCOREINFO page at phys {phys:#x}{check}", notes
    return "", "", notes


def _build(
    ram: RamSet,
    pages: list[tuple[int, dict[str, str], str]],
    vm: VmlinuxImage | None,
    types: str,
    opts: RamdumpOptions,
) -> tuple[drgn.Program, dict[str, Any]]:
    text, found, notes = _pick(ram, pages, vm)
    where = ram.describe()
    if not text:
        if vm is None:
            raise InputError(
                f"no VMCOREINFO page in {ram.shown} (searched every 4 KiB page start of "
                f"{where} for 'OSRELEASE='): without it the kernel can only be found from its "
                "vmlinux: pass --vmlinux (Debian: the linux-image-*-dbg package)"
            )
        arch = _arch_of(ram, vm, None)
        try:
            fit = fit_image(
                arch, ram, vm, kaslr=opts.kaslr, vabits=opts.vabits, ranges=ram.ranges()
            )
        except ImageNotFound as e:
            notes_text = f" ({'; '.join(notes)})" if notes else ""
            raise InputError(f"no VMCOREINFO page in {ram.shown}{notes_text}, and {e}") from None
        text, found = fit.vmcoreinfo, fit.evidence
    else:
        text = _override(text, opts)
    info = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    arch = _arch_of(ram, vm, info)
    prog = drgn.Program(drgn.Platform(*_PLATFORMS[arch]), vmcoreinfo=text)
    for b in ram.banks:
        prog.add_memory_segment(b.paddr, b.size, _reader(b), True)
    try:
        prog.set_linux_kernel_custom(text, False)
    except Exception as e:  # drgn raises ValueError/OSError on VMCOREINFO it refuses
        raise InputError(f"drgn refuses the VMCOREINFO of {ram.shown} ({found}): {e}") from None
    prog.cache[RAMDUMP_CACHE_KEY] = ram
    release = info.get("OSRELEASE", "")
    try:
        mapped = install_virtual_segments(prog, ram, arch, info)
    except LookupError as e:
        raise InputError(
            f"the kernel found in {ram.shown} ({found}) cannot be mapped: {e}; check each "
            f"bank's physical base ({where})"
        ) from None
    if vm is not None:
        _load(prog, vm.path)
    else:
        from rmem_inspect.collect.without_vmlinux import open_without_vmlinux

        open_without_vmlinux(prog, ram.shown, release)
    _finish(prog, ram, found, release)
    if arch == "riscv64":
        _check_riscv_mapping(prog, ram, found, info)
    source: dict[str, Any] = {
        "kind": "ramdump",
        "vmcore": ram.shown if "@" in ram.shown else os.path.abspath(ram.shown),
        "format": ram.format,
        "banks": where,
        "kernel_found": found,
        "kaslr_offset": f"{int(info.get('KERNELOFFSET', '0'), 16):#x}",
    }
    if mapped:
        source["mapping"] = mapped
    if notes:
        source["notes"] = "; ".join(notes)
    return prog, source


def _reader(bank: Any) -> Any:
    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        return bank.read(address, count)

    return read


def _load(prog: drgn.Program, vmlinux: str) -> None:
    logger = logging.getLogger("drgn")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        prog.load_debug_info([vmlinux])
    except drgn.MissingDebugInfoError:
        pass
    except Exception as e:
        raise InputError(f"cannot load debug info from {vmlinux}: {e}") from None
    finally:
        logger.setLevel(level)
    try:
        prog.type("struct task_struct")
    except LookupError:
        raise InputError(f"{vmlinux} does not provide the kernel's types") from None


def _finish(prog: drgn.Program, ram: RamSet, found: str, release: str) -> None:
    """riscv64's fixmap, 32-bit Arm's FDT window, then: does the kernel read back?"""
    from rmem_inspect.collect.arm_fdt import install_fdt_window
    from rmem_inspect.collect.program import TRANSLATION_NOTE
    from rmem_inspect.collect.riscv_mmu import install_translation

    note = install_translation(prog)
    install_fdt_window(prog)
    if note:
        # raw RAM has no program headers: the rest comes from ramdump_arch's segments
        note = note.replace("the dump's program headers", "the linear map and kernel mapping "
                            "ramdump_arch gives from the banks")  # fmt: skip
        prog.cache[TRANSLATION_NOTE] = note
    try:
        got = prog["init_uts_ns"].name.release.string_().decode(errors="replace")
    except (drgn.FaultError, NotImplementedError, LookupError, ValueError) as e:
        got = f"unreadable ({e})"
    if got != release:
        raise InputError(
            f"the kernel found in {ram.shown} ({found}) does not read back: init_uts_ns "
            f"gives {got!r}, not {release!r}; check each bank's physical base "
            f"({ram.describe()}) and, if given, --kaslr/--vabits"
        )


def _check_riscv_mapping(prog: drgn.Program, ram: RamSet, found: str, info: dict[str, str]) -> None:
    """riscv64's kernel mapping is given from va_kernel_pa_offset, so a wrong KASLR offset
    would still read back consistently: the kernel's own page tables must map
    ``init_uts_ns`` where that offset says (arch/riscv/mm/init.c create_kernel_page_table())."""
    from rmem_inspect.collect.riscv_mmu import walk

    try:
        kva_pa = int(info["NUMBER(va_kernel_pa_offset)"], 16)
        levels = (int(info["NUMBER(VA_BITS)"]) - 12) // 9
        root = (int(info["SYMBOL(swapper_pg_dir)"], 16) - kva_pa) & MASK64
        va = prog["init_uts_ns"].address_
        assert va is not None
        got = walk(prog, root, levels, va)
    except (KeyError, ValueError, LookupError, drgn.FaultError) as e:
        got = None
        why = str(e)
    else:
        why = f"it maps to phys {got:#x}"
    if got != (va - kva_pa) & MASK64:
        raise InputError(
            f"the kernel found in {ram.shown} ({found}) does not match its own page tables: "
            f"swapper_pg_dir does not map init_uts_ns onto phys {(va - kva_pa) & MASK64:#x} "
            f"({why}); check each bank's physical base and, if given, --kaslr"
        )
