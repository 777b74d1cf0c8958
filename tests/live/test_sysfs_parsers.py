# SPDX-License-Identifier: GPL-2.0-or-later
"""
Unit tests of the no-debug-info fallback's parsers (rmem_inspect/collect/sysfs.py),
on text in the formats the kernels print: memblock_debug_show() of mm/memblock.c
(6.1: ``"%4d: %pa..%pa\\n"``; 6.12+: node id and flag names added), /proc/iomem,
/dev/kmsg records (Documentation/ABI/testing/dev-kmsg), and the reserved-memory
log lines of drivers/of/of_reserved_mem.c.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rmem_inspect import checks
from rmem_inspect.collect.sysfs import (
    MEMBLOCK_NOMAP,
    parse_iomem_nomap,
    parse_kmsg,
    parse_memblock,
    read_tree,
    reconstruct_reserved_mem,
)
from rmem_inspect.formats.devicetree import decode_tree
from rmem_inspect.model import KernelInfo, LogLine, MemblockState, Snapshot

pytestmark = pytest.mark.unit


def test_memblock_6_1_format() -> None:
    text = (
        "   0: 0x0000000040000000..0x000000004fffffff\n"
        "   1: 0x0000000050000000..0x00000000503fffff\n"
    )
    regions = parse_memblock(text)
    assert [(r.base, r.size, r.flags) for r in regions] == [
        (0x40000000, 0x10000000, 0),
        (0x50000000, 0x400000, 0),
    ]


def test_memblock_6_12_format() -> None:
    text = (
        "   0: 0x0000000040000000..0x000000004fffffff    0 NONE\n"
        "   1: 0x0000000050000000..0x00000000503fffff    0 NOMAP\n"
        "   2: 0x0000000050400000..0x00000000504fffff    x HOTPLUG|NOMAP\n"
    )
    regions = parse_memblock(text)
    assert [(r.flags, r.flag_names, r.nid) for r in regions] == [
        (0, [], 0),
        (MEMBLOCK_NOMAP, ["NOMAP"], 0),
        (MEMBLOCK_NOMAP, ["HOTPLUG", "NOMAP"], None),
    ]
    assert regions[2].size == 0x100000


def test_iomem_top_level_reserved_only() -> None:
    text = (
        "40000000-4fffffff : System RAM\n"
        "  40210000-4169ffff : Kernel code\n"
        "  48000000-48ffffff : reserved\n"
        "50000000-503fffff : reserved\n"
        "50400000-bfffffff : System RAM\n"
    )
    assert parse_iomem_nomap(text) == [(0x50000000, 0x400000)]


def test_kmsg_records_unescaped_and_split() -> None:
    records = [
        "6,0,0,-;Booting Linux on physical CPU 0x0000000000 [0x411fd070]\n",
        "3,1,120,-;OF: reserved mem: OVERLAP DETECTED!\\x0aa (0x1--0x2) overlaps with b\n"
        " SUBSYSTEM=of\n",
    ]
    lines, first = parse_kmsg(records)
    assert first == 0
    assert [x.text for x in lines] == [
        "Booting Linux on physical CPU 0x0000000000 [0x411fd070]",
        "OF: reserved mem: OVERLAP DETECTED!",
        "a (0x1--0x2) overlaps with b",
    ]
    assert lines[1].timestamp == pytest.approx(120e-6)


def _tree(tmp_path: Path, nodes: list[tuple[str, dict[str, bytes]]]) -> Path:
    base = tmp_path / "base"
    rm = base / "reserved-memory"
    rm.mkdir(parents=True)
    (base / "#address-cells").write_bytes((2).to_bytes(4, "big"))
    (base / "#size-cells").write_bytes((2).to_bytes(4, "big"))
    (rm / "#address-cells").write_bytes((2).to_bytes(4, "big"))
    (rm / "#size-cells").write_bytes((2).to_bytes(4, "big"))
    (rm / "ranges").write_bytes(b"")
    (rm / "name").write_bytes(b"reserved-memory\0")
    for name, props in nodes:
        (rm / name).mkdir()
        for k, v in props.items():
            (rm / name / k).write_bytes(v)
    return base


def _reg(base: int, size: int) -> bytes:
    return base.to_bytes(8, "big") + size.to_bytes(8, "big")


def test_static_array_rebuilt_in_dt_order(tmp_path: Path) -> None:
    # Three static nodes and one dynamic, a (pretend) array of 2: the kernel saves
    # the first two in scan order and prints one "not enough space" line per other.
    nodes = [
        (f"a{i}@{0x50000000 + i * 0x100000:x}", {"reg": _reg(0x50000000 + i * 0x100000, 0x100000)})
        for i in range(3)
    ]
    nodes.append(("pool", {"size": (0x100000).to_bytes(8, "big")}))
    dt = decode_tree(read_tree(_tree(tmp_path, nodes)), "sysfs")
    names = [r.name for r in dt.regions]
    log = [LogLine("OF: reserved mem: not enough space for all defined regions.")] * 2
    state, how = reconstruct_reserved_mem(dt, log, "static-array")
    assert [e.name for e in state.entries] == names[:2]
    assert state.capacity == state.max_regions == 2
    assert "2 'not enough space" in how
    snap = Snapshot(
        kernel=KernelInfo(release="x", arch="arm64"),
        reserved_mem=state,
        fdt=dt,
        memblock=MemblockState(available=True),
        log=log,
    )
    found = {(f.code, f.region) for f in checks.run(snap).findings}
    assert {("RMEM-DROPPED", n) for n in names[2:]} <= found
    assert ("RMEM-STATIC-ARRAY", None) in found
    assert not {c for c, _ in found} & {"RMEM-NO-INIT", "RMEM-COUNT-CORRUPT", "RMEM-OVERLAP"}


def test_dynamic_array_from_region_lines(tmp_path: Path) -> None:
    nodes = [
        ("fw@50000000", {"reg": _reg(0x50000000, 0x100000), "no-map": b""}),
        ("pool", {"size": (0x100000).to_bytes(8, "big")}),
        ("lost", {"size": (0x100000).to_bytes(8, "big")}),
    ]
    dt = decode_tree(read_tree(_tree(tmp_path, nodes)), "sysfs")
    log = [
        LogLine(
            "OF: reserved mem: 0x0000000050000000..0x00000000500fffff (1024 KiB) "
            "nomap non-reusable fw@50000000"
        ),
        LogLine(
            "OF: reserved mem: 0x0000000060000000..0x00000000600fffff (1024 KiB) "
            "map non-reusable pool"
        ),
        LogLine("OF: reserved mem: failed to allocate memory for node 'lost': size 1 MiB"),
    ]
    state, _ = reconstruct_reserved_mem(dt, log, "dynamic-array")
    assert [(e.name, e.base, e.size) for e in state.entries] == [
        ("fw@50000000", 0x50000000, 0x100000),
        ("pool", 0x60000000, 0x100000),
    ]
    snap = Snapshot(
        kernel=KernelInfo(release="x", arch="arm64"), reserved_mem=state, fdt=dt, log=log
    )
    found = {(f.code, f.region) for f in checks.run(snap).findings}
    assert ("RMEM-DROPPED", "lost") in found and ("RMEM-UNALLOCATED", "lost") in found
    assert not [f for f in found if f[1] in ("pool", "fw@50000000")]
