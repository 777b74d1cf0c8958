# SPDX-License-Identifier: GPL-2.0-or-later
"""
board_pack
----------

A :class:`~rmem_inspect.model.Snapshot` from board packs: the archives
``rmem-inspect collect-script`` makes on a board without Python or drgn
(:mod:`rmem_inspect.board_script`). The pack holds the very files the sysfs
fallback (:mod:`rmem_inspect.collect.sysfs`) reads on a live board, so the
snapshot is built by the fallback's own code over the archive's members: the
same report ``rmem-inspect report --no-debug-info`` gives on that board. What
the board could not give (``rmem/missing``: the source and the reason) is named
in ``Snapshot.missing``, and the checks that needed it are listed as skipped.
"""

from __future__ import annotations

import os

from rmem_inspect.board_script import PACK_VERSION
from rmem_inspect.collect.sysfs import (
    finish_snapshot,
    kallsyms_names,
    kernel_info,
    memblock_state,
    parse_dmesg,
)
from rmem_inspect.errors import InputError
from rmem_inspect.formats.devicetree import RawNode, decode_tree
from rmem_inspect.formats.fdt import FdtError, parse_fdt
from rmem_inspect.formats.pack import MAX_TOTAL, Pack, PackError, parse_pack
from rmem_inspect.model import Snapshot
from rmem_inspect.version import __version__

__all__ = ["load_packs", "read_board_packs", "snapshot_of_pack"]

FDT = "sys/firmware/fdt"
TREE = "sys/firmware/devicetree/base"
MEMBLOCK = "sys/kernel/debug/memblock"


def load_packs(paths: list[str]) -> Pack:
    """The members of every pack in ``paths``, merged (a later pack may add members, never
    change one; each pack's ``rmem/missing`` lines are kept). InputError, one line, for
    unreadable, malformed or hostile archives."""
    merged = Pack()
    for path in paths:
        try:
            size = os.stat(path).st_size
            if size > MAX_TOTAL:
                raise InputError(f"board pack {path} is {size} bytes, over {MAX_TOTAL >> 20} MiB")
            with open(path, "rb") as f:
                data = f.read(MAX_TOTAL + 1)
        except OSError as e:
            raise InputError(f"cannot read board pack {path}: {e.strerror}") from None
        try:
            pack = parse_pack(data)
        except PackError as e:
            raise InputError(f"{path} is not a usable board pack: {e}") from None
        version = (pack.text("rmem/pack") or "").strip()
        if version != str(PACK_VERSION):
            raise InputError(
                f"{path} is not a board pack of format {PACK_VERSION} (rmem/pack: "
                f"{version or 'absent'}): make it with 'rmem-inspect collect-script'"
            )
        for name, blob in pack.files.items():
            if (
                name in merged.files
                and merged.files[name] != blob
                and name.startswith(("proc/", "sys/"))
            ):
                raise InputError(f"{path} and an earlier pack differ in {name}: not one boot")
            if name == "rmem/missing":  # what each round could not read
                merged.files[name] = merged.files.get(name, b"") + blob
            elif name not in merged.files:
                merged.files[name] = blob
        merged.dirs |= pack.dirs
        merged.kind = merged.kind or pack.kind
    return merged


def _tree(pack: Pack, path: str, name: str = "") -> RawNode:
    """A RawNode tree from the pack's copy of /sys/firmware/devicetree/base (children by
    name, as sysfs lists them; the boot FDT gives devicetree order)."""
    props: dict[str, bytes] = {}
    children: list[RawNode] = []
    for child, is_dir in pack.children(path):
        if is_dir:
            children.append(_tree(pack, f"{path}/{child}", child))
        elif child != "name":  # synthesised by the kernel
            props[child] = pack.read(f"{path}/{child}")
    return RawNode(name=name, props=props, children=children)


def _unreadable(pack: Pack) -> dict[str, str]:
    """The board's ``rmem/missing``: source path -> why the script could not read it."""
    out = {}
    for line in (pack.text("rmem/missing") or "").splitlines():
        src, _, why = line.partition("\t")
        if src:
            out[src] = why or "unreadable"
    return out


def snapshot_of_pack(pack: Pack, source: dict[str, object]) -> Snapshot:
    """The fallback snapshot of the board the pack was collected on."""
    board = _unreadable(pack)

    def lacks(path: str) -> str:
        return f"/{path}: {board.get('/' + path, 'not in the pack')}"

    uname = (pack.text("rmem/uname") or "").split()
    version = (pack.text("proc/version") or "").split()
    release = uname[0] if uname else version[2] if len(version) > 2 else "unknown"
    machine = uname[1] if len(uname) > 1 else "unknown"
    page_size = (pack.text("rmem/pagesize") or "").strip()
    notes = pack.files.get("sys/kernel/notes")
    info = kernel_info(release, machine, int(page_size) if page_size.isdigit() else 4096,
                       notes, pack.text("proc/cmdline"))  # fmt: skip
    snap = Snapshot(kernel=info, source=dict(source), tool_version=__version__)
    if board:
        snap.source["unreadable"] = board
    missing = snap.missing
    blob = pack.files.get(FDT)
    if blob is None:
        missing["fdt"] = lacks(FDT)
    else:
        try:
            snap.fdt = decode_tree(parse_fdt(blob).root, "fdt")
            snap.fdt.total_size = len(blob)
        except FdtError as e:
            missing["fdt"] = f"/{FDT} is corrupt: {e}"
    if pack.is_dir(TREE):
        snap.dt = decode_tree(_tree(pack, TREE), "sysfs")
    else:
        missing["of_root"] = lacks(TREE)
    memory, reserved = pack.text(f"{MEMBLOCK}/memory"), pack.text(f"{MEMBLOCK}/reserved")
    if memory is None or reserved is None:
        missing["memblock"] = lacks(MEMBLOCK if memory is None else f"{MEMBLOCK}/reserved")
        if "/sys/kernel/debug" in board:
            missing["memblock"] += f"; /sys/kernel/debug: {board['/sys/kernel/debug']}"
    else:
        snap.memblock = memblock_state(memory, reserved, pack.text("proc/iomem"),
                                       f"/{MEMBLOCK}", missing, lacks("proc/iomem"))  # fmt: skip
    text = pack.text("rmem/dmesg")
    if text is None:
        missing["log"] = f"dmesg: {board.get('dmesg', 'not in the pack')}"
        log, complete = None, False
    else:
        log, complete = parse_dmesg(text)
    kallsyms = pack.text("proc/kallsyms")
    syms = None if kallsyms is None else kallsyms_names(kallsyms)
    return finish_snapshot(snap, log, complete, syms)


def read_board_packs(paths: list[str]) -> Snapshot:
    """The snapshot of the board packs ``paths`` (``--board-pack A[,B...]``): the drgn
    collectors' over the packs' /proc/kcore cuts where they hold any, else the fallback's."""
    from rmem_inspect.collect.kcore_pack import cuts_of

    pack = load_packs(paths)
    source: dict[str, object] = {"kind": "board-pack", "packs": [os.path.abspath(p) for p in paths]}
    snap = snapshot_of_pack(pack, source)
    if not cuts_of(pack):
        return snap
    from rmem_inspect.collect.kcore_read import kcore_snapshot

    try:
        return kcore_snapshot(pack, source, snap)
    except InputError as e:
        snap.source["kcore"] = str(e)
        return snap
