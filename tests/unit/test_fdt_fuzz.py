# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fuzz the FDT reader and the tree decoder with hypothesis: whatever the bytes,
the reader raises FdtError or returns a tree, and the decoder never raises.
"""

from __future__ import annotations

import functools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.formats.devicetree import RawNode, decode_tree
from rmem_inspect.formats.fdt import FdtError, header_total_size, parse_fdt
from rmem_inspect.model import DtInfo, KernelInfo, Snapshot
from tests.unit.dts import dtc, needs_dtc
from vmcores.scenarios import SCENARIOS, overlay_dts

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=300, deadline=None, derandomize=True)

BASE_DTS = """/dts-v1/;
/memreserve/ 0x48000000 0x100000;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	compatible = "linux,dummy-virt";
	chosen {
		bootargs = "console=ttyAMA0";
	};
	memory@40000000 {
		device_type = "memory";
		reg = <0x0 0x40000000 0x0 0x40000000>;
	};
};
"""


@functools.cache
def valid_blob() -> bytes:
    """The baseline scenario compiled by dtc: reserved-memory and consumers."""
    return dtc(BASE_DTS + overlay_dts(SCENARIOS["baseline"]))


def check(blob: bytes) -> None:
    """The property under test: FdtError or a tree that decodes without raising."""
    try:
        total = header_total_size(blob)
    except FdtError:
        total = None
    try:
        fdt = parse_fdt(blob)
    except FdtError as e:
        assert str(e)
        return
    # Whatever parses had a valid header.
    assert total == fdt.total_size <= len(blob)
    info = decode_tree(fdt.root, "fdt")
    assert isinstance(info, DtInfo)
    # And the result is always a valid snapshot part.
    snapshot = Snapshot(kernel=KernelInfo(release="x", arch="aarch64"), fdt=info)
    assert Snapshot.loads(snapshot.dumps()).fdt == info


@needs_dtc
def test_valid_blob_passes() -> None:
    blob = valid_blob()
    check(blob)
    assert len(decode_tree(parse_fdt(blob).root, "fdt").regions) == 5


@FUZZ
@given(st.binary(max_size=1024))
def test_random_bytes(blob: bytes) -> None:
    check(blob)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_after_a_valid_header_start(tail: bytes) -> None:
    # Magic, a totalsize that matches, version 17: the blocks are random.
    total = 40 + len(tail)
    check(
        struct.pack(">II", 0xD00DFEED, total) + tail[:12] + struct.pack(">II", 17, 16) + tail[12:]
    )


#: One mutation: (kind, position, value). Positions wrap around the blob size.
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "byte", "word", "truncate", "delete", "insert"]),
        st.integers(min_value=0, max_value=1 << 20),
        st.integers(min_value=0, max_value=0xFFFFFFFF),
    ),
    min_size=1,
    max_size=6,
)

#: Values likely to hit edge cases when written over a header field or token.
WORDS = [0, 1, 2, 3, 4, 9, 16, 17, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xD00DFEED]


def mutate(blob: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(blob)
    for kind, position, value in mutations:
        if not data:
            break
        pos = position % len(data)
        if kind == "flip":
            data[pos] ^= 1 << (value % 8)
        elif kind == "byte":
            data[pos] = value & 0xFF
        elif kind == "word":
            # An aligned word (a header field or a token), often a special value.
            pos &= ~3
            word = WORDS[value % len(WORDS)] if value % 2 else value
            data[pos : pos + 4] = word.to_bytes(4, "big")
        elif kind == "truncate":
            del data[pos:]
        elif kind == "delete":
            del data[pos : pos + 1 + value % 8]
        else:
            data[pos:pos] = value.to_bytes(4, "big")[: 1 + value % 4]
    return bytes(data)


@needs_dtc
@FUZZ
@given(MUTATIONS)
def test_mutated_valid_blob(mutations: list[tuple[str, int, int]]) -> None:
    check(mutate(valid_blob(), mutations))


@needs_dtc
@FUZZ
@given(st.integers(min_value=0, max_value=9), st.sampled_from(WORDS + [40, 44, 0x1000]))
def test_header_field_values(field: int, value: int) -> None:
    blob = bytearray(valid_blob())
    struct.pack_into(">I", blob, field * 4, value)
    check(bytes(blob))


# --------------------------------------------------------------------------
# decode_tree() on random trees with random values of the properties it reads

PROPERTY_NAMES = [
    "#address-cells",
    "#size-cells",
    "ranges",
    "reg",
    "size",
    "alignment",
    "alloc-ranges",
    "compatible",
    "status",
    "no-map",
    "reusable",
    "linux,cma-default",
    "phandle",
    "linux,phandle",
    "memory-region",
    "memory-region-names",
    "device_type",
]

#: Mostly well-formed values (cells, strings), sometimes odd bytes.
VALUES = st.one_of(
    st.lists(st.integers(min_value=0, max_value=0xFFFFFFFF), max_size=6).map(
        lambda cells: struct.pack(f">{len(cells)}I", *cells)
    ),
    st.lists(st.integers(min_value=0, max_value=4), max_size=4).map(
        lambda cells: struct.pack(f">{len(cells)}I", *cells)
    ),
    st.sampled_from([b"okay\0", b"disabled\0", b"memory\0", b"a\0b\0", b"ok", b""]),
    st.binary(max_size=24),
)

NODE_NAMES = st.sampled_from(["reserved-memory", "reserved-memory@0", "memory@0", "n@1", "x"])


def raw_nodes() -> st.SearchStrategy[RawNode]:
    props = st.dictionaries(st.sampled_from(PROPERTY_NAMES), VALUES, max_size=6)
    leaf = st.builds(RawNode, name=NODE_NAMES, props=props, children=st.just([]))
    return st.recursive(
        leaf,
        lambda children: st.builds(
            RawNode, name=NODE_NAMES, props=props, children=st.lists(children, max_size=5)
        ),
        max_leaves=20,
    )


@FUZZ
@given(raw_nodes())
def test_decode_random_trees(root: RawNode) -> None:
    info = decode_tree(root, "sysfs")
    assert isinstance(info, DtInfo)
    for region in info.regions:
        assert region.path.startswith("/reserved-memory")
    for consumer in info.consumers:
        assert len(consumer.targets) == len(consumer.phandles)
    snapshot = Snapshot(kernel=KernelInfo(release="x", arch="aarch64"), fdt=info)
    assert Snapshot.loads(snapshot.dumps()).fdt == info
