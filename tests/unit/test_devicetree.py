# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests for decoding raw devicetrees into the DtInfo model."""

from __future__ import annotations

import struct

import pytest

from rmem_inspect.formats.devicetree import (
    RawNode,
    decode_cells,
    decode_pairs,
    decode_string,
    decode_strings,
    decode_tree,
    decode_u32,
    decode_u32_list,
    iter_nodes,
    node_path,
)
from rmem_inspect.formats.fdt import parse_fdt
from rmem_inspect.model import DtInfo, DtRegion, KernelInfo, Snapshot
from tests.unit.dts import BASE_DTS, dtc, needs_dtc
from vmcores.scenarios import SCENARIOS, Scenario, overlay_dts

pytestmark = pytest.mark.unit


def decode_dts(dts: str, *args: str) -> DtInfo:
    return decode_tree(parse_fdt(dtc(dts, *args)).root, "fdt")


def u32s(*values: int) -> bytes:
    return struct.pack(f">{len(values)}I", *values)


def prop_name(key: str) -> str:
    """``_address_cells`` -> ``#address-cells``, ``linux__phandle`` -> ``linux,phandle``."""
    name = key.replace("__", ",")
    if name.startswith("_"):
        name = "#" + name[1:]
    return name.replace("_", "-")


def node(name: str, children: list[RawNode] | None = None, **props: bytes) -> RawNode:
    """A RawNode with properties given as keywords (see prop_name(); no device_type)."""
    return RawNode(
        name=name,
        props={prop_name(k): v for k, v in props.items()},
        children=children or [],
    )


def region_named(info: DtInfo, name: str) -> DtRegion:
    (region,) = (r for r in info.regions if r.name == name)
    return region


# --------------------------------------------------------------------------
# Property helpers


def test_decode_u32() -> None:
    assert decode_u32(u32s(0x12345678)) == 0x12345678
    with pytest.raises(ValueError, match="length 3 is not 4"):
        decode_u32(b"\0\0\1")


def test_decode_u32_list() -> None:
    assert decode_u32_list(b"") == []
    assert decode_u32_list(u32s(1, 2, 0xFFFFFFFF)) == [1, 2, 0xFFFFFFFF]
    with pytest.raises(ValueError, match="length 6 is not a multiple of 4"):
        decode_u32_list(b"\0" * 6)


def test_decode_cells() -> None:
    assert decode_cells(b"") == 0
    assert decode_cells(u32s(0x1234)) == 0x1234
    assert decode_cells(u32s(1, 2)) == 0x100000002
    # Like of_read_number(): the low 64 bits.
    assert decode_cells(u32s(0xAAAA, 1, 2)) == 0x100000002
    with pytest.raises(ValueError):
        decode_cells(b"\0")


def test_decode_pairs() -> None:
    assert decode_pairs(u32s(0, 0x1000, 0, 0x10, 1, 0, 0, 0x20), 2, 2) == [
        (0x1000, 0x10),
        (0x100000000, 0x20),
    ]
    assert decode_pairs(u32s(0x1000, 0x10), 1, 1) == [(0x1000, 0x10)]
    assert decode_pairs(u32s(7, 8), 1, 0) == [(7, 0), (8, 0)]
    assert decode_pairs(b"", 2, 2) == []
    with pytest.raises(ValueError, match="^reg length 12 is not a multiple of 16$"):
        decode_pairs(b"\0" * 12, 2, 2)
    with pytest.raises(ValueError, match="^alloc-ranges length 4 is not a multiple of 8$"):
        decode_pairs(b"\0" * 4, 1, 1, "alloc-ranges")
    with pytest.raises(ValueError, match="#address-cells 0 and #size-cells 0"):
        decode_pairs(b"", 0, 0)


