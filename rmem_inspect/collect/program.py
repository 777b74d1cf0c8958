# SPDX-License-Identifier: GPL-2.0-or-later
"""
program
-------

Open a drgn :class:`~drgn.Program` on a crash dump (:func:`open_vmcore`), the
running kernel (:func:`open_live`) or a QEMU guest (:func:`open_qemu`): the dump and
the vmlinux are vetted first (:mod:`rmem_inspect.collect.vetting`), so that every
problem becomes one clear :class:`~rmem_inspect.errors.InputError` sentence. Every
format kdump writes is read: ELF, kdump-compressed (zlib, lzo, snappy, zstd as the
drgn build has them), filtered, flattened.

Without ``--vmlinux`` the vmlinux is looked up by the kernel's build-id on disk and
on debuginfod servers (:mod:`rmem_inspect.collect.debuginfo`); with none found (or
``--types btf``) the kernel's kallsyms and BTF are read instead
(:mod:`rmem_inspect.collect.without_vmlinux`). Then this module checks that the
dump's kernel addresses translate, and records in ``prog.cache`` what the dump is
(:func:`dump_description`) and how addresses are translated (:data:`TRANSLATION_NOTE`).
"""

from __future__ import annotations

import contextlib
import logging
import os

import drgn

from rmem_inspect.collect.arm_fdt import install_fdt_window
from rmem_inspect.collect.debuginfo import (
    debuginfod_note,
    debuginfod_vmlinux,
    find_vmlinux,
    running_build_id,
)
from rmem_inspect.collect.riscv_mmu import install_translation
from rmem_inspect.collect.vetting import reassembled, vet_arch, vet_dump, vet_vmlinux
from rmem_inspect.collect.without_vmlinux import open_without_vmlinux
from rmem_inspect.errors import InputError
from rmem_inspect.formats.elf import ElfInfo
from rmem_inspect.formats.kdump import KdumpError, KdumpHeader, is_flattened, read_kdump
from rmem_inspect.kernel.arch import arch_of

__all__ = [
    "DUMP_CACHE_KEY",
    "TRANSLATION_NOTE",
    "dump_description",
    "open_live",
    "open_qemu",
    "open_vmcore",
]


#: ``Program.cache`` key of the sentence saying how addresses are translated, when
#: not by drgn alone.
TRANSLATION_NOTE = "rmem_inspect.translation"


def open_vmcore(vmcore: str, vmlinux: str | None = None, types: str = "auto") -> drgn.Program:
    """A Program on ``vmcore`` with the matching vmlinux's debug info loaded, or,
    without a vmlinux (or with ``types="btf"``), with the kernel's kallsyms and BTF.

    ``vmcore`` is any dump kdump writes: ELF, kdump-compressed, filtered, flattened.
    libkdumpfile reads flattened kdump-compressed files itself; a flattened ELF file
    (makedumpfile -E -F) is reassembled into a temporary sparse file first (never in
    place), which is unlinked once drgn holds it open. What the dump is goes into
    ``prog.cache[DUMP_CACHE_KEY]`` (see :func:`dump_description`).

    :param types: ``"dwarf"`` needs a vmlinux; ``"btf"`` reads the kernel's own kallsyms
        and BTF; ``"auto"`` takes the vmlinux when one is given or found, else kallsyms
        and BTF (``--types``).
    """
    try:
        with open(vmcore, "rb") as f:
            flattened = is_flattened(f.read(16))
        flat_elf = flattened and read_kdump(vmcore) is None
    except (OSError, KdumpError):
        flat_elf = False  # vet_dump names the problem
    if flat_elf:
        with reassembled(vmcore) as plain:
            prog = _open_plain(plain, vmlinux, types, vmcore, "flattened ELF")
        return prog
    return _open_plain(vmcore, vmlinux, types, vmcore, None)


#: ``prog.cache`` key of the dump's description (format, compression, dump level).
DUMP_CACHE_KEY = "rmem_inspect.dump"


def dump_description(prog: drgn.Program) -> dict[str, object] | None:
    """What the dump ``prog`` reads is: ``format`` ("ELF", "kdump-compressed", ...),
    ``compression``, ``dump_level`` (None: not filtered, or unknown for ELF) and, for
    kdump-compressed dumps, the header (:class:`KdumpHeader`, for the page bitmap)."""
    try:
        desc = prog.cache.get(DUMP_CACHE_KEY)
    except AttributeError:
        return None
    return desc if isinstance(desc, dict) else None


def _open_plain(
    path: str, vmlinux: str | None, types: str, shown: str, flat: str | None
) -> drgn.Program:
    info = vet_dump(path)
    assert info.vmcoreinfo is not None
    release = info.vmcoreinfo.get("OSRELEASE", "")
    build_id = info.vmcoreinfo.get("BUILD-ID")
    if types == "btf" or (types == "auto" and vmlinux is None):
        found = (
            None
            if types == "btf"
            else find_vmlinux(release, build_id)
            or debuginfod_vmlinux(build_id, lambda p: p.set_core_dump(path))
        )
        if found is None:
            vet_arch(info, shown)
            prog = drgn.Program()
            try:
                prog.set_core_dump(path)
            except Exception as e:  # drgn raises OSError/ValueError/NotImplementedError
                raise InputError(f"drgn cannot open {shown}: {e}") from None
            _describe(prog, info, flat, shown)
            try:
                open_without_vmlinux(prog, shown, release)
            except InputError as e:
                if types == "btf":
                    raise
                raise InputError(
                    f"no vmlinux with debug info found for {release} (build-id {build_id})"
                    f"{debuginfod_note()}, and {e}"
                ) from None
            _finish(prog, shown)
            return prog
        vmlinux = found
    if vmlinux is None:
        vmlinux = find_vmlinux(release, build_id) or debuginfod_vmlinux(
            build_id, lambda p: p.set_core_dump(path)
        )
        if vmlinux is None:
            raise InputError(
                f"no vmlinux with debug info found for {release} (build-id {build_id})"
                + debuginfod_note()
                + "; pass --vmlinux (Debian: the linux-image-*-dbg package)"
            )
    vet_vmlinux(vmlinux, info, build_id)  # names a vmlinux of another arch first
    vet_arch(info, shown)
    prog = drgn.Program()
    try:
        prog.set_core_dump(path)
    except Exception as e:  # drgn raises OSError/ValueError/NotImplementedError
        raise InputError(f"drgn cannot open {shown}: {e}") from None
    _describe(prog, info, flat, shown)
    _load(prog, vmlinux)
    _finish(prog, shown)
    return prog


