# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests for the flattened devicetree reader, on blobs made by dtc and by hand."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable

import pytest

from rmem_inspect.formats.devicetree import RawNode
from rmem_inspect.formats.fdt import (
    FDT_BEGIN_NODE,
    FDT_END,
    FDT_END_NODE,
    FDT_MAGIC,
    FDT_NOP,
    FDT_PROP,
    FdtError,
    header_total_size,
    parse_fdt,
)
from tests.unit.dts import decompile, dtc

pytestmark = pytest.mark.unit

SIMPLE_DTS = """/dts-v1/;
/memreserve/ 0x48000000 0x100000;
/memreserve/ 0x1234567800000000 0x2000;
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
	soc {
		empty;
		bytes = [01 02 03];
		dev@1000 {
			reg = <0x0 0x1000 0x0 0x100>;
		};
	};
};
"""


@pytest.fixture(scope="module")
def simple() -> bytes:
    return dtc(SIMPLE_DTS)


# --------------------------------------------------------------------------
# A blob builder for token streams dtc would never write.


def tok(token: int) -> bytes:
    return struct.pack(">I", token)


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def begin(name: str | bytes) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    return tok(FDT_BEGIN_NODE) + pad4(raw + b"\0")


def end_node() -> bytes:
    return tok(FDT_END_NODE)


def prop(name_offset: int, value: bytes = b"", length: int | None = None) -> bytes:
    size = len(value) if length is None else length
    return tok(FDT_PROP) + struct.pack(">II", size, name_offset) + pad4(value)


class Strings:
    """A strings block that hands out name offsets."""

    def __init__(self) -> None:
        self.data = b""
        self.offsets: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        if name not in self.offsets:
            self.offsets[name] = len(self.data)
            self.data += name.encode() + b"\0"
        return self.offsets[name]


def build(
    struct_block: bytes,
    strings: bytes = b"",
    *,
    rsv: Iterable[tuple[int, int]] = (),
    rsv_terminated: bool = True,
    version: int = 17,
    last_comp_version: int = 16,
    boot_cpuid: int = 0,
) -> bytes:
    """
    Lay out a version 17 blob: header, struct block, strings block and the
    memory reservation block last (so that an unterminated one runs into the
    end of the blob).
    """
    rsv_block = b"".join(struct.pack(">QQ", a, s) for a, s in rsv)
    if rsv_terminated:
        rsv_block += struct.pack(">QQ", 0, 0)
    off_struct = 40
    off_strings = off_struct + len(struct_block)
    off_rsv = off_strings + len(strings)
    off_rsv += -off_rsv % 8
    total = off_rsv + len(rsv_block)
    header = struct.pack(
        ">10I",
        FDT_MAGIC,
        total,
        off_struct,
        off_strings,
        off_rsv,
        version,
        last_comp_version,
        boot_cpuid,
        len(strings),
        len(struct_block),
    )
    body = header + struct_block + strings
    return body + b"\0" * (off_rsv - len(body)) + rsv_block


def minimal_struct(*inner: bytes) -> bytes:
    return begin("") + b"".join(inner) + end_node() + tok(FDT_END)


def set_u32(blob: bytes, offset: int, value: int) -> bytes:
    out = bytearray(blob)
    struct.pack_into(">I", out, offset, value)
    return bytes(out)


def get_u32(blob: bytes, offset: int) -> int:
    return int(struct.unpack_from(">I", blob, offset)[0])


# --------------------------------------------------------------------------
# Valid blobs


def test_parse_dtc_blob(simple: bytes) -> None:
    fdt = parse_fdt(simple)
    assert fdt.version == 17
    assert fdt.last_comp_version == 16
    assert fdt.boot_cpuid == 0
    assert fdt.total_size == len(simple)
    assert fdt.mem_reserve == [(0x48000000, 0x100000), (0x1234567800000000, 0x2000)]
    root = fdt.root
    assert root.name == ""
    assert list(root.props) == ["#address-cells", "#size-cells", "compatible"]
    assert root.props["#address-cells"] == b"\0\0\0\x02"
    assert root.props["compatible"] == b"linux,dummy-virt\0"
    assert [c.name for c in root.children] == ["chosen", "memory@40000000", "soc"]
    soc = root.children[2]
    assert soc.props == {"empty": b"", "bytes": b"\x01\x02\x03"}
    assert soc.children == [
        RawNode(
            name="dev@1000",
            props={"reg": struct.pack(">4I", 0, 0x1000, 0, 0x100)},
            children=[],
        )
    ]
    assert root.children[0].props == {"bootargs": b"console=ttyAMA0\0"}