def test_decode_strings() -> None:
    assert decode_string(b"okay\0") == "okay"
    assert decode_string(b"a\0b\0") == "a"
    assert decode_string(b"\0") == ""
    with pytest.raises(ValueError, match="not NUL-terminated"):
        decode_string(b"okay")
    assert decode_strings(b"") == []
    assert decode_strings(b"a\0bc\0\0") == ["a", "bc", ""]
    assert decode_strings(b"caf\xc3\xa9\0\xff\0") == ["café", "\\xff"]
    with pytest.raises(ValueError, match="not NUL-terminated"):
        decode_strings(b"a\0b")


def test_paths_and_iteration() -> None:
    assert node_path("/", "a") == "/a"
    assert node_path("/a", "b@1") == "/a/b@1"
    tree = node("", [node("a", [node("b"), node("c")]), node("d")])
    assert [p for p, _ in iter_nodes(tree)] == ["/", "/a", "/a/b", "/a/c", "/d"]


# --------------------------------------------------------------------------
# The vmcore factory's scenarios, compiled by dtc


def scenario_info(scenario: Scenario) -> DtInfo:
    return decode_dts(BASE_DTS + overlay_dts(scenario))


@needs_dtc
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str) -> None:
    scenario = SCENARIOS[name]
    info = scenario_info(scenario)
    assert info.source == "fdt"
    assert info.errors == []
    assert (info.root_address_cells, info.root_size_cells) == (2, 2)
    assert info.memory == [(0x40000000, scenario.memory)]
    assert info.has_reserved_memory == scenario.reserved_memory_node
    if scenario.reserved_memory_node:
        assert info.reserved_memory_address_cells == scenario.rmem_cells[0]
        assert info.reserved_memory_size_cells == scenario.rmem_cells[1]
        assert info.reserved_memory_has_ranges
    else:
        assert info.reserved_memory_address_cells is None
        assert info.reserved_memory_size_cells is None
        assert not info.reserved_memory_has_ranges

    assert len(info.regions) == len(scenario.regions)
    for index, (got, want) in enumerate(zip(info.regions, scenario.regions, strict=True)):
        assert got.index == index
        assert got.name == want.node_name
        assert got.path == f"/reserved-memory/{want.node_name}"
        assert got.reg == list(want.reg)
        assert got.size == want.size
        assert got.alignment == want.alignment
        assert got.alloc_ranges == list(want.alloc_ranges)
        assert got.compatible == list(want.compatible)
        assert got.nomap == want.nomap
        assert got.reusable == want.reusable
        assert got.cma_default == want.cma_default
        assert got.status == (want.status or "okay")
        assert got.available == (want.status in (None, "okay"))
        assert got.kind == ("static" if want.reg else "dynamic")
        assert got.invalid == []

    by_name = {r.name: r for r in scenario.regions}
    phandles = {r.phandle: r.path for r in info.regions if r.phandle is not None}
    assert len(info.consumers) == len(scenario.consumers)
    for got_c, want_c in zip(info.consumers, scenario.consumers, strict=True):
        assert got_c.path == f"/{want_c.name}"
        assert got_c.compatible == [want_c.compatible]
        assert got_c.status == "okay"
        assert got_c.names == list(want_c.region_names)
        want_targets = [f"/reserved-memory/{by_name[r].node_name}" for r in want_c.regions]
        assert got_c.targets == want_targets
        assert [phandles[p] for p in got_c.phandles] == want_targets


@needs_dtc
def test_scenario_round_trips_through_snapshot_json() -> None:
    info = scenario_info(SCENARIOS["baseline"])
    snapshot = Snapshot(kernel=KernelInfo(release="6.12.0", arch="aarch64"), fdt=info)
    loaded = Snapshot.loads(snapshot.dumps())
    assert loaded.fdt == info


@needs_dtc
def test_linux_phandle() -> None:
    # dtc -H legacy writes linux,phandle only (the kernel accepts either).
    info = decode_dts(BASE_DTS + overlay_dts(SCENARIOS["consumers"]), "-H", "legacy")
    assert info.errors == []
    assert all(r.phandle is not None for r in info.regions if r.name != "linux,cma")
    assert info.consumers[0].targets == ["/reserved-memory/vpu@50400000"]


