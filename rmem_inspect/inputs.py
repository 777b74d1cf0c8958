# SPDX-License-Identifier: GPL-2.0-or-later
"""
inputs
------

Everything rmem_inspect reads, opened in one place: :func:`open_input` turns a
:class:`Source` into an :class:`Input` (a :class:`~rmem_inspect.model.Snapshot`,
or a preflight's :class:`~rmem_inspect.checks.Report`) for every command, the
batch workers, the trace correlation and the drgn script and plugin. It
recognises

- a JSON snapshot written by ``rmem-inspect snapshot`` (``--snapshot``);
- a file named without saying what it is (``diff A B``), by its first bytes: a
  DTB (preflighted for the kernel given), a JSON snapshot, else a crash dump;
- a DTB to preflight (``map --dtb``);
- an ELF or kdump crash dump (``--vmcore``, :mod:`rmem_inspect.collect.program`
  names what it cannot read);
- raw RAM (``--vmcore FILE@PADDR,...``, a ``load.cmm``, a directory of bank files, an
  ELF core without VMCOREINFO: :mod:`rmem_inspect.collect.ramdump`);
- a running QEMU guest through its QMP socket (``--qemu``);
- a drgn :class:`~drgn.Program` already open (the drgn script and plugin);
- the running kernel, falling back to sysfs, debugfs and the kernel log
  (:mod:`rmem_inspect.collect.sysfs`) when drgn has neither a vmlinux nor the
  kernel's kallsyms and BTF, or with ``--no-debug-info``.

Errors the user can fix raise :class:`~rmem_inspect.errors.InputError` with
one line. drgn, the collectors and preflight are imported only for the inputs
that need them, so a snapshot is checked without loading drgn.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rmem_inspect import checks
from rmem_inspect.errors import InputError
from rmem_inspect.model import Snapshot, SnapshotError

if TYPE_CHECKING:
    from drgn import Program

__all__ = [
    "DTB_MAGIC",
    "ELF_MAGIC",
    "ET_CORE",
    "KDUMP_MAGICS",
    "Input",
    "Source",
    "is_dump",
    "load_snapshot",
    "open_input",
    "program_source",
    "read_file",
    "require_kernel",
]

#: The FDT header's magic (big-endian 0xd00dfeed).
DTB_MAGIC = b"\xd0\x0d\xfe\xed"
ELF_MAGIC = b"\x7fELF"
#: kdump-compressed ("KDUMP   ") and flattened ("makedumpfile") makedumpfile output.
KDUMP_MAGICS = (b"KDUMP   ", b"makedumpfile")
#: e_type of an ELF core file.
ET_CORE = 4


def is_dump(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first 18 bytes or more) is a crash dump:
    an ELF core file, or kdump-compressed or flattened makedumpfile output."""
    if head.startswith(ELF_MAGIC) and len(head) >= 18:
        little = head[5] == 1
        e_type = int.from_bytes(head[16:18], "little" if little else "big")
        return e_type == ET_CORE
    return any(head.startswith(m) for m in KDUMP_MAGICS)


