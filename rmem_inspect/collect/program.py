# SPDX-License-Identifier: GPL-2.0-or-later
"""
program
-------

Open a drgn :class:`~drgn.Program` on a crash dump or the running kernel, after
vetting the inputs so that every problem becomes one clear
:class:`~rmem_inspect.errors.InputError` sentence: missing or truncated dump,
kdump-compressed QEMU output, VMCOREINFO missing, another architecture, a
vmlinux without DWARF or with a different build-id (both named).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import drgn

from rmem_inspect.arch import ARCHES, arch_for_machine, arch_of
from rmem_inspect.collect.arm_fdt import install_fdt_window
from rmem_inspect.collect.elf import ElfError, ElfInfo, read_elf
from rmem_inspect.collect.riscv_mmu import install_translation
from rmem_inspect.errors import InputError

__all__ = [
    "TRANSLATION_NOTE",
    "debug_search_paths",
    "find_vmlinux",
    "open_live",
    "open_qemu",
    "open_vmcore",
]


#: ``Program.cache`` key of the sentence saying how addresses are translated, when
#: not by drgn alone.
TRANSLATION_NOTE = "rmem_inspect.translation"


def debug_search_paths(release: str, build_id: str | None = None) -> list[str]:
    """Where a vmlinux for ``release`` may be: drgn's standard places, Debian -dbg
    layouts, ``$RMEM_INSPECT_DEBUG_DIRS`` (colon-separated roots) and the vmcore
    factory's cache."""
    roots = ["/"]
    roots += [r for r in os.environ.get("RMEM_INSPECT_DEBUG_DIRS", "").split(":") if r]
    cache = os.environ.get("RMEM_INSPECT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rmem-inspect"
    )
    roots.append(os.path.join(cache, "kernels", release, "dbg"))
    rel = [
        f"usr/lib/debug/boot/vmlinux-{release}",
        f"usr/lib/debug/lib/modules/{release}/vmlinux",
        f"usr/lib/debug/usr/lib/modules/{release}/vmlinux",
        f"lib/modules/{release}/build/vmlinux",
        f"boot/vmlinux-{release}",
    ]
    if build_id and len(build_id) > 2:
        rel.insert(0, f"usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug")
    return [os.path.join(root, r) for root in roots for r in rel]


def find_vmlinux(release: str, build_id: str | None, extra: Iterable[str] = ()) -> str | None:
    """The first candidate vmlinux whose build-id matches (or, without one, that exists)."""
    for path in [*extra, *debug_search_paths(release, build_id)]:
        for p in glob.glob(path):
            if not os.path.isfile(p):
                continue
            if build_id is None:
                return p
            try:
                if read_elf(p, sections=True).build_id == build_id:
                    return p
            except (OSError, ElfError):
                continue
    return None


FLAT_SIGNATURE = b"makedumpfile"
FLAT_HEADER_SIZE = 4096
KDUMP_SIGNATURE = b"KDUMP   "
#: struct disk_dump_header: signature[8], header_version, then struct new_utsname
#: (6 x 65 bytes: sysname, nodename, release, version, machine, domainname).
KDUMP_MACHINE_START = 8 + 4 + 4 * 65
KDUMP_MACHINE_END = KDUMP_MACHINE_START + 65


def _kdump_machine(head: bytes) -> str | None:
    """The utsname machine of a kdump-compressed header (plain or flattened), else None."""
    if head.startswith(FLAT_SIGNATURE):
        # Flattened: a 4 KiB header, then (offset, size) big-endian records; the
        # first record is the disk_dump_header at offset 0.
        head = head[FLAT_HEADER_SIZE + 16 :]
    if not head.startswith(KDUMP_SIGNATURE) or len(head) < KDUMP_MACHINE_END:
        return None
    raw = head[KDUMP_MACHINE_START:KDUMP_MACHINE_END].split(b"\0", 1)[0]
    return raw.decode(errors="replace")