def test_version_16_and_boot_cpuid() -> None:
    blob = dtc(SIMPLE_DTS, "-V", "16", "-b", "3")
    fdt = parse_fdt(blob)
    assert (fdt.version, fdt.boot_cpuid) == (16, 3)
    assert fdt.root == parse_fdt(dtc(SIMPLE_DTS)).root


def test_version_16_struct_runs_to_totalsize() -> None:
    # Version 16 has no size_dt_struct: the struct block ends at totalsize.
    blob = build(minimal_struct(), version=16)
    blob = set_u32(blob, 36, 0xFFFFFFFF)  # Not a header field in version 16.
    assert parse_fdt(blob).root == RawNode("", {}, [])


def test_trailing_bytes_after_totalsize_are_ignored(simple: bytes) -> None:
    fdt = parse_fdt(simple + b"\xff" * 100)
    assert fdt.total_size == len(simple)
    assert fdt.root == parse_fdt(simple).root


def test_memreserve_entries() -> None:
    blob = dtc("/dts-v1/;\n/memreserve/ 0x1000 0x2000;\n/ { };\n")
    assert parse_fdt(blob).mem_reserve == [(0x1000, 0x2000)]
    assert parse_fdt(dtc("/dts-v1/;\n/ { };\n")).mem_reserve == []


def test_memreserve_ends_at_first_zero_size() -> None:
    # Like libfdt and the kernel, an entry with size 0 ends the block.
    blob = build(
        minimal_struct(), rsv=[(0x1000, 0x10), (0x5000, 0), (0x9000, 0x10)], rsv_terminated=False
    )
    assert parse_fdt(blob).mem_reserve == [(0x1000, 0x10)]


def test_hand_built_blob_with_nops() -> None:
    names = Strings()
    struct_block = (
        begin("")
        + tok(FDT_NOP)
        + prop(names("compatible"), b"test\0")
        + tok(FDT_NOP)
        + begin("child@1")
        + prop(names("reg"), struct.pack(">2I", 1, 2))
        + prop(names("flag"))
        + end_node()
        + tok(FDT_NOP)
        + end_node()
        + tok(FDT_END)
    )
    blob = build(struct_block, names.data, rsv=[(0x100, 0x200)], boot_cpuid=1)
    # dtc reads it too: the builder makes real blobs.
    assert "child@1" in decompile(blob)
    fdt = parse_fdt(blob)
    assert fdt.mem_reserve == [(0x100, 0x200)]
    assert fdt.boot_cpuid == 1
    assert fdt.root == RawNode(
        "",
        {"compatible": b"test\0"},
        [RawNode("child@1", {"reg": b"\0\0\0\x01\0\0\0\x02", "flag": b""}, [])],
    )


def test_nop_between_root_and_end() -> None:
    # libfdt skips NOPs wherever they are (dtc's own reader does not).
    blob = build(begin("") + end_node() + tok(FDT_NOP) * 3 + tok(FDT_END))
    assert parse_fdt(blob).root == RawNode("", {}, [])


def test_shared_property_names() -> None:
    names = Strings()
    body = b"".join(begin(f"n{i}") + prop(names("reg"), tok(i)) + end_node() for i in range(3))
    fdt = parse_fdt(build(minimal_struct(body), names.data))
    assert [c.props["reg"] for c in fdt.root.children] == [tok(0), tok(1), tok(2)]