# --------------------------------------------------------------------------
# Kernel-style validation of /reserved-memory children

#: Root with 2/2 cells; /reserved-memory with 2 address cells and 1 size cell,
#: so that a value of the size cell count and one of the address cell count
#: have different lengths.
VALIDATION_DTS = """/dts-v1/;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	reserved-memory {
		#address-cells = <2>;
		#size-cells = <1>;
		ranges;
		good-reg@50000000 { reg = <0x0 0x50000000 0x100000>, <0x1 0x0 0x200000>; };
		short-reg { reg = <0x0 0x50000000>; };
		odd-reg { reg = [00 00 00 00 50 00 00 00 00 10 00 00 00]; };
		empty-reg { reg; };
		good-size { size = <0x400000>; alignment = <0x0 0x100000>; };
		size-of-address-cells { size = <0x0 0x400000>; };
		alignment-of-size-cells { size = <0x400000>; alignment = <0x100000>; };
		size-bits64 { size = /bits/ 64 <0x400000>; };
		bad-alloc-ranges {
			size = <0x1000>;
			alloc-ranges = <0x0 0x60000000 0x10000000 0x0>;
		};
		good-alloc-ranges {
			size = <0x1000>;
			alloc-ranges = <0x0 0x60000000 0x10000000>, <0x0 0x70000000 0x1000>;
		};
		nothing { compatible = "acme,thing"; };
		both@58000000 { reg = <0x0 0x58000000 0x1000>; size = <0x2000>; };
	};
};
"""


@needs_dtc
def test_kernel_style_validation() -> None:
    info = decode_dts(VALIDATION_DTS)
    assert info.errors == []
    assert (info.root_address_cells, info.root_size_cells) == (2, 2)
    assert (info.reserved_memory_address_cells, info.reserved_memory_size_cells) == (2, 1)
    notes = {r.name: r.invalid for r in info.regions}
    assert notes == {
        "good-reg@50000000": [],
        "short-reg": ["reg length 8 is not a multiple of 12"],
        "odd-reg": ["reg length 13 is not a multiple of 12"],
        "empty-reg": ["reg is empty"],
        "good-size": [],
        "size-of-address-cells": ["size length 8 is not 4 (#size-cells)"],
        "alignment-of-size-cells": ["alignment length 4 is not 8 (#address-cells)"],
        "size-bits64": ["size length 8 is not 4 (#size-cells)"],
        "bad-alloc-ranges": ["alloc-ranges length 16 is not a multiple of 12"],
        "good-alloc-ranges": [],
        "nothing": ["neither reg nor size: the kernel skips the node"],
        "both@58000000": [],
    }
    assert [r.index for r in info.regions] == list(range(12))

    good = region_named(info, "good-reg@50000000")
    assert good.reg == [(0x50000000, 0x100000), (0x100000000, 0x200000)]
    assert good.kind == "static"
    for bad in ("short-reg", "odd-reg", "empty-reg"):
        assert region_named(info, bad).reg == []
        assert region_named(info, bad).kind == "invalid"

    good_size = region_named(info, "good-size")
    assert (good_size.size, good_size.alignment, good_size.kind) == (0x400000, 0x100000, "dynamic")
    assert region_named(info, "size-of-address-cells").size is None
    unaligned = region_named(info, "alignment-of-size-cells")
    assert (unaligned.size, unaligned.alignment) == (0x400000, None)
    assert region_named(info, "bad-alloc-ranges").alloc_ranges == []
    assert region_named(info, "good-alloc-ranges").alloc_ranges == [
        (0x60000000, 0x10000000),
        (0x70000000, 0x1000),
    ]
    assert region_named(info, "nothing").compatible == ["acme,thing"]
    both = region_named(info, "both@58000000")
    assert (both.reg, both.size, both.kind) == ([(0x58000000, 0x1000)], 0x2000, "static")