def _vet_dump(path: str) -> ElfInfo:
    if not os.path.exists(path):
        raise InputError(f"dump not found: {path} (check the --vmcore path)")
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise InputError(f"dump not readable: {path}")
    with open(path, "rb") as f:
        head = f.read(FLAT_HEADER_SIZE + 16 + KDUMP_MACHINE_END)
    machine = _kdump_machine(head)
    if machine == "Unknown":
        raise InputError(
            f"{path} is a kdump-compressed dump written by QEMU (dump-guest-memory -z), which "
            "libkdumpfile cannot translate for arm64 guests: dump again without -z (ELF format)"
        )
    if head.startswith(FLAT_SIGNATURE):
        raise InputError(
            f"{path} is in makedumpfile's flattened format: reassemble it with "
            f"'makedumpfile -R {os.path.basename(path)}.new < {path}' and pass the new file"
        )
    if machine is not None:
        raise InputError(
            f"{path} is kdump-compressed ({machine}): this tool reads ELF dumps; capture "
            "with makedumpfile -E (or QEMU's dump-guest-memory without -z)"
        )
    try:
        info = read_elf(path)
    except ElfError as e:
        if str(e).startswith("truncated"):
            raise InputError(f"{path} is {e}; copy or capture the dump again") from None
        raise InputError(
            f"{path} is not a usable ELF crash dump: {e}; pass an ELF vmcore (/proc/vmcore "
            "saved by kdump, makedumpfile -E, or QEMU dump-guest-memory)"
        ) from None
    if info.type != 4:
        raise InputError(
            f"{path} is an ELF file but not a core dump (e_type {info.type}): --vmcore takes the "
            "crash dump (vmcore); a vmlinux goes to --vmlinux"
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


def _vet_vmlinux(path: str, dump: ElfInfo | None, build_id: str | None) -> None:
    if not os.path.isfile(path):
        raise InputError(f"vmlinux not found: {path} (check the --vmlinux path)")
    try:
        vm = read_elf(path, sections=True)
    except (OSError, ElfError) as e:
        raise InputError(f"{path} is not a usable vmlinux: {e}") from None
    if dump is not None and vm.machine != dump.machine:
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


def open_vmcore(vmcore: str, vmlinux: str | None = None) -> drgn.Program:
    """A Program on ``vmcore`` with the matching vmlinux's debug info loaded."""
    info = _vet_dump(vmcore)
    assert info.vmcoreinfo is not None
    release = info.vmcoreinfo.get("OSRELEASE", "")
    build_id = info.vmcoreinfo.get("BUILD-ID")
    if vmlinux is None:
        vmlinux = find_vmlinux(release, build_id)
        if vmlinux is None:
            raise InputError(
                f"no vmlinux with debug info found for {release} (build-id {build_id}); "
                "pass --vmlinux (Debian: the linux-image-*-dbg package)"
            )
    _vet_vmlinux(vmlinux, info, build_id)
    if arch_for_machine(info.machine) is None:
        raise InputError(
            f"{vmcore} is a {info.arch} dump: this tool reads devicetree kernels on "
            f"{', '.join(sorted(ARCHES))} only"
        )
    prog = drgn.Program()
    try:
        prog.set_core_dump(vmcore)
    except Exception as e:  # drgn raises OSError/ValueError/NotImplementedError
        raise InputError(f"drgn cannot open {vmcore}: {e}") from None
    _load(prog, vmlinux)
    # Where drgn cannot translate (riscv64), read the fixmap through our own walk;
    # the report header says so (inspect() records it in the snapshot's source).
    note = install_translation(prog)
    install_fdt_window(prog)  # 32-bit Arm: the FDT through the page tables
    if note and isinstance(getattr(prog, "cache", None), dict):
        prog.cache[TRANSLATION_NOTE] = note
    _check_translation(prog, vmcore)
    return prog


def _check_translation(prog: drgn.Program, what: str) -> None:
    """Fail clearly when this drgn cannot translate the dump's kernel addresses.

    drgn 0.0.31-0.0.33 on x86_64 cannot walk arm64 page tables in these dumps
    ("recursive address translation"); every read would fault and the report would
    look like corrupt kernel data. That is an environment problem, not a finding.
    drgn has no riscv64 translation at all (rmem_inspect.arch), and a 32-bit Arm
    dump whose program headers carry physical addresses only (QEMU's
    dump-guest-memory) leaves drgn nothing to start the page-table walk from.
    """
    try:
        prog["init_uts_ns"].name.release.string_()
    except drgn.FaultError as e:
        facts = arch_of(prog)
        name = facts.name if facts is not None else "this architecture"
        if facts is not None and not facts.drgn_translation.startswith("yes"):
            why = (
                f"drgn has no address translation for {name}, and the dump's program headers "
                "do not map the kernel: use a kdump capture (/proc/vmcore), whose headers do"
            )
        elif facts is not None and facts.bits == 32:
            why = (
                "the dump's program headers carry no kernel virtual addresses (QEMU "
                "dump-guest-memory writes physical ones): use a kdump capture (/proc/vmcore)"
            )
        else:
            why = f"reading {name} dumps on another architecture needs drgn >= 0.1.0"
        raise InputError(
            f"drgn {drgn.__version__} cannot read kernel memory in {what} ({e}); {why}"
        ) from None
    except NotImplementedError as e:
        raise InputError(
            f"drgn {drgn.__version__} cannot translate addresses in {what}: {e}"
        ) from None
    except LookupError:
        pass


def _load(prog: drgn.Program, vmlinux: str) -> None:
    # libdrgn warns through the "drgn" logger (e.g. "can't find kernel modules"):
    # the report says what matters in its own words, so keep stray lines off stderr.
    logger = logging.getLogger("drgn")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        _load_debug_info(prog, vmlinux)
    finally:
        logger.setLevel(level)


def _load_debug_info(prog: drgn.Program, vmlinux: str) -> None:
    try:
        prog.load_debug_info([vmlinux])
    except drgn.MissingDebugInfoError:
        pass  # modules without debug info are fine; the kernel's is checked below
    except Exception as e:
        raise InputError(f"cannot load debug info from {vmlinux}: {e}") from None
    try:
        prog.type("struct task_struct")
    except LookupError:
        raise InputError(f"{vmlinux} does not provide the kernel's types") from None


def open_live(vmlinux: str | None = None) -> drgn.Program:
    """A Program on the running kernel (/proc/kcore): needs root."""
    if os.geteuid() != 0:
        raise InputError("live mode reads /proc/kcore and needs root: run with sudo")
    if not os.access("/proc/kcore", os.R_OK):
        raise InputError("/proc/kcore is not readable (CONFIG_PROC_KCORE off or locked down)")
    release = os.uname().release
    build_id = _running_build_id()
    if vmlinux is None:
        vmlinux = find_vmlinux(release, build_id)
        if vmlinux is None:
            raise InputError(
                f"no vmlinux with debug info found for the running kernel {release}; "
                "pass --vmlinux or install the -dbg package"
            )
    _vet_vmlinux(vmlinux, None, build_id)
    prog = drgn.Program()
    try:
        prog.set_kernel()
    except Exception as e:
        raise InputError(f"drgn cannot open the running kernel: {e}") from None
    _load(prog, vmlinux)
    return prog


def open_qemu(socket: str, vmlinux: str | None = None) -> drgn.Program:
    """A Program on a running QEMU guest through its QMP socket (drgn 0.3.0+).

    The guest must run with ``-device vmcoreinfo`` and have ``qemu_fw_cfg`` loaded so
    that drgn can identify the kernel.
    """
    if not hasattr(drgn.Program, "set_qemu_qmp"):
        raise InputError(
            f"the installed drgn {drgn.__version__} cannot attach to QEMU over QMP "
            "(Program.set_qemu_qmp needs drgn 0.3.0 or later)"
        )
    if not os.path.exists(socket):
        raise InputError(f"QMP socket not found: {socket}")
    if vmlinux is None:
        raise InputError("--qemu needs --vmlinux: the vmlinux with debug info of the guest kernel")
    _vet_vmlinux(vmlinux, None, None)
    prog = drgn.Program()
    try:
        prog.set_qemu_qmp(socket)
    except Exception as e:
        raise InputError(f"drgn cannot attach to the QEMU guest at {socket}: {e}") from None
    _load(prog, vmlinux)
    return prog


def _running_build_id() -> str | None:
    path = Path("/sys/kernel/notes")
    try:
        data = path.read_bytes()
    except OSError:
        return None
    from rmem_inspect.collect.elf import NT_GNU_BUILD_ID, _notes

    for name, ntype, desc in _notes(data, little=True):
        if name == "GNU" and ntype == NT_GNU_BUILD_ID:
            return desc.hex()
    return None
