# SPDX-License-Identifier: GPL-2.0-or-later
"""
collect.snapshot
----------------

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

from rmem_inspect.errors import InputError
from rmem_inspect.kernel.layouts import Layout
from rmem_inspect.model import KernelInfo, LinearMapCheck, Snapshot
from rmem_inspect.version import __version__

__all__ = ["inspect", "kernel_info_of", "walk_nomap"]

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


def kernel_info_of(prog: Program) -> KernelInfo:
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
    from rmem_inspect.collect.kmsg import read_kernel_log
    from rmem_inspect.collect.memblock import read_memblock
    from rmem_inspect.collect.of_tree import read_of_tree
    from rmem_inspect.collect.reserved_mem import NoReservedMem, read_reserved_mem
    from rmem_inspect.collect.rmem_handlers import read_rmem_handlers
    from rmem_inspect.formats.devicetree import decode_tree

    snap = Snapshot(
        kernel=kernel_info_of(prog), source=dict(source or {}), tool_version=__version__
    )
    _record_debug_info(prog, snap)
    handlers = _guard(snap, "rmem_handlers", lambda: read_rmem_handlers(prog))
    if handlers is not None:
        snap.kernel.rmem_handlers, snap.source["rmem_handlers"] = handlers

    if snap.source.get("kind") == "vmcore" and snap.source.get("vmcore"):
        from rmem_inspect.formats.kdump import describe_dump

        snap.source.update(describe_dump(str(snap.source["vmcore"])))

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
        snap.linear_map = _guard(snap, "linear_map", lambda: walk_nomap(prog, snap))
    else:
        snap.missing["linear_map"] = "not requested"
    excluded = _guard(snap, "dump pages", lambda: excluded_pages(prog, snap))
    if excluded:
        snap.missing["dump pages"] = excluded
    if snap.reserved_mem is not None:
        from rmem_inspect.collect.not_dumped import mark_not_in_dump

        mark_not_in_dump(prog, snap.reserved_mem, excluded)
    return snap


def _record_debug_info(prog: Program, snap: Snapshot) -> None:
    """Say in the snapshot where types and symbols came from (kallsyms+BTF: with the
    evidence for statics told apart by their neighbours)."""
    from rmem_inspect.collect.kernel_btf import CACHE_KEY, KernelSymbols

    info = prog.cache.get(CACHE_KEY)
    if not isinstance(info, KernelSymbols):
        return
    snap.source["debug_info"] = "types from the kernel's BTF, symbols from kallsyms"
    snap.source["btf"] = f"{info.btf_source} ({info.btf_bytes} bytes, {info.btf_types} types)"
    snap.source["symbol_evidence"] = list(info.evidence)


#: Pages looked up per structure at most (the arrays are a few pages).
EXCLUDED_PAGES_CAP = 256


def excluded_pages(prog: Program, snap: Snapshot) -> str | None:
    """Name the pages the verdicts need that a filtered kdump-compressed dump left out,
    or that no bank file of a raw RAM dump covers.

    makedumpfile drops pages by dump level (``-d``) and records what it kept in the
    second bitmap of the dump; libkdumpfile refuses reads of the rest. The structures
    read here are reserved_mem (array and count), memblock (the struct and its region
    arrays) and the boot FDT; their pages are found by walking the kernel page tables
    (``follow_phys`` on ``init_mm``). None when nothing is missing or the dump is not
    kdump-compressed.
    """
    from drgn import sizeof
    from drgn.helpers.linux.mm import follow_phys

    from rmem_inspect.collect.program import dump_description
    from rmem_inspect.collect.ramdump import RAMDUMP_CACHE_KEY, RamSet
    from rmem_inspect.formats.kdump import KdumpHeader

    desc = dump_description(prog)
    header = desc.get("header") if desc else None
    ram = prog.cache.get(RAMDUMP_CACHE_KEY)  # raw RAM: what no bank file covers
    if not isinstance(ram, RamSet) and (not isinstance(header, KdumpHeader) or not header.bitmap2):
        return None
    wanted: list[tuple[str, int, int]] = []
    for name, file in (
        ("reserved_mem", "of_reserved_mem.c"),
        ("reserved_mem_count", "of_reserved_mem.c"),
        ("total_reserved_mem_cnt", "of_reserved_mem.c"),
        ("memblock", "memblock.c"),
    ):
        try:
            obj = prog.variable(name, file)
            wanted.append((name, obj.address_, sizeof(obj)))
        except (LookupError, ValueError):
            continue
    rm = snap.reserved_mem
    if rm is not None and rm.layout == Layout.DYNAMIC_ARRAY and rm.capacity:
        wanted.append(("the reserved_mem array", rm.array_address, rm.capacity * rm.entry_size))
    try:
        mb = prog["memblock"]
        region_size = sizeof(prog.type("struct memblock_region"))
        for part in ("memory", "reserved"):
            t = getattr(mb, part)
            n = max(1, min(t.cnt.value_(), t.max.value_()))
            wanted.append((f"memblock.{part}.regions", t.regions.value_(), n * region_size))
    except (LookupError, FaultError, AttributeError):
        pass
    try:
        wanted.append(("the boot FDT header", prog["initial_boot_params"].value_(), 40))
    except (LookupError, FaultError):
        pass
    page_size = prog["PAGE_SIZE"].value_()
    init_mm = prog["init_mm"].address_of_()
    pages: dict[int, list[str]] = {}
    for what, addr, size in wanted:
        if not addr:
            continue
        first, last = addr // page_size, (addr + max(size, 1) - 1) // page_size
        for vpage in range(first, min(last, first + EXCLUDED_PAGES_CAP) + 1):
            try:
                phys = follow_phys(init_mm, vpage * page_size).value_()
            except (FaultError, ValueError, NotImplementedError):
                continue  # not mapped: the collectors report it themselves
            pfn = phys // page_size
            if isinstance(ram, RamSet):
                dumped: bool | None = ram.page_dumped(pfn, page_size)
            else:
                assert isinstance(header, KdumpHeader)
                dumped = header.page_dumped(pfn)
            if dumped is False:
                pages.setdefault(pfn, []).append(f"{what} at {vpage * page_size:#x}")
    out = [
        f"pfn {pfn:#x} (phys {pfn * page_size:#x}: {', '.join(whats)})"
        for pfn, whats in sorted(pages.items())
    ]
    if not out:
        return None
    if isinstance(ram, RamSet):
        return (
            f"no bank file covers {len(out)} page(s) that hold the structures checked here "
            f"(the banks are {ram.describe()}), so what they hold is not in the dump and the "
            "verdicts that need it are not made: " + "; ".join(out[:20])
        )
    assert isinstance(header, KdumpHeader)
    level = "" if header.dump_level is None else f" at dump level {header.dump_level}"
    return (
        f"makedumpfile excluded {len(out)} page(s) that hold the structures checked here from "
        f"this dump{level} (its page bitmap has no data for them), so what they hold was not "
        "read and the verdicts that need it are not made: " + "; ".join(out[:20])
    )


def walk_nomap(prog: Program, snap: Snapshot) -> list[LinearMapCheck]:
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