@needs_dtc
def test_size_bits64_with_two_size_cells() -> None:
    dts = """/dts-v1/;
/ {
	#address-cells = <1>;
	#size-cells = <2>;
	reserved-memory {
		#address-cells = <1>;
		#size-cells = <2>;
		ranges;
		pool { size = /bits/ 64 <0x100000000>; alignment = <0x200000>; };
	};
};
"""
    (pool,) = decode_dts(dts).regions
    assert (pool.size, pool.alignment, pool.invalid) == (0x100000000, 0x200000, [])


@needs_dtc
def test_reserved_memory_cells_differ_from_root() -> None:
    dts = BASE_DTS + """
/ {
	reserved-memory {
		#address-cells = <1>;
		#size-cells = <1>;
		ranges = <0x0 0x0 0x0 0x80000000>;
		fw@50000000 { reg = <0x50000000 0x100000>; no-map; };
		pool { size = <0x400000>; alignment = <0x100000>; alloc-ranges = <0x60000000 0x1000000>; };
	};
};
"""
    info = decode_dts(dts)
    assert (info.root_address_cells, info.root_size_cells) == (2, 2)
    assert (info.reserved_memory_address_cells, info.reserved_memory_size_cells) == (1, 1)
    assert info.reserved_memory_has_ranges
    fw, pool = info.regions
    assert (fw.reg, fw.nomap, fw.invalid) == ([(0x50000000, 0x100000)], True, [])
    assert (pool.size, pool.alignment, pool.alloc_ranges) == (
        0x400000,
        0x100000,
        [(0x60000000, 0x1000000)],
    )
    assert info.memory == [(0x40000000, 0x40000000)]


@needs_dtc
def test_cells_default_to_the_roots() -> None:
    # No cells anywhere: Linux's root defaults (1 address cell, 1 size cell) apply,
    # not the DT specification's 2 address cells.
    dts = """/dts-v1/;
/ {
	memory@40000000 { device_type = "memory"; reg = <0x40000000 0x10000000>; };
	reserved-memory {
		fw@50000000 { reg = <0x50000000 0x100000>; };
	};
};
"""
    info = decode_dts(dts)
    assert (info.root_address_cells, info.root_size_cells) == (1, 1)
    assert (info.reserved_memory_address_cells, info.reserved_memory_size_cells) == (None, None)
    assert not info.reserved_memory_has_ranges
    assert info.regions[0].reg == [(0x50000000, 0x100000)]
    assert info.memory == [(0x40000000, 0x10000000)]


@needs_dtc
def test_more_than_two_cells() -> None:
    dts = """/dts-v1/;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	reserved-memory {
		#address-cells = <3>;
		#size-cells = <1>;
		ranges;
		wide@50000000 { reg = <0x1 0x0 0x50000000 0x1000>; };
		flags { no-map; };
	};
};
"""
    info = decode_dts(dts)
    wide, flags = info.regions
    assert wide.reg == [(0x50000000, 0x1000)]
    assert wide.invalid == ["#address-cells 3 is more than 2: addresses keep their low 64 bits"]
    # Nothing decoded with the wide cells: no note about them.
    assert flags.invalid == ["neither reg nor size: the kernel skips the node"]


@needs_dtc
def test_no_reserved_memory() -> None:
    info = scenario_info(SCENARIOS["no-reserved-memory"])
    assert not info.has_reserved_memory
    assert info.regions == []
    assert info.consumers == []


