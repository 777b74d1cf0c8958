# SPDX-License-Identifier: GPL-2.0-or-later
"""
inspect
-------

``inspect(prog) -> Snapshot``: run every drgn collector on a program (a crash
dump, the running kernel or a QEMU guest) and gather the results in one
:class:`~rmem_inspect.model.Snapshot`. A collector that fails leaves its field
None and says why in ``Snapshot.missing``; corrupt kernel data never raises.

From the drgn REPL::

    >>> from rmem_inspect import inspect, checks
    >>> snap = inspect(prog)
    >>> for f in checks.run(snap).findings: print(f.code, f.region, f.message)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drgn import FaultError, Program

from rmem_inspect import __version__
from rmem_inspect.errors import InputError
from rmem_inspect.model import KernelInfo, LinearMapCheck, Snapshot

__all__ = ["inspect"]

T = TypeVar("T")
#: What a collector may raise on corrupt or unexpected kernel data.
DATA_ERRORS = (FaultError, LookupError, ValueError, OverflowError, NotImplementedError)


def _guard(snap: Snapshot, source: str, fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except DATA_ERRORS as e:
        snap.missing[source] = f"{type(e).__name__}: {e}"
        return None


def _bounded_string(prog: Program, address: int, limit: int = 4096) -> str | None:
    """The NUL-terminated string at ``address``, read a chunk at a time and at most
    ``limit`` bytes (COMMAND_LINE_SIZE is 2048 on arm64); None for a NULL pointer."""
    if not address:
        return None
    out = b""
    while len(out) < limit:
        at = address + len(out)
        chunk = prog.read(at, min(256, 4096 - at % 4096))  # never across a page unasked
        end = chunk.find(b"\0")
        if end >= 0:
            return (out + chunk[:end]).decode(errors="replace")
        out += chunk
    return out[:limit].decode(errors="replace")


def _kernel_info(prog: Program) -> KernelInfo:
    import drgn

    arch = {"AARCH64": "arm64", "X86_64": "x86_64", "PPC64": "ppc64", "S390X": "s390x",
            "ARM": "arm", "RISCV64": "riscv64"}  # fmt: skip
    try:
        release = prog["init_uts_ns"].name.release.string_().decode()
    except DATA_ERRORS:
        release = "unknown"
    build_id = None
    try:
        info = prog["VMCOREINFO"].string_().decode(errors="replace")
        for line in info.splitlines():
            if line.startswith("BUILD-ID="):
                build_id = line.split("=", 1)[1]
    except DATA_ERRORS:
        pass
    try:
        page_size = prog["PAGE_SIZE"].value_()
    except DATA_ERRORS:
        page_size = 4096
    platform = prog.platform
    name = platform.arch.name if platform is not None else "unknown"
    cmdline = None
    try:
        # char *saved_command_line (init/main.c)
        cmdline = _bounded_string(prog, prog["saved_command_line"].value_())
    except DATA_ERRORS:
        pass
    features_missing = []
    try:
        prog["cma_areas"]  # mm/cma.c, built only with CONFIG_CMA
    except LookupError:
        features_missing.append("CONFIG_CMA")
    return KernelInfo(
        features_missing=features_missing,
        release=release,
        arch=arch.get(name, name.lower()),
        page_size=page_size,
        build_id=build_id,
        drgn_version=drgn.__version__,
        cmdline=cmdline,
    )


def inspect(
    prog: Program,
    *,
    source: dict[str, Any] | None = None,
    linear_map: bool = True,
    full_log: bool = False,
) -> Snapshot:
    """Read everything rmem_inspect checks from ``prog``.

    :param source: What was opened (kind, paths), recorded in the snapshot.
    :param linear_map: Walk the page tables over no-map regions.
    :param full_log: Keep every kernel log line, not only the relevant ones.
    :raises InputError: the kernel has no reserved_mem (CONFIG_OF_RESERVED_MEM off).
    """
    from rmem_inspect.collect.boot_fdt import read_boot_fdt
    from rmem_inspect.collect.cma import (
        read_assigned_devices,
        read_cma_areas,
        read_device_memory,
    )
    from rmem_inspect.collect.devicetree import decode_tree
    from rmem_inspect.collect.kmsg import read_kernel_log
    from rmem_inspect.collect.memblock import read_memblock
    from rmem_inspect.collect.of_tree import read_of_tree
    from rmem_inspect.collect.reserved_mem import NoReservedMem, read_reserved_mem

    snap = Snapshot(kernel=_kernel_info(prog), source=dict(source or {}), tool_version=__version__)
    from rmem_inspect.collect.program import TRANSLATION_NOTE

    translation = getattr(prog, "cache", {}).get(TRANSLATION_NOTE)
    if translation:
        snap.source["translation"] = translation  # shown in the report header
    try:
        snap.reserved_mem = read_reserved_mem(prog)
    except NoReservedMem:
        raise InputError(
            f"kernel {snap.kernel.release} has no reserved_mem: it was built without "
            "CONFIG_OF_RESERVED_MEM, so there are no devicetree carveouts to inspect"
        ) from None
    except DATA_ERRORS as e:
        snap.missing["reserved_mem"] = f"{type(e).__name__}: {e}"
    snap.memblock = _guard(snap, "memblock", lambda: read_memblock(prog))

    errors: list[str] = []
    root = _guard(snap, "of_root", lambda: read_of_tree(prog, errors))
    if root is not None:
        snap.dt = decode_tree(root, "of_root")
        snap.dt.errors.extend(errors)
    elif "of_root" not in snap.missing:
        snap.missing["of_root"] = "; ".join(errors) or "the kernel has no unflattened devicetree"

    errors = []
    snap.fdt = _guard(snap, "fdt", lambda: read_boot_fdt(prog, errors))
    if snap.fdt is None and "fdt" not in snap.missing:
        snap.missing["fdt"] = "; ".join(errors) or "no boot FDT"

    errors = []
    snap.cma = _guard(snap, "cma", lambda: read_cma_areas(prog, errors))
    cma = snap.cma or []
    snap.assigned = _guard(snap, "assigned", lambda: read_assigned_devices(prog, errors))
    snap.devices = _guard(snap, "devices", lambda: read_device_memory(prog, cma, errors))
    if errors:
        snap.missing["devices/cma (partial)"] = "; ".join(errors[:20])

    errors = []
    snap.log = _guard(snap, "log", lambda: read_kernel_log(prog, errors, keep_all=full_log))
    if errors:
        snap.missing["log"] = "; ".join(errors)

    if linear_map:
        snap.linear_map = _guard(snap, "linear_map", lambda: _walk_nomap(prog, snap))
    else:
        snap.missing["linear_map"] = "not requested"
    return snap


def _walk_nomap(prog: Program, snap: Snapshot) -> list[LinearMapCheck]:
    """Page-table walks for every no-map region with a known placement."""
    from rmem_inspect.collect.linear_map import check_linear_map

    dt = snap.fdt or snap.dt
    if dt is None:
        return []
    placed: dict[str, tuple[int, int]] = {}
    for e in snap.reserved_mem.entries if snap.reserved_mem else []:
        if e.name and e.size:
            placed[e.name] = (e.base, e.size)
    out = []
    for r in dt.regions:
        if not (r.nomap and r.available):
            continue
        ranges = list(r.reg)
        if not ranges and r.name in placed:
            ranges = [placed[r.name]]
        for i, (base, size) in enumerate(ranges):
            if size:
                name = r.name if i == 0 else f"{r.name}[{i}]"
                out.append(check_linear_map(prog, name, base, size))
    return out