def _finish(prog: drgn.Program, shown: str) -> None:
    """Once symbols are loaded: where drgn cannot translate (riscv64), read the fixmap
    through our own walk (the report header says so: inspect() records it in the
    snapshot's source); on 32-bit Arm, the FDT through the page tables; then check that
    the dump translates at all."""
    note = install_translation(prog)
    install_fdt_window(prog)
    if note and isinstance(getattr(prog, "cache", None), dict):
        prog.cache[TRANSLATION_NOTE] = note
    _check_translation(prog, shown)


def _describe(
    prog: drgn.Program, info: ElfInfo | KdumpHeader, flat: str | None, shown: str
) -> None:
    """Record what the dump is in ``prog.cache`` and, for kdump-compressed dumps, make
    sure its pages decompress before anything else reads them."""
    desc: dict[str, object]
    if isinstance(info, KdumpHeader):
        desc = {
            "format": info.format_name.split(" (")[0],
            "compression": info.compression,
            "dump_level": info.dump_level,
            "header": info,
        }
    else:
        desc = {"format": flat or "ELF", "compression": "none", "dump_level": None}
    with contextlib.suppress(AttributeError):
        prog.cache[DUMP_CACHE_KEY] = desc
    if isinstance(info, KdumpHeader):
        _check_pages(prog, info, shown)


def _check_pages(prog: drgn.Program, kd: KdumpHeader, what: str) -> None:
    """Before the debug info is loaded (its module lookup would log every failed read),
    read the page holding ``init_uts_ns`` (VMCOREINFO's ``SYMBOL(init_uts_ns)``, written
    by kernel/crash_core.c) to find pages libkdumpfile cannot decompress."""
    try:
        addr = int((kd.vmcoreinfo or {}).get("SYMBOL(init_uts_ns)", ""), 16)
        prog.read(addr, 8)
    except ValueError:
        return
    except drgn.FaultError as e:
        if "compression" in str(e).lower():
            # libkdumpfile (src/kdumpfile/diskdump.c): "Unsupported compression method"
            # when built without it, "Decompression failed" on damaged page data.
            raise InputError(
                f"drgn {drgn.__version__} cannot decompress the {kd.compression} pages of "
                f"{what} ({e}): the dump is damaged, or this drgn's libkdumpfile lacks "
                f"{kd.compression}; recompress it with makedumpfile (-c zlib, -l lzo, -z zstd)"
            ) from None


def _check_translation(prog: drgn.Program, what: str) -> None:
    """Fail clearly when this drgn cannot translate the dump's kernel addresses.

    drgn 0.0.31-0.0.33 on x86_64 cannot walk arm64 page tables in these dumps
    ("recursive address translation"); every read would fault and the report would
    look like corrupt kernel data. That is an environment problem, not a finding.
    drgn has no riscv64 translation at all (rmem_inspect.kernel.arch), and a 32-bit Arm
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


def open_live(vmlinux: str | None = None, types: str = "auto") -> drgn.Program:
    """A Program on the running kernel (/proc/kcore): needs root. Without a vmlinux
    (or with ``types="btf"``): /proc/kallsyms and /sys/kernel/btf/vmlinux."""
    if os.geteuid() != 0:
        raise InputError("live mode reads /proc/kcore and needs root: run with sudo")
    if not os.access("/proc/kcore", os.R_OK):
        raise InputError("/proc/kcore is not readable (CONFIG_PROC_KCORE off or locked down)")
    release = os.uname().release
    build_id = running_build_id()
    if types == "btf" or (types == "auto" and vmlinux is None):
        found = (
            None
            if types == "btf"
            else find_vmlinux(release, build_id)
            or debuginfod_vmlinux(build_id, lambda p: p.set_kernel())
        )
        if found is None:
            prog = drgn.Program()
            try:
                prog.set_kernel()
            except Exception as e:
                raise InputError(f"drgn cannot open the running kernel: {e}") from None
            try:
                open_without_vmlinux(prog, "the running kernel", release)
            except InputError as e:
                if types == "btf":
                    raise
                raise InputError(
                    f"no vmlinux with debug info found for the running kernel {release}"
                    f"{debuginfod_note()}, and {e}"
                ) from None
            return prog
        vmlinux = found
    if vmlinux is None:
        vmlinux = find_vmlinux(release, build_id) or debuginfod_vmlinux(
            build_id, lambda p: p.set_kernel()
        )
        if vmlinux is None:
            raise InputError(
                f"no vmlinux with debug info found for the running kernel {release}"
                + debuginfod_note()
                + "; pass --vmlinux or install the -dbg package"
            )
    vet_vmlinux(vmlinux, None, build_id)
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
    vet_vmlinux(vmlinux, None, None)
    prog = drgn.Program()
    try:
        prog.set_qemu_qmp(socket)
    except Exception as e:
        raise InputError(f"drgn cannot attach to the QEMU guest at {socket}: {e}") from None
    _load(prog, vmlinux)
    return prog
