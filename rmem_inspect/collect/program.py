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
import os
from collections.abc import Iterable
from pathlib import Path

import drgn

from rmem_inspect.collect.elf import ElfError, ElfInfo, read_elf
from rmem_inspect.errors import InputError

__all__ = [
    "debug_search_paths",
    "find_vmlinux",
    "open_live",
    "open_vmcore",
]


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


def _vet_dump(path: str) -> ElfInfo:
    if not os.path.exists(path):
        raise InputError(f"dump not found: {path}")
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise InputError(f"dump not readable: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"KDUMP"):
        raise InputError(
            f"{path} is kdump-compressed; QEMU's compressed arm64 dumps (dump-guest-memory -z) "
            "cannot be translated by libkdumpfile: dump again without -z to get an ELF vmcore"
        )
    try:
        info = read_elf(path)
    except ElfError as e:
        raise InputError(f"{path} is not a usable ELF crash dump: {e}") from None
    if info.type != 4:
        raise InputError(f"{path} is an ELF file but not a core dump (e_type {info.type})")
    if info.described_size > info.file_size:
        raise InputError(
            f"{path} is truncated: {info.file_size} bytes, its headers describe "
            f"{info.described_size}"
        )
    if info.vmcoreinfo is None:
        raise InputError(
            f"{path} has no VMCOREINFO note, so the kernel cannot be identified (for QEMU "
            "guests: load qemu_fw_cfg and add -device vmcoreinfo before dumping)"
        )
    return info


def _vet_vmlinux(path: str, dump: ElfInfo | None, build_id: str | None) -> None:
    if not os.path.isfile(path):
        raise InputError(f"vmlinux not found: {path}")
    try:
        vm = read_elf(path, sections=True)
    except (OSError, ElfError) as e:
        raise InputError(f"{path} is not a usable vmlinux: {e}") from None
    if dump is not None and vm.machine != dump.machine:
        raise InputError(f"architecture mismatch: the dump is {dump.arch}, {path} is {vm.arch}")
    if not vm.has_dwarf:
        raise InputError(
            f"{path} has no debug info (.debug_info): use the vmlinux from the -dbg package"
        )
    if build_id and vm.build_id and vm.build_id != build_id:
        raise InputError(
            f"vmlinux build-id {vm.build_id} does not match the kernel's {build_id}: "
            f"{path} is from another build"
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
    prog = drgn.Program()
    try:
        prog.set_core_dump(vmcore)
    except Exception as e:  # drgn raises OSError/ValueError/NotImplementedError
        raise InputError(f"drgn cannot open {vmcore}: {e}") from None
    _load(prog, vmlinux)
    return prog


def _load(prog: drgn.Program, vmlinux: str) -> None:
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