def test_ten_thousand_nodes(record_property: Callable[[str, object], None]) -> None:
    # 99 groups of 100 children: 99 + 9900 + the root = 10,000 nodes.
    groups = []
    for g in range(99):
        children = "".join(
            f"\t\tn@{i:x} {{ reg = <{i}>; value = <{g} {i}>; }};\n" for i in range(100)
        )
        groups.append(
            f"\tg{g} {{\n\t\t#address-cells = <1>;\n\t\t#size-cells = <0>;\n{children}\t}};\n"
        )
    blob = dtc("/dts-v1/;\n/ {\n" + "".join(groups) + "};\n")
    start = time.perf_counter()
    fdt = parse_fdt(blob)
    elapsed = time.perf_counter() - start
    record_property("parse_seconds", elapsed)
    print(f"parsed {len(blob)} bytes, 10,000 nodes, in {elapsed:.3f} s")
    assert len(fdt.root.children) == 99
    assert sum(len(g.children) for g in fdt.root.children) == 9900
    assert fdt.root.children[98].children[99].props["value"] == struct.pack(">2I", 98, 99)
    assert parse_fdt(blob, max_nodes=10_000).root == fdt.root
    with pytest.raises(FdtError, match="more than the limit of 9999 nodes"):
        parse_fdt(blob, max_nodes=9_999)


def nested(depth: int) -> bytes:
    """A struct block with ``depth`` levels of nodes, root included."""
    return (
        begin("")
        + b"".join(begin(f"l{i}") for i in range(1, depth))
        + end_node() * depth
        + tok(FDT_END)
    )


def test_depth_limit() -> None:
    node = parse_fdt(build(nested(64))).root
    levels = 1
    while node.children:
        node = node.children[0]
        levels += 1
    assert levels == 64
    with pytest.raises(FdtError, match="nested deeper than the limit of 64 levels"):
        parse_fdt(build(nested(65)))
    dts = "/dts-v1/;\n/ { a { b { c { }; }; }; };\n"
    assert parse_fdt(dtc(dts), max_depth=4).root.children[0].name == "a"
    with pytest.raises(FdtError, match="limit of 3 levels"):
        parse_fdt(dtc(dts), max_depth=3)


def test_deep_blob_does_not_recurse() -> None:
    # Far deeper than Python's recursion limit, with the limit lifted.
    fdt = parse_fdt(build(nested(5000)), max_depth=5000)
    assert fdt.root.children[0].name == "l1"


# --------------------------------------------------------------------------
# header_total_size()


def test_header_total_size(simple: bytes) -> None:
    assert header_total_size(simple[:40]) == len(simple)
    assert header_total_size(simple) == len(simple)
    assert header_total_size(simple[:40], max_size=len(simple)) == len(simple)
    with pytest.raises(FdtError, match=f"larger than the limit of {len(simple) - 1} bytes"):
        header_total_size(simple[:40], max_size=len(simple) - 1)
    with pytest.raises(FdtError, match="bad magic"):
        header_total_size(b"\0" * 40)
    with pytest.raises(FdtError, match="shorter than the 40-byte version 17 header"):
        header_total_size(simple[:36])
    # The header alone says where the blocks end: a block past totalsize is caught.
    with pytest.raises(FdtError, match="strings block"):
        header_total_size(set_u32(simple[:40], 4, get_u32(simple, 12)))


# --------------------------------------------------------------------------
# Errors in the header and the block layout


def corrupt(field: int, value: int) -> Callable[[bytes], bytes]:
    return lambda blob: set_u32(blob, field, value)


