# SPDX-License-Identifier: GPL-2.0-or-later
"""
sysfs
-----

The live fallback when no vmlinux with debug info is at hand: build a
:class:`~rmem_inspect.model.Snapshot` from what a running board exposes to root.

========================================  ==========================================
source                                    fills
========================================  ==========================================
``/sys/firmware/fdt``                     ``fdt`` (the boot FDT blob, parsed)
``/sys/firmware/devicetree/base``         ``dt`` (the live tree)
``/sys/kernel/debug/memblock/*``          ``memblock`` (debugfs is mounted if needed)
``/proc/iomem``                           NOMAP, where memblock's debugfs has no flags
``/dev/kmsg`` (or ``dmesg``)              ``log``
kernel log + ``/proc/kallsyms``           ``reserved_mem``, reconstructed (see below)
========================================  ==========================================

``reserved_mem`` is never read here; when the kernel log is complete it is
*reconstructed* from what the kernel printed, and marked so
(``ops_layout = "log"`` and a ``Snapshot.missing["reserved_mem"]`` note):

- kernels that print one ``OF: reserved mem: <base>..<end> (<n> KiB) map|nomap
  reusable|non-reusable NAME`` line per initialised region (6.12+) give every
  tracked region with its placement; ``node NAME compatible matching fail``
  adds the tracked regions whose init failed;
- the static-array kernels (<= 6.11) print ``not enough space for all defined
  regions.`` once per node that did not fit; they save nodes in devicetree
  order (okay nodes with ``reg`` or ``size``), so the first ``n - k`` such nodes
  are the tracked ones. A dynamic node's placement is not printed there
  (pr_debug): its base stays 0 and the placement checks skip it.

The array layout is probed from ``/proc/kallsyms`` (the dynamic array's
``fdt_scan_reserved_mem_reg_nodes``/``fdt_scan_reserved_mem_late``), never from
the version string. CMA areas, devices, ``ops`` and the page tables need the
debug info: those sources stay None and the checks list what they skipped.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
from pathlib import Path

from rmem_inspect.errors import InputError
from rmem_inspect.formats.devicetree import RawNode, decode_tree
from rmem_inspect.formats.fdt import FdtError, parse_fdt
from rmem_inspect.kernel import messages
from rmem_inspect.kernel.constants import MAX_RESERVED_REGIONS, MemblockFlags
from rmem_inspect.kernel.layouts import Layout, OpsLayout
from rmem_inspect.model import (
    DtInfo,
    DtRegion,
    KernelInfo,
    LogLine,
    MemblockRegion,
    MemblockState,
    ReservedMemState,
    RmemEntry,
    Snapshot,
)
from rmem_inspect.version import __version__

__all__ = [
    "MAX_RESERVED_REGIONS",
    "parse_iomem_nomap",
    "parse_kmsg",
    "parse_memblock",
    "read_sysfs",
    "read_tree",
    "reconstruct_reserved_mem",
]

#: memblock's NOMAP bit: debugfs prints flagname[ilog2(MEMBLOCK_NOMAP)].
MEMBLOCK_NOMAP = int(MemblockFlags.MEMBLOCK_NOMAP)
DEBUGFS = "/sys/kernel/debug"

_MEMBLOCK_LINE = re.compile(
    r"^\s*(\d+): (0x[0-9a-fA-F]+)\.\.(0x[0-9a-fA-F]+)(?:\s+(\d+|x))?(?:\s+(\S+))?\s*$"
)
# The kernel log lines read here: rmem_inspect/kernel/messages.py.
_REGION_LINE = messages.REGION_LINE
_MATCH_FAIL = messages.MATCH_FAIL_LINE
_NOT_ENOUGH = messages.NOT_ENOUGH
_ALLOC_FAIL = messages.ALLOC_FAILED
_ARRAY_FAIL = messages.ARRAY_ALLOC_FAILED
_DYNAMIC_SYMS = ("fdt_scan_reserved_mem_reg_nodes", "fdt_scan_reserved_mem_late")
_RMEM_SYMS = ("fdt_scan_reserved_mem", "of_reserved_mem_lookup", "fdt_init_reserved_mem")


# --------------------------------------------------------------------------
# Devicetree


def read_tree(path: str | Path) -> RawNode:
    """A RawNode tree from a /sys/firmware/devicetree/base-like directory.

    sysfs lists children by name, not in devicetree order; the boot FDT gives the order.
    """
    root = Path(path)

    def walk(d: Path, name: str) -> RawNode:
        props: dict[str, bytes] = {}
        children: list[RawNode] = []
        for p in sorted(d.iterdir(), key=lambda p: p.name):
            if p.is_dir() and not p.is_symlink():
                children.append(walk(p, p.name))
            elif p.is_file() and p.name != "name":  # "name" is synthesised by the kernel
                props[p.name] = p.read_bytes()
        return RawNode(name=name, props=props, children=children)

    return walk(root, "")


# --------------------------------------------------------------------------
# memblock and /proc/iomem


def parse_memblock(text: str) -> list[MemblockRegion]:
    """Regions of a debugfs memblock file: ``%4d: %pa..%pa`` and, on newer kernels,
    the node id (or ``x``) and the flag names (``NONE`` or ``NOMAP|...``)."""
    out = []
    for line in text.splitlines():
        m = _MEMBLOCK_LINE.match(line)
        if not m:
            continue
        base, last = int(m.group(2), 16), int(m.group(3), 16)
        names = [] if m.group(5) in (None, "NONE") else m.group(5).split("|")
        nid = int(m.group(4)) if m.group(4) and m.group(4) != "x" else None
        out.append(
            MemblockRegion(
                base=base,
                size=last - base + 1,
                flags=MEMBLOCK_NOMAP if "NOMAP" in names else 0,
                flag_names=names,
                nid=nid,
            )
        )
    return out


def parse_iomem_nomap(text: str) -> list[tuple[int, int]]:
    """Top-level ``reserved`` ranges of /proc/iomem: arm64 registers every NOMAP
    memblock.memory region as such (request_standard_resources()), and every other
    memory region as ``System RAM``."""
    out = []
    for line in text.splitlines():
        if line.startswith(" "):
            continue
        rng, _, name = line.partition(" : ")
        if name.strip() != "reserved" or "-" not in rng:
            continue
        a, b = rng.split("-", 1)
        start, end = int(a, 16), int(b, 16)
        if end > start or start:
            out.append((start, end - start + 1))
    return out


def _read_memblock(missing: dict[str, str]) -> MemblockState | None:
    d = Path(DEBUGFS) / "memblock"
    if not d.is_dir():
        p = subprocess.run(
            ["mount", "-t", "debugfs", "debugfs", DEBUGFS], capture_output=True, text=True
        )
        if not d.is_dir():
            why = p.stderr.strip() or "no memblock directory (CONFIG_ARCH_KEEP_MEMBLOCK off?)"
            missing["memblock"] = f"{d} not available: {why}"
            return None
    try:
        memory = parse_memblock((d / "memory").read_text())
        reserved = parse_memblock((d / "reserved").read_text())
    except OSError as e:
        missing["memblock"] = f"{d}: {e.strerror}"
        return None
    note = f"read from {d}"
    flags_printed = any(
        _MEMBLOCK_LINE.match(line) and _MEMBLOCK_LINE.match(line).group(5)  # type: ignore[union-attr]
        for line in (d / "memory").read_text().splitlines()[:1]
    )
    if not flags_printed:
        try:
            nomap = parse_iomem_nomap(Path("/proc/iomem").read_text())
        except OSError as e:
            missing["memblock flags"] = f"debugfs prints no flags and /proc/iomem: {e.strerror}"
            nomap = []
        for r in memory:
            if any(b <= r.base and r.base + r.size <= b + s for b, s in nomap):
                r.flags = MEMBLOCK_NOMAP
                r.flag_names = ["NOMAP"]
        note += "; this kernel's debugfs prints no flags: NOMAP taken from /proc/iomem"
    return MemblockState(
        available=True,
        memory=memory,
        reserved=reserved,
        flag_values={"MEMBLOCK_NOMAP": MEMBLOCK_NOMAP},
        note=note,
    )


# --------------------------------------------------------------------------
# Kernel log


def _unescape(text: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def parse_kmsg(records: list[str]) -> tuple[list[LogLine], int | None]:
    """LogLines of /dev/kmsg records (``prio,seq,usec,flags;text`` plus `` KEY=v``
    lines); also the first sequence number (0: the log is complete)."""
    out = []
    first: int | None = None
    for rec in records:
        head, _, rest = rec.partition(";")
        fields = head.split(",")
        if len(fields) < 3:
            continue
        if first is None:
            first = int(fields[1])
        text = _unescape(rest.split("\n", 1)[0])
        for line in text.split("\n"):
            out.append(LogLine(text=line, timestamp=int(fields[2]) / 1e6))
    return out, first


def _read_log(missing: dict[str, str]) -> tuple[list[LogLine] | None, bool]:
    """(every log line, complete?): from /dev/kmsg, else ``dmesg``."""
    records: list[str] = []
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        fd = -1
        kmsg_error = e.strerror
    if fd >= 0:
        try:
            while True:
                try:
                    data = os.read(fd, 8192)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno == errno.EPIPE:  # overwritten while reading: go on
                        continue
                    raise
                if not data:
                    break
                records.append(data.decode(errors="replace"))
        finally:
            os.close(fd)
        lines, first = parse_kmsg(records)
        return lines, first == 0
    try:
        p = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        missing["log"] = f"/dev/kmsg: {kmsg_error}; dmesg: {e}"
        return None, False
    if p.returncode != 0:
        missing["log"] = f"/dev/kmsg: {kmsg_error}; dmesg: {p.stderr.strip()}"
        return None, False
    lines = [LogLine(text=re.sub(r"^\[\s*[\d.]+\] ", "", t)) for t in p.stdout.splitlines()]
    complete = bool(lines) and bool(re.match(r"^\[\s*0\.000000\]", p.stdout))
    return lines, complete


# --------------------------------------------------------------------------
# reserved_mem from the log


def _kallsyms() -> set[str] | None:
    try:
        text = Path("/proc/kallsyms").read_text()
    except OSError:
        return None
    return {f[2] for f in (line.split() for line in text.splitlines()) if len(f) >= 3}


def _saved_nodes(dt: DtInfo) -> list[DtRegion]:
    """Nodes the kernel saves into reserved_mem, in scan order: okay ones with a
    valid ``reg``, or without reg but with ``size``."""
    return [r for r in dt.regions if r.available and not r.invalid and r.kind != "invalid"]


def reconstruct_reserved_mem(
    dt: DtInfo, log: list[LogLine], layout: str
) -> tuple[ReservedMemState, str]:
    """``reserved_mem`` as the kernel log establishes it, and how it was derived."""
    texts = [line.text for line in log]
    by_name = {r.name: r for r in dt.regions}
    entries: list[RmemEntry] = []

    def entry(name: str, base: int, size: int) -> None:
        entries.append(RmemEntry(index=len(entries), address=0, name=name, base=base, size=size))

    errors: list[str] = []
    if layout == Layout.DYNAMIC_ARRAY:
        for t in texts:
            m = _REGION_LINE.search(t)
            if m:
                base, last = int(m.group(1), 16), int(m.group(2), 16)
                entry(m.group(6), base, last - base + 1)
                continue
            m = _MATCH_FAIL.search(t)
            if m:
                r = by_name.get(m.group(1))
                if r is not None and r.reg:
                    entry(r.name, *r.reg[0])
                else:
                    entry(m.group(1), 0, r.size or 0 if r else 0)
        how = (
            f"{len(entries)} regions from the kernel's per-region 'OF: reserved mem: "
            "<base>..<end> (<n> KiB) ...' and 'compatible matching fail' log lines"
        )
        if any(_ARRAY_FAIL.search(t) for t in texts):
            entries.clear()
            how += "; the log says the array allocation failed, so none is tracked"
        return _log_state(layout, entries, None, MAX_RESERVED_REGIONS, errors), how
    saved = _saved_nodes(dt)
    dropped = sum(1 for t in texts if _NOT_ENOUGH.search(t))
    capacity = len(saved) - dropped if dropped else MAX_RESERVED_REGIONS
    failed = {m.group(1) for t in texts if (m := _ALLOC_FAIL.search(t))}
    for r in saved[:capacity]:
        if r.reg:
            entry(r.name, *r.reg[0])
        else:
            # The allocation is logged with pr_debug only: placement unknown (base 0).
            entry(r.name, 0, 0 if r.name in failed else (r.size or 0))
    how = (
        f"the first {len(entries)} of {len(saved)} saved nodes in devicetree order: the "
        f"static array holds {capacity} entries"
        + (
            f" (the log has {dropped} 'not enough space for all defined regions.' lines)"
            if dropped
            else " (MAX_RESERVED_REGIONS; no 'not enough space' line in the log)"
        )
        + "; dynamic placements are not logged"
    )
    return _log_state(layout, entries, capacity, capacity, errors), how


def _log_state(
    layout: str,
    entries: list[RmemEntry],
    capacity: int | None,
    max_regions: int,
    errors: list[str],
) -> ReservedMemState:
    """A reserved_mem rebuilt from the kernel log (``ops_layout="log"``, no addresses)."""
    return ReservedMemState(
        layout=layout,
        ops_layout=OpsLayout.LOG.value,
        count=len(entries),
        capacity=capacity,
        max_regions=max_regions,
        array_address=0,
        entry_size=0,
        entries=entries,
        errors=errors,
    )


# --------------------------------------------------------------------------


def _kernel_info() -> KernelInfo:
    u = os.uname()
    arch = {"aarch64": "arm64", "x86_64": "x86_64", "ppc64le": "ppc64", "s390x": "s390x",
            "riscv64": "riscv64"}.get(u.machine, u.machine)  # fmt: skip
    build_id = None
    try:
        from rmem_inspect.formats.elf import NT_GNU_BUILD_ID, parse_notes

        for name, ntype, desc in parse_notes(Path("/sys/kernel/notes").read_bytes(), little=True):
            if name == "GNU" and ntype == NT_GNU_BUILD_ID:
                build_id = desc.hex()
    except OSError:
        pass
    try:
        cmdline: str | None = Path("/proc/cmdline").read_text().strip()
    except OSError:
        cmdline = None
    return KernelInfo(
        release=u.release,
        arch=arch,
        page_size=os.sysconf("SC_PAGE_SIZE"),
        build_id=build_id,
        cmdline=cmdline,
    )


def read_sysfs(keep_all_log: bool = False) -> Snapshot:
    """The fallback snapshot of the running kernel (root)."""
    if os.geteuid() != 0:
        raise InputError(
            "the fallback reads debugfs, /proc/iomem and /dev/kmsg and needs root: run with sudo"
        )
    from rmem_inspect.collect.kmsg import is_relevant

    snap = Snapshot(kernel=_kernel_info(), source={"kind": "sysfs"}, tool_version=__version__)
    missing = snap.missing
    fdt_path = Path("/sys/firmware/fdt")
    try:
        blob = fdt_path.read_bytes()
        snap.fdt = decode_tree(parse_fdt(blob).root, "fdt")
        snap.fdt.total_size = len(blob)
    except OSError as e:
        missing["fdt"] = f"{fdt_path}: {e.strerror}"
    except FdtError as e:
        missing["fdt"] = f"{fdt_path} is corrupt: {e}"
    base = Path("/sys/firmware/devicetree/base")
    if base.is_dir():
        try:
            snap.dt = decode_tree(read_tree(base), "sysfs")
        except OSError as e:
            missing["of_root"] = f"{base}: {e.strerror}"
    else:
        missing["of_root"] = f"{base} not found (no devicetree)"
    snap.memblock = _read_memblock(missing)
    log, complete = _read_log(missing)
    if log is not None:
        snap.log = log if keep_all_log else [x for x in log if is_relevant(x.text)]
    dt = snap.fdt or snap.dt
    syms = _kallsyms()
    layout = None
    if syms is not None and any(s in syms for s in _DYNAMIC_SYMS):
        layout = Layout.DYNAMIC_ARRAY.value
    elif syms is not None and any(s in syms for s in _RMEM_SYMS):
        layout = Layout.STATIC_ARRAY.value
    if dt is None or log is None:
        missing["reserved_mem"] = "no debug info, and no devicetree or kernel log to rebuild it"
    elif not complete:
        missing["reserved_mem"] = (
            "no debug info, and the kernel log no longer starts at boot: cannot rebuild it"
        )
    elif layout is None:
        missing["reserved_mem"] = (
            "no debug info, and /proc/kallsyms does not tell the reserved_mem layout"
        )
    else:
        snap.reserved_mem, how = reconstruct_reserved_mem(dt, log, layout)
        missing["reserved_mem"] = (
            f"not read (no debug info): reconstructed from the kernel log, {how}; the "
            f"{layout} layout from /proc/kallsyms"
        )
    missing["cma"] = "needs debug info (cma_areas)"
    missing["devices"] = "needs debug info (struct device)"
    missing["linear_map"] = "needs debug info (page tables)"
    return snap
