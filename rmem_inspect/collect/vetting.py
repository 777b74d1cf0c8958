# SPDX-License-Identifier: GPL-2.0-or-later
"""
vetting
-------

Vet a crash dump and a vmlinux before drgn opens them, so that every problem becomes
one clear :class:`~rmem_inspect.errors.InputError` sentence: missing or truncated
dump, kdump-compressed QEMU output (arm64), broken kexec ELF headers, VMCOREINFO
missing, another architecture, a vmlinux without DWARF or with a different build-id
(both named). A flattened ELF dump (makedumpfile -E -F) is reassembled into a
temporary file first (:func:`reassembled`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from rmem_inspect.errors import InputError
from rmem_inspect.formats.elf import ElfError, ElfInfo, read_elf
from rmem_inspect.formats.kdump import KdumpError, KdumpHeader, read_kdump, reassemble
from rmem_inspect.kernel.arch import ARCHES, arch_for_machine

__all__ = [
    "ELF_ABSURD_SIZE",
    "reassembled",
    "vet_arch",
    "vet_dump",
    "vet_vmlinux",
]


def vet_dump(path: str) -> ElfInfo | KdumpHeader:
    """Vet ``path`` and say what it is: an ELF core (QEMU, /proc/vmcore, makedumpfile -E)
    or a kdump-compressed dump (makedumpfile -c/-l/-p/-z). Flattened files (-F) come here
    already reassembled (:func:`reassembled`)."""
    if not os.path.exists(path):
        raise InputError(f"dump not found: {path} (check the --vmcore path)")
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise InputError(f"dump not readable: {path}")
    try:
        kd = read_kdump(path, bitmap=True)
    except KdumpError as e:
        raise InputError(
            f"{path} is a damaged kdump-compressed dump: {e}; copy or capture the dump again"
        ) from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    if kd is not None:
        return _vet_kdump(path, kd)
    try:
        info = read_elf(path)
    except ElfError as e:
        if str(e).startswith("truncated"):
            raise InputError(f"{path} is {e}; copy or capture the dump again") from None
        raise InputError(
            f"{path} is not a crash dump this tool reads: {e}; pass an ELF vmcore (/proc/vmcore "
            "saved by kdump, makedumpfile -E, or QEMU dump-guest-memory) or a kdump-compressed "
            "one (makedumpfile -c/-l/-p/-z, flattened or not)"
        ) from None
    if info.type != 4:
        raise InputError(
            f"{path} is an ELF file but not a core dump (e_type {info.type}): --vmcore takes the "
            "crash dump (vmcore); a vmlinux goes to --vmlinux"
        )
    if info.described_size > ELF_ABSURD_SIZE:
        # kexec-tools without a _text symbol (a kernel lacking CONFIG_KALLSYMS_ALL) writes
        # a garbage kernel-text PT_LOAD into the elfcorehdr (kexec/arch/arm64/
        # crashdump-arm64.c); /proc/vmcore then claims exabytes.
        raise InputError(
            f"{path} describes {info.described_size} bytes of memory: its ELF headers are "
            "broken (kexec-tools found no _text in /proc/kallsyms, a kernel without "
            "CONFIG_KALLSYMS_ALL, and wrote a garbage kernel-text segment); capture again with "
            "_text given to kexec (_stext - 0x10000 on arm64)"
        )
    if info.described_size > info.file_size:
        raise InputError(
            f"{path} is truncated: {info.file_size} bytes, its headers describe "
            f"{info.described_size}; copy or capture the dump again"
        )
    if info.vmcoreinfo is None:
        raise InputError(
            f"{path} has no VMCOREINFO note, so the kernel cannot be identified (for QEMU "
            "guests: load qemu_fw_cfg and add -device vmcoreinfo before dumping; a kernel "
            "without CONFIG_FW_CFG_SYSFS needs a kdump capture, /proc/vmcore)"
        )
    return info


#: No real machine has 2**60 bytes of memory: beyond, the ELF headers are garbage.
ELF_ABSURD_SIZE = 1 << 60


def _vet_kdump(path: str, kd: KdumpHeader) -> KdumpHeader:
    if kd.machine_name == "Unknown":
        # QEMU's dump-guest-memory -z writes "Unknown" as the utsname machine of arm64
        # guests (and a block size libkdumpfile does not expect): drgn cannot translate.
        raise InputError(
            f"{path} is a kdump-compressed dump written by QEMU (dump-guest-memory -z), which "
            "libkdumpfile cannot translate for arm64 guests: dump again without -z (ELF format)"
        )
    if kd.file_size < kd.described_size:
        raise InputError(
            f"{path} is truncated: {kd.file_size} bytes, its headers and page descriptors "
            f"describe {kd.described_size}; copy or capture the dump again"
        )
    if kd.vmcoreinfo is None:
        raise InputError(
            f"{path} ({kd.format_name}) has no VMCOREINFO, so the kernel cannot be identified"
        )
    return kd


def vet_vmlinux(path: str, dump: ElfInfo | KdumpHeader | None, build_id: str | None) -> None:
    """Vet the vmlinux at ``path`` against the dump (its architecture) and the kernel's
    build-id: it must exist, be an ELF file with DWARF, and be of the same build."""
    if not os.path.isfile(path):
        raise InputError(f"vmlinux not found: {path} (check the --vmlinux path)")
    try:
        vm = read_elf(path, sections=True)
    except (OSError, ElfError) as e:
        raise InputError(f"{path} is not a usable vmlinux: {e}") from None
    if dump is not None and dump.machine and vm.machine != dump.machine:
        raise InputError(
            f"architecture mismatch: the dump is {dump.arch}, {path} is {vm.arch}; pass the "
            "vmlinux of the kernel that wrote the dump"
        )
    if not vm.has_dwarf:
        raise InputError(
            f"{path} has no debug info (.debug_info): use the vmlinux from the -dbg package"
        )
    if build_id and vm.build_id and vm.build_id != build_id:
        raise InputError(
            f"vmlinux build-id {vm.build_id} does not match the kernel's {build_id}: "
            f"{path} is from another build; pass the -dbg vmlinux of the kernel that wrote the dump"
        )


def vet_arch(info: ElfInfo | KdumpHeader, shown: str) -> None:
    """Refuse a dump of an architecture this tool does not read (:data:`ARCHES`)."""
    if info.machine and arch_for_machine(info.machine) is None:
        raise InputError(
            f"{shown} is a {info.arch} dump: this tool reads devicetree kernels on "
            f"{', '.join(sorted(ARCHES))} only"
        )


@contextlib.contextmanager
def reassembled(path: str) -> Iterator[str]:
    """The flattened dump ``path`` reassembled into a temporary sparse file (never in
    place), removed when the context ends."""
    fd, tmp = tempfile.mkstemp(prefix="rmem-inspect-", suffix=".vmcore")
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            reassemble(path, tmp)
        except KdumpError as e:
            raise InputError(
                f"{path} is a damaged flattened dump: {e}; copy or capture the dump again"
            ) from None
        except OSError as e:
            raise InputError(
                f"cannot reassemble the flattened dump {path} in {os.path.dirname(tmp)}: "
                f"{e.strerror} (set TMPDIR to a file system with room)"
            ) from None
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