def read_file(path: str) -> bytes:
    """The bytes of ``path``; an unreadable file is an InputError naming it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


def load_snapshot(path: str) -> Snapshot:
    """The JSON snapshot ``path`` (``--snapshot``), read as UTF-8 text."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise InputError(f"cannot read snapshot {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise InputError(
            f"{path} is not a valid snapshot: not UTF-8 text (byte {e.start}); "
            "write one with 'rmem-inspect snapshot'"
        ) from None
    try:
        return Snapshot.loads(text)
    except SnapshotError as e:
        raise InputError(f"{path} is not a valid snapshot: {e}") from None


def program_source(prog: Program) -> dict[str, Any]:
    """What ``prog`` was opened on, as ``rmem-inspect`` records it in the report."""
    import drgn

    if prog.flags & drgn.ProgramFlags.IS_LIVE:
        # The running kernel is local; a live kernel elsewhere is a QEMU guest over QMP
        # (drgn --qemu), whose socket drgn does not expose.
        return {"kind": "live" if prog.flags & drgn.ProgramFlags.IS_LOCAL else "qemu"}
    path = getattr(prog, "core_dump_path", None)  # drgn >= 0.0.33
    if path:
        return {"kind": "vmcore", "vmcore": os.path.abspath(path)}
    return {"kind": "vmcore"}


def require_kernel(prog: Program) -> None:
    """A drgn program opened by someone else must be a kernel with debug info."""
    import drgn

    if not prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL:
        raise InputError("the drgn program is not a Linux kernel (open a vmcore or /proc/kcore)")
    try:
        prog.type("struct task_struct")
    except LookupError:
        raise InputError(
            "drgn has no debug info for this kernel: pass -s VMLINUX (the vmlinux from the "
            "-dbg package)"
        ) from None


@dataclass(frozen=True)
class Source:
    """What to read. The first of ``program``, ``snapshot``, ``file`` and ``dtb`` that is
    set wins; without any, ``qemu``, ``vmcore`` or the running kernel."""

    #: A drgn program already open on a kernel (the drgn script and plugin).
    program: Program | None = None
    #: A JSON snapshot (``--snapshot``).
    snapshot: str | None = None
    #: A file recognised by its first bytes: DTB, JSON snapshot or crash dump.
    file: str | None = None
    #: A DTB to preflight with ``kernel``.
    dtb: str | None = None
    #: An ELF or kdump crash dump.
    vmcore: str | None = None
    #: A QEMU guest's QMP socket.
    qemu: str | None = None
    vmlinux: str | None = None
    #: Where types and symbols come from: auto, dwarf or btf.
    types: str = "auto"
    #: The kernel (version or layout) a DTB is preflighted with.
    kernel: str | None = None
    #: The option that gives ``kernel``, named when a recognised DTB has none.
    kernel_option: str = "--kernel"
    #: The running kernel read from sysfs, debugfs and the log, not with drgn.
    no_debug_info: bool = False
    #: The running kernel without a vmlinux and without usable kallsyms/BTF: read sysfs.
    sysfs_fallback: bool = True
    #: Walk the page tables over no-map regions.
    linear_map: bool = True
    #: Keep the kernel's BTF index per build-id in the user's cache (``--no-cache``).
    cache: bool = True
    #: Say on stderr how symbols and types were found (``--verbose``).
    verbose: bool = False
    #: Raw RAM: the KASLR offset (``--kaslr``, hexadecimal) and the VA size in use
    #: (``--vabits``), crash's overrides.
    kaslr: str | None = None
    vabits: int | None = None


@dataclass
class Input:
    """What :func:`open_input` read: a snapshot, or a preflight's report (a DTB)."""

    snapshot: Snapshot | None = None
    preflight_report: checks.Report | None = None

    def report(self) -> checks.Report:
        """The checks' report: the preflight's, or :func:`checks.run` on the snapshot."""
        if self.preflight_report is not None:
            return self.preflight_report
        assert self.snapshot is not None
        return checks.run(self.snapshot)


def _preflight(path: str, kernel: str) -> Input:
    from rmem_inspect.preflight import preflight  # only DTB inputs need it

    report = preflight(read_file(path), kernel, source=os.path.abspath(path)).report
    return Input(preflight_report=report)


def _sysfs() -> Snapshot:
    from rmem_inspect.collect.sysfs import read_sysfs

    return read_sysfs()


def _inspect(prog: Program, source: dict[str, Any], linear_map: bool) -> Input:
    from rmem_inspect.collect.snapshot import inspect

    return Input(snapshot=inspect(prog, source=source, linear_map=linear_map))


def _open_file(src: Source, path: str, on_program: Callable[[Program], None] | None) -> Input:
    """A file named without its kind: DTB, JSON snapshot or crash dump, by its first bytes."""
    if not os.path.isfile(path):
        raise InputError(f"not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == DTB_MAGIC:
        if not src.kernel:
            raise InputError(
                f"{path} is a DTB: say which kernel to preflight it with "
                f"({src.kernel_option} KERNEL)"
            )
        return _preflight(path, src.kernel)
    if head.lstrip()[:1] == b"{":
        try:
            return Input(snapshot=Snapshot.loads(read_file(path).decode(errors="replace")))
        except SnapshotError as e:
            raise InputError(f"{path} is not a valid snapshot: {e}") from None
    return _open_drgn(src, path, on_program)


def _say_how(prog: Program) -> None:
    """``--verbose``: how symbols and types were found, on stderr."""
    from rmem_inspect.collect.kallsyms_finder import NOTE_KEY
    from rmem_inspect.collect.without_vmlinux import BTF_INDEX_NOTE

    for key in (NOTE_KEY, BTF_INDEX_NOTE):
        note = prog.cache.get(key)
        if note:
            print(f"rmem-inspect: {note}", file=sys.stderr)


def _is_ramdump(vmcore: str) -> bool:
    from rmem_inspect.collect.ramdump import is_ramdump

    return is_ramdump(vmcore)


def _open_ramdump(src: Source, vmcore: str) -> tuple[Program, dict[str, Any]]:
    from rmem_inspect.collect.ramdump_program import RamdumpOptions, open_ramdump, parse_kaslr

    kaslr = parse_kaslr(src.kaslr) if src.kaslr is not None else None
    opts = RamdumpOptions(kaslr=kaslr, vabits=src.vabits)
    return open_ramdump(vmcore, src.vmlinux, src.types, opts)


def _open_drgn(
    src: Source, vmcore: str | None, on_program: Callable[[Program], None] | None
) -> Input:
    """A dump, a QEMU guest or the running kernel, read with drgn."""
    from rmem_inspect.collect.btf_cache import ENABLED

    token = ENABLED.set(src.cache)
    try:
        return _open_drgn_program(src, vmcore, on_program)
    finally:
        ENABLED.reset(token)


def _open_drgn_program(
    src: Source, vmcore: str | None, on_program: Callable[[Program], None] | None
) -> Input:
    from rmem_inspect.collect.program import open_live, open_qemu, open_vmcore

    raw = bool(vmcore) and _is_ramdump(str(vmcore))
    if (src.kaslr is not None or src.vabits is not None) and not raw:
        what = f"{vmcore} carries its own VMCOREINFO" if vmcore else "no raw RAM was given"
        raise InputError(f"--kaslr and --vabits apply to raw RAM dumps only; {what}")
    if src.qemu and not vmcore:
        prog = open_qemu(src.qemu, src.vmlinux)
        source: dict[str, Any] = {"kind": "qemu", "qmp": os.path.abspath(src.qemu)}
    elif vmcore and raw:
        prog, source = _open_ramdump(src, vmcore)
    elif vmcore:
        prog = open_vmcore(vmcore, src.vmlinux, src.types)
        source = {"kind": "vmcore", "vmcore": os.path.abspath(vmcore)}
    else:
        try:
            prog = open_live(src.vmlinux, src.types)
        except InputError as e:
            if src.vmlinux or src.types != "auto" or not src.sysfs_fallback:
                raise
            # no vmlinux, and no usable kallsyms/BTF: the sysfs/debugfs fallback
            snap = _sysfs()
            snap.source["why_not_drgn"] = str(e)
            return Input(snapshot=snap)
        source = {"kind": "live"}
    if src.verbose:
        _say_how(prog)
    if on_program is not None:
        on_program(prog)
    return _inspect(prog, source, src.linear_map)


def open_input(src: Source, *, on_program: Callable[[Program], None] | None = None) -> Input:
    """Read ``src``.

    :param on_program: Called with the drgn program once a dump, guest or running
        kernel is open, before it is read (the batch records where its debug info
        came from).
    :raises InputError: one line the user can act on.
    """
    if src.program is not None:
        require_kernel(src.program)
        return _inspect(src.program, program_source(src.program), src.linear_map)
    if src.snapshot:
        return Input(snapshot=load_snapshot(src.snapshot))
    if src.file:
        return _open_file(src, src.file, on_program)
    if src.dtb:
        if not src.kernel:
            raise InputError(f"{src.dtb} is a DTB: say which kernel to preflight it with "
                             f"({src.kernel_option} KERNEL)")  # fmt: skip
        return _preflight(src.dtb, src.kernel)
    if src.no_debug_info and not (src.vmcore or src.qemu):
        return Input(snapshot=_sysfs())
    return _open_drgn(src, src.vmcore, on_program)
