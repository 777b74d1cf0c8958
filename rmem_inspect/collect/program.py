# SPDX-License-Identifier: GPL-2.0-or-later
"""
program
-------

Open a drgn :class:`~drgn.Program` on a crash dump or the running kernel, after
vetting the inputs so that every problem becomes one clear
:class:`~rmem_inspect.errors.InputError` sentence: missing or truncated dump,
kdump-compressed QEMU output (arm64), broken kexec ELF headers, VMCOREINFO
missing, another architecture, a vmlinux without DWARF or with a different
build-id (both named). Every format kdump writes is read: ELF, kdump-compressed
(zlib, lzo, snappy, zstd as the drgn build has them), filtered, flattened.

Without ``--vmlinux`` the vmlinux is looked up by the kernel's build-id on disk
(:func:`find_vmlinux`) and, when ``$DEBUGINFOD_URLS`` is set, on those debuginfod
servers (:func:`debuginfod_vmlinux`); whatever is found is vetted like a given one.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import drgn

from rmem_inspect.collect.arm_fdt import install_fdt_window
from rmem_inspect.collect.riscv_mmu import install_translation
from rmem_inspect.errors import InputError
from rmem_inspect.formats.elf import ElfError, ElfInfo, read_elf
from rmem_inspect.formats.kdump import (
    KdumpError,
    KdumpHeader,
    is_flattened,
    read_kdump,
    reassemble,
)
from rmem_inspect.kernel.arch import ARCHES, arch_for_machine, arch_of

__all__ = [
    "BTF_INDEX_NOTE",
    "DUMP_CACHE_KEY",
    "TRANSLATION_NOTE",
    "debug_search_paths",
    "debuginfod_vmlinux",
    "dump_description",
    "fetch_debuginfod",
    "find_vmlinux",
    "open_live",
    "open_qemu",
    "open_vmcore",
    "open_without_vmlinux",
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


def debuginfod_vmlinux(
    build_id: str | None, attach: Callable[[drgn.Program], None] | None = None
) -> str | None:
    """The vmlinux with ``build_id`` from the servers in ``$DEBUGINFOD_URLS``, or None.

    drgn's own ``debuginfod`` debug info finder (libdebuginfod) when this drgn has
    one (``Program.registered_debug_info_finders``, drgn 0.0.31+) and ``attach`` can
    point a Program at the kernel; otherwise, or when it finds nothing, the
    debuginfod web API (:func:`fetch_debuginfod`).
    """
    urls = os.environ.get("DEBUGINFOD_URLS", "").split()
    if not urls or not build_id:
        return None
    if attach is not None:
        path = _drgn_debuginfod(attach)
        if path is not None:
            return path
    return fetch_debuginfod(build_id, urls)


def _drgn_debuginfod(attach: Callable[[drgn.Program], None]) -> str | None:
    prog = drgn.Program()
    try:
        if "debuginfod" not in prog.registered_debug_info_finders():
            return None
    except AttributeError:  # drgn < 0.0.31: no debug info finder API
        return None
    log = logging.getLogger("drgn")
    level = log.level
    log.setLevel(logging.CRITICAL)  # "missing debugging symbols": we say it ourselves
    try:
        attach(prog)
        prog.set_enabled_debug_info_finders(["debuginfod"])
        try:
            prog.load_debug_info(main=True)
        except drgn.MissingDebugInfoError:
            pass
        path = prog.main_module().debug_file_path
    except Exception:  # any failure here only means: try the web API
        return None
    finally:
        log.setLevel(level)
    return path if isinstance(path, str) else None


def fetch_debuginfod(build_id: str, urls: Iterable[str], timeout: float = 90.0) -> str | None:
    """GET ``URL/buildid/BUILD_ID/debuginfo`` from each server in turn (the debuginfod
    web API, debuginfod(8)) into the client cache libdebuginfod uses
    (``$DEBUGINFOD_CACHE_PATH``, else ~/.cache/debuginfod_client); the path, or None."""
    if not re.fullmatch(r"[0-9a-f]{8,128}", build_id):
        return None
    cache = os.environ.get("DEBUGINFOD_CACHE_PATH") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "debuginfod_client"
    )
    path = os.path.join(cache, build_id, "debuginfo")
    if os.path.isfile(path) and os.path.getsize(path) > 0:  # empty: libdebuginfod's "404"
        return path
    for url in urls:
        try:
            with urllib.request.urlopen(
                f"{url.rstrip('/')}/buildid/{build_id}/debuginfo", timeout=timeout
            ) as resp:
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                tmp = f"{path}.{os.getpid()}.part"
                with open(tmp, "wb") as f:
                    while chunk := resp.read(1 << 20):
                        f.write(chunk)
                os.replace(tmp, path)
                return path
        except (urllib.error.URLError, OSError, ValueError):
            continue
    return None


def _vet_dump(path: str) -> ElfInfo | KdumpHeader:
    """Vet ``path`` and say what it is: an ELF core (QEMU, /proc/vmcore, makedumpfile -E)
    or a kdump-compressed dump (makedumpfile -c/-l/-p/-z). Flattened files (-F) come here
    already reassembled (:func:`open_vmcore`)."""
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


def _vet_vmlinux(path: str, dump: ElfInfo | KdumpHeader | None, build_id: str | None) -> None:
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
        flat_elf = False  # _vet_dump names the problem
    if flat_elf:
        with _reassembled(vmcore) as plain:
            prog = _open_plain(plain, vmlinux, types, vmcore, "flattened ELF")
        return prog
    return _open_plain(vmcore, vmlinux, types, vmcore, None)


@contextlib.contextmanager
def _reassembled(path: str) -> Iterator[str]:
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
    info = _vet_dump(path)
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
            _vet_arch(info, shown)
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
                    f"{_debuginfod_note()}, and {e}"
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
                + _debuginfod_note()
                + "; pass --vmlinux (Debian: the linux-image-*-dbg package)"
            )
    _vet_vmlinux(vmlinux, info, build_id)  # names a vmlinux of another arch first
    _vet_arch(info, shown)
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


def _vet_arch(info: ElfInfo | KdumpHeader, shown: str) -> None:
    if info.machine and arch_for_machine(info.machine) is None:
        raise InputError(
            f"{shown} is a {info.arch} dump: this tool reads devicetree kernels on "
            f"{', '.join(sorted(ARCHES))} only"
        )


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


def _debuginfod_note() -> str:
    urls = os.environ.get("DEBUGINFOD_URLS", "").split()
    if urls:
        return " on disk or on the debuginfod servers " + " ".join(urls)
    return " (set DEBUGINFOD_URLS to ask debuginfod servers too)"


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
    build_id = _running_build_id()
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
                    f"{_debuginfod_note()}, and {e}"
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
                + _debuginfod_note()
                + "; pass --vmlinux or install the -dbg package"
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


def open_without_vmlinux(prog: drgn.Program, what: str, release: str) -> None:
    """Give ``prog`` symbols from the kernel's kallsyms and types from its BTF.

    Each way this can fail is one sentence: drgn without a kallsyms loader, kallsyms
    this drgn cannot read, a kernel whose kallsyms lists no data symbols
    (CONFIG_KALLSYMS_ALL off), a kernel without BTF, a BTF blob that is not valid.
    """
    from rmem_inspect.collect.btf_cache import load_btf
    from rmem_inspect.collect.kallsyms_finder import install_kallsyms, vmcoreinfo
    from rmem_inspect.collect.kernel_btf import (
        KernelSymbols,
        btf_blob_from_image,
        install,
    )
    from rmem_inspect.formats.btf import BtfError

    try:
        install_kallsyms(prog)  # the kernel's tables; drgn's loader where unrecognised
        prog.symbol("_stext")
    except ImportError:
        raise InputError(
            f"drgn {drgn.__version__} has no kallsyms loader (drgn.helpers.linux.kallsyms, "
            "drgn 0.0.30+), so it cannot read this kernel without a vmlinux: pass --vmlinux"
        ) from None
    except drgn.FaultError as e:  # as in _check_translation(): no address translation
        raise InputError(
            f"drgn {drgn.__version__} cannot read kernel memory in {what} ({e}); "
            "reading arm64 dumps on another architecture needs drgn >= 0.1.0"
        ) from None
    except Exception as e:  # drgn raises LookupError/ValueError/OSError here
        raise InputError(
            f"drgn {drgn.__version__} could not read the kallsyms of {what} ({e}); drgn "
            "releases before 0.1.0 cannot read the kallsyms of 7.x kernels: use a newer drgn "
            "or pass --vmlinux"
        ) from None
    if not prog.symbols("memblock"):
        raise InputError(
            f"the kallsyms of kernel {release} lists no data symbols (memblock, reserved_mem: "
            "the kernel was built without CONFIG_KALLSYMS_ALL), so a vmlinux with debug info "
            "is needed for this kernel: pass --vmlinux"
        )
    info = KernelSymbols()
    try:
        if prog.flags & drgn.ProgramFlags.IS_LIVE and os.path.exists(LIVE_BTF):
            with open(LIVE_BTF, "rb") as f:
                blob = f.read()
            info.btf_source = LIVE_BTF
        else:
            blob = btf_blob_from_image(prog)
            info.btf_source = "__start_BTF..__stop_BTF"
    except LookupError:
        raise InputError(
            f"kernel {release} has no BTF (__start_BTF is not in its kallsyms: built without "
            "CONFIG_DEBUG_INFO_BTF), so a vmlinux with debug info is needed: pass --vmlinux"
        ) from None
    except (OSError, drgn.FaultError, BtfError) as e:
        raise InputError(f"cannot read the BTF of {what}: {e}; pass --vmlinux") from None
    try:
        btf, how = load_btf(blob, vmcoreinfo(prog).get("BUILD-ID"))
    except BtfError as e:
        raise InputError(f"the BTF of {what} is not valid: {e}; pass --vmlinux") from None
    prog.cache[BTF_INDEX_NOTE] = how
    info.btf_bytes = len(blob)
    install(prog, btf, info)


#: ``prog.cache`` key of one sentence saying where the BTF index came from.
BTF_INDEX_NOTE = "rmem_inspect.btf_index"
#: The running kernel's BTF (CONFIG_DEBUG_INFO_BTF, kernel/bpf/sysfs_btf.c).
LIVE_BTF = "/sys/kernel/btf/vmlinux"


def _running_build_id() -> str | None:
    path = Path("/sys/kernel/notes")
    try:
        data = path.read_bytes()
    except OSError:
        return None
    from rmem_inspect.formats.elf import NT_GNU_BUILD_ID, parse_notes

    for name, ntype, desc in parse_notes(data, little=True):
        if name == "GNU" and ntype == NT_GNU_BUILD_ID:
            return desc.hex()
    return None