HEADER_ERRORS: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("empty", lambda b: b"", r"blob is 0 bytes, too short to hold the FDT magic at offset 0"),
    ("short magic", lambda b: b[:3], "too short to hold the FDT magic"),
    ("bad magic", corrupt(0, 0xFEEDD00D), r"bad magic 0xfeedd00d at offset 0x0"),
    ("short header", lambda b: b[:20], "blob is 20 bytes, shorter than the smallest FDT header"),
    ("v17 header cut", lambda b: b[:39], "blob is 39 bytes, shorter than the 40-byte"),
    ("version 15", corrupt(20, 15), r"unsupported FDT version 15 at offset 0x14"),
    ("version 18", corrupt(20, 18), "unsupported FDT version 18"),
    ("last comp 18", corrupt(24, 18), r"last compatible version 18 at offset 0x18 is newer"),
    (
        "last comp > version",
        lambda b: set_u32(set_u32(b, 20, 16), 24, 17),
        "last compatible version 17 at offset 0x18 is newer than 16",
    ),
    ("totalsize tiny", corrupt(4, 12), r"totalsize 12 at offset 0x4 is smaller than the 40-byte"),
    ("totalsize huge", corrupt(4, 0x80000000), "larger than the limit of 2147483647 bytes"),
    ("rsvmap in header", corrupt(16, 8), r"memory reservation block offset 0x8 .*outside"),
    ("rsvmap past end", corrupt(16, 0x10000), r"memory reservation block offset 0x10000"),
    ("rsvmap unaligned", corrupt(16, 44), "memory reservation block offset 0x2c .*8-byte aligned"),
    ("struct in header", corrupt(8, 0), r"struct block offset 0x0 \(header field at 0x8\)"),
    ("struct past end", corrupt(8, 0x10000), r"struct block offset 0x10000 .*outside"),
    ("struct size", corrupt(36, 0x10000), r"struct block at offset 0x\w+ with size 65536 ends"),
    ("struct unaligned", corrupt(8, 0x49), r"struct block offset 0x49 .*4-byte aligned"),
    ("strings past end", corrupt(12, 0x10000), r"strings block offset 0x10000 .*outside"),
    ("strings size", corrupt(32, 0x10000), r"strings block at offset 0x\w+ with size 65536"),
]


@pytest.mark.parametrize(
    "mutate, message", [(m, e) for _, m, e in HEADER_ERRORS], ids=[i for i, _, _ in HEADER_ERRORS]
)
def test_header_errors(simple: bytes, mutate: Callable[[bytes], bytes], message: str) -> None:
    with pytest.raises(FdtError, match=message):
        parse_fdt(mutate(simple))


def test_truncated_blob_names_both_sizes(simple: bytes) -> None:
    cut = len(simple) - 10
    with pytest.raises(FdtError) as info:
        parse_fdt(simple[:cut])
    assert str(info.value) == (
        f"blob is truncated: header totalsize is {len(simple)} bytes but only {cut} bytes "
        "were given"
    )


def test_unterminated_memreserve() -> None:
    blob = build(minimal_struct(), rsv=[(0x1000, 0x2000)], rsv_terminated=False)
    with pytest.raises(FdtError, match="memory reservation block at offset 0x\\w+ has no term"):
        parse_fdt(blob)


# --------------------------------------------------------------------------
# Errors in the struct block

S = Strings()
NAME = S("name")
DUP = S("dup")
EMPTY_NAME_OFFSET = len(S.data)
STRINGS = S.data + b"\0"