@needs_dtc
def test_consumers_anywhere_and_dangling_phandles() -> None:
    dts = BASE_DTS + """
/ {
	reserved-memory {
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;
		vpu: vpu@50400000 { reg = <0x0 0x50400000 0x0 0x400000>; };
		pool: pool { size = <0x0 0x100000>; memory-region = <&vpu>; };
	};
	soc {
		bus {
			dev@1 {
				compatible = "acme,dev", "acme,generic";
				status = "disabled";
				memory-region = <&vpu 0x1234 &pool>;
				memory-region-names = "a", "b", "c";
			};
		};
		dangling { memory-region = <0xdead>; };
		mismatch { memory-region = <&pool>; memory-region-names = "x", "y"; };
	};
};
"""
    info = decode_dts(dts)
    assert [c.path for c in info.consumers] == [
        "/reserved-memory/pool",
        "/soc/bus/dev@1",
        "/soc/dangling",
        "/soc/mismatch",
    ]
    vpu, pool = info.regions
    own, dev, dangling, mismatch = info.consumers
    assert own.targets == ["/reserved-memory/vpu@50400000"]
    assert dev.compatible == ["acme,dev", "acme,generic"]
    assert dev.status == "disabled"
    assert dev.phandles == [vpu.phandle, 0x1234, pool.phandle]
    assert dev.names == ["a", "b", "c"]
    assert dev.targets == ["/reserved-memory/vpu@50400000", None, "/reserved-memory/pool"]
    assert (dangling.phandles, dangling.targets, dangling.names) == ([0xDEAD], [None], [])
    assert mismatch.names == ["x", "y"]
    assert info.errors == ["/soc/mismatch: memory-region-names has 2 names for 1 phandles"]


@needs_dtc
def test_memory_nodes() -> None:
    dts = """/dts-v1/;
/ {
	#address-cells = <1>;
	#size-cells = <1>;
	memory@40000000 {
		device_type = "memory";
		reg = <0x40000000 0x10000000 0x80000000 0x20000>;
	};
	memory@c0000000 { device_type = "memory"; reg = <0xc0000000 0x1000>; status = "disabled"; };
	memory@d0000000 { device_type = "memory"; reg = <0xd0000000 0x1000 0x7>; };
	not-memory@0 { device_type = "cpu"; reg = <0x0 0x1000>; };
	soc { memory@e0000000 { device_type = "memory"; reg = <0xe0000000 0x1000>; }; };
};
"""
    info = decode_dts(dts)
    assert info.memory == [(0x40000000, 0x10000000), (0x80000000, 0x20000), (0xD0000000, 0x1000)]
    assert info.errors == [
        "/memory@d0000000: reg length 12 is not a multiple of 8; the trailing bytes are ignored"
    ]


# --------------------------------------------------------------------------
# Malformed trees built by hand (as of_root or sysfs could give them)


def test_malformed_properties_become_notes() -> None:
    tree = node(
        "",
        [
            node(
                "reserved-memory",
                [
                    node(
                        "r0",
                        status=b"okay",
                        compatible=b"shared-dma-pool\0reus",
                        size=u32s(0, 0x1000),
                        phandle=b"\0\1",
                    ),
                    node("r1", status=b"", reg=u32s(0, 0x1000, 0, 0x10), phandle=u32s(0)),
                    node("r2", size=u32s(0x1000)),
                ],
                _address_cells=b"\0\0\2",
                _size_cells=u32s(2),
                ranges=b"",
            ),
            node("dev", memory_region=b"\0\0\0\1\0\0", memory_region_names=b"abc"),
        ],
        _address_cells=u32s(2),
        _size_cells=u32s(2, 2),
    )
    info = decode_tree(tree, "sysfs")
    assert info.source == "sysfs"
    assert (info.root_address_cells, info.root_size_cells) == (2, 1)
    assert info.reserved_memory_address_cells is None
    assert info.reserved_memory_size_cells == 2
    r0, r1, r2 = info.regions
    # Best effort: the text without its missing NUL.
    assert r0.status == "okay"
    assert r0.compatible == ["shared-dma-pool"]
    assert (r0.size, r0.phandle, r0.invalid) == (0x1000, None, [])
    assert r1.status == ""
    assert not r1.available
    assert (r1.reg, r1.phandle) == ([(0x1000, 0x10)], None)
    assert r2.invalid == ["size length 4 is not 8 (#size-cells)"]
    (dev,) = info.consumers
    assert (dev.phandles, dev.targets, dev.names) == ([1], [None], [])
    assert info.errors == [
        "/: #size-cells: length 8 is not 4; ignored",
        "/reserved-memory/r0: phandle: length 2 is not 4; ignored",
        "/reserved-memory/r1: phandle: 0x0 is not a valid phandle; ignored",
        "/reserved-memory: #address-cells: length 3 is not 4; ignored",
        "/reserved-memory/r0: status: string is not NUL-terminated",
        "/reserved-memory/r0: compatible: string list is not NUL-terminated; "
        "the unterminated tail is ignored",
        "/reserved-memory/r1: status: string is not NUL-terminated",
        "/dev: memory-region length 6 is not a multiple of 4; the trailing bytes are ignored",
        "/dev: memory-region-names: string list is not NUL-terminated; "
        "the unterminated tail is ignored",
        "/dev: memory-region-names has 0 names for 1 phandles",
    ]


