# SPDX-License-Identifier: GPL-2.0-or-later
"""
without_vmlinux
---------------

Read a kernel without its vmlinux: give a drgn :class:`~drgn.Program` symbols from
the kernel's own kallsyms (:mod:`rmem_inspect.collect.kallsyms_finder`) and types from
its BTF (:mod:`rmem_inspect.collect.kernel_btf`, the index cached per build-id by
:mod:`rmem_inspect.collect.btf_cache`),
the BTF read from the image (``__start_BTF``..``__stop_BTF``) or, live, from
:data:`LIVE_BTF`. Each way this fails is one
:class:`~rmem_inspect.errors.InputError` sentence naming what to pass instead.
"""

from __future__ import annotations

import os

import drgn

from rmem_inspect.collect.btf_cache import load_btf
from rmem_inspect.collect.kallsyms_finder import install_kallsyms, vmcoreinfo
from rmem_inspect.collect.kernel_btf import KernelSymbols, btf_blob_from_image, install
from rmem_inspect.errors import InputError
from rmem_inspect.formats.btf import BtfError

__all__ = [
    "BTF_INDEX_NOTE",
    "LIVE_BTF",
    "open_without_vmlinux",
]

#: ``prog.cache`` key of one sentence saying where the BTF index came from.
BTF_INDEX_NOTE = "rmem_inspect.btf_index"


def open_without_vmlinux(prog: drgn.Program, what: str, release: str) -> None:
    """Give ``prog`` symbols from the kernel's kallsyms and types from its BTF.

    Each way this can fail is one sentence: drgn without a kallsyms loader, kallsyms
    this drgn cannot read, a kernel whose kallsyms lists no data symbols
    (CONFIG_KALLSYMS_ALL off), a kernel without BTF, a BTF blob that is not valid.
    """
    try:
        install_kallsyms(prog)  # the kernel's tables; drgn's loader where unrecognised
        prog.symbol("_stext")
    except ImportError:
        raise InputError(
            f"drgn {drgn.__version__} has no kallsyms loader (drgn.helpers.linux.kallsyms, "
            "drgn 0.0.30+), so it cannot read this kernel without a vmlinux: pass --vmlinux"
        ) from None
    except drgn.FaultError as e:  # as in program._check_translation(): no address translation
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
        btf, how = load_btf(blob, _build_id(prog))
    except BtfError as e:
        raise InputError(f"the BTF of {what} is not valid: {e}; pass --vmlinux") from None
    prog.cache[BTF_INDEX_NOTE] = how
    info.btf_bytes = len(blob)
    install(prog, btf, info)


def _build_id(prog: drgn.Program) -> str | None:
    """VMCOREINFO's BUILD-ID, the BTF index cache's key (None: no cache)."""
    try:
        return vmcoreinfo(prog).get("BUILD-ID")
    except (LookupError, ValueError, drgn.FaultError):
        return None


#: The running kernel's BTF (CONFIG_DEBUG_INFO_BTF, kernel/bpf/sysfs_btf.c).
LIVE_BTF = "/sys/kernel/btf/vmlinux"