STRUCT_ERRORS: list[tuple[str, bytes, str]] = [
    ("bad token", minimal_struct(tok(5)), r"unknown token 0x5 at offset 0x30"),
    ("bad token 0", begin("") + tok(0), r"unknown token 0x0 at offset 0x30"),
    ("no tokens", b"", r"struct block ends at offset 0x28 before the FDT_END token"),
    ("missing FDT_END", begin("") + end_node(), "struct block ends at offset 0x34 before"),
    (
        "unterminated node name",
        begin("") + tok(FDT_BEGIN_NODE) + b"abcd",
        r"node name at offset 0x34 is not NUL-terminated within its block",
    ),
    (
        "node name too long",
        minimal_struct(begin("a" * 300) + end_node()),
        r"node name at offset 0x34 is longer than 255 bytes",
    ),
    (
        "slash in node name",
        minimal_struct(begin("a/b") + end_node()),
        "node name at offset 0x34 has characters that are not allowed",
    ),
    (
        "non-ASCII node name",
        minimal_struct(begin(b"caf\xc3\xa9") + end_node()),
        "not allowed",
    ),
    (
        "empty child name",
        minimal_struct(begin("") + end_node()),
        r"node at offset 0x30 under / has an empty name",
    ),
    ("named root", begin("root") + end_node() + tok(FDT_END), "root node at offset 0x28 has name"),
    (
        "bad string offset",
        minimal_struct(prop(0x1000, b"x")),
        r"property at offset 0x30 has name offset 0x1000 outside the \d+-byte strings block",
    ),
    (
        "empty property name",
        minimal_struct(prop(EMPTY_NAME_OFFSET)),
        "property at offset 0x30 has an empty name",
    ),
    (
        "property past block",
        minimal_struct(prop(NAME, b"", length=0x1000)),
        r"property at offset 0x30 has length 4096, which runs past the struct block end",
    ),
    (
        "property header past block",
        begin("") + tok(FDT_PROP) + tok(0),
        r"property header at offset 0x30 runs past the struct block end",
    ),
    (
        "property outside node",
        begin("") + end_node() + prop(NAME, b"x") + tok(FDT_END),
        r"FDT_PROP at offset 0x34 is outside any node",
    ),
    (
        "property after subnode",
        minimal_struct(begin("a") + end_node() + prop(NAME, b"x")),
        r"property at offset 0x3c of node / follows a subnode",
    ),
    (
        "duplicate property",
        minimal_struct(begin("a") + prop(DUP, b"x") + prop(DUP, b"y") + end_node()),
        r"property 'dup' at offset 0x\w+ appears twice in node /a",
    ),
    (
        "leading NOP",
        tok(FDT_NOP) + minimal_struct(),
        r"struct block at offset 0x28 starts with token 0x4 instead of FDT_BEGIN_NODE",
    ),
    (
        "leading FDT_END_NODE",
        end_node() + tok(FDT_END),
        r"struct block at offset 0x28 starts with token 0x2 instead of FDT_BEGIN_NODE",
    ),
    (
        "extra end node",
        minimal_struct()[:-4] + end_node() + tok(FDT_END),
        r"FDT_END_NODE at offset 0x34 has no matching",
    ),
    (
        "FDT_END inside node",
        begin("") + begin("a") + end_node() + tok(FDT_END),
        r"FDT_END at offset 0x\w+ inside node / \(1 nodes left open\)",
    ),
    ("FDT_END first", tok(FDT_END), r"starts with token 0x9 instead of FDT_BEGIN_NODE"),
    (
        "second root",
        begin("") + end_node() + begin("") + end_node() + tok(FDT_END),
        r"second root node at offset 0x34",
    ),
]


@pytest.mark.parametrize(
    "struct_block, message",
    [(s, e) for _, s, e in STRUCT_ERRORS],
    ids=[i for i, _, _ in STRUCT_ERRORS],
)
def test_struct_errors(struct_block: bytes, message: str) -> None:
    with pytest.raises(FdtError, match=message):
        parse_fdt(build(struct_block, STRINGS))


def test_unterminated_property_name() -> None:
    blob = build(minimal_struct(prop(0, b"x")), b"abc")
    with pytest.raises(FdtError, match="property name at offset 0x\\w+ is not NUL-terminated"):
        parse_fdt(blob)


def test_bad_token_in_dtc_blob(simple: bytes) -> None:
    # The first token after the root's name (offset 8 into the struct block) is a
    # property; make it an unknown token.
    off = get_u32(simple, 8) + 8
    assert get_u32(simple, off) == FDT_PROP
    with pytest.raises(FdtError, match=f"unknown token 0x7 at offset {off:#x}"):
        parse_fdt(set_u32(simple, off, 7))


def test_bad_string_offset_in_dtc_blob(simple: bytes) -> None:
    off = get_u32(simple, 8) + 8
    with pytest.raises(FdtError, match=f"property at offset {off:#x} has name offset 0xffff"):
        parse_fdt(set_u32(simple, off + 8, 0xFFFF))


def test_too_many_nodes() -> None:
    with pytest.raises(FdtError, match="node at offset 0x\\w+ is more than the limit of 4 nodes"):
        parse_fdt(dtc(SIMPLE_DTS), max_nodes=4)
    assert parse_fdt(dtc(SIMPLE_DTS), max_nodes=5).root.name == ""


def test_errors_are_value_errors() -> None:
    assert issubclass(FdtError, ValueError)