def test_phandle_rules() -> None:
    tree = node(
        "",
        [
            node(
                "reserved-memory",
                [
                    # The first valid one of phandle / linux,phandle, in property order.
                    node("a", reg=u32s(0, 1, 0), linux__phandle=u32s(7), phandle=u32s(8)),
                    node("b", reg=u32s(0, 2, 0), phandle=u32s(0xFFFFFFFF), linux__phandle=u32s(9)),
                    node("c", reg=u32s(0, 3, 0), phandle=u32s(7)),
                ],
            ),
            node("user", memory_region=u32s(7, 8, 9)),
        ],
    )
    info = decode_tree(tree, "of_root")
    a, b, c = info.regions
    assert (a.phandle, b.phandle, c.phandle) == (7, 9, 7)
    (user,) = info.consumers
    assert user.targets == ["/reserved-memory/a", None, "/reserved-memory/b"]
    assert info.errors == [
        "/reserved-memory/b: phandle: 0xffffffff is not a valid phandle; ignored",
        "/reserved-memory/c: phandle 0x7 is already used by /reserved-memory/a, "
        "which references resolve to",
    ]


def test_reserved_memory_with_unit_address() -> None:
    tree = node(
        "",
        [
            node("reserved-memory@0", [node("x", size=u32s(0x1000))], ranges=b""),
            node("reserved-memory", [node("y", size=u32s(0x1000))]),
        ],
        _size_cells=u32s(1),
    )
    info = decode_tree(tree, "fdt")
    assert info.has_reserved_memory
    assert [r.path for r in info.regions] == ["/reserved-memory@0/x"]
    assert info.errors == [
        "2 /reserved-memory nodes: only the first, reserved-memory@0, is decoded"
    ]


def test_zero_cells() -> None:
    tree = node(
        "",
        [
            node(
                "reserved-memory",
                [node("z", reg=b"", size=b""), node("w", reg=u32s(1))],
                _address_cells=u32s(0),
                _size_cells=u32s(0),
            ),
            RawNode("memory", {"device_type": b"memory\0", "reg": u32s(1, 2)}, []),
        ],
        _address_cells=u32s(0),
        _size_cells=u32s(0),
    )
    info = decode_tree(tree, "fdt")
    z, w = info.regions
    assert (z.size, z.invalid) == (0, ["reg is empty"])
    assert w.invalid == ["reg cannot be decoded with #address-cells 0 and #size-cells 0"]
    assert info.memory == []
    assert info.errors == ["/memory: reg cannot be decoded with root cells 0 and 0"]


def test_cyclic_and_deep_trees() -> None:
    root = node("")
    child = node("loop", [root])
    root.children.append(child)
    info = decode_tree(root, "of_root")
    assert info.errors == ["/loop/: node reached a second time (cyclic tree); skipped"]

    deep = node("")
    tip = deep
    for i in range(20_000):
        nxt = node(f"n{i}")
        tip.children.append(nxt)
        tip = nxt
    tip.props["memory-region"] = u32s(1)
    info = decode_tree(deep, "of_root")
    (consumer,) = info.consumers
    assert consumer.path.count("/") == 20_000
    assert consumer.targets == [None]
