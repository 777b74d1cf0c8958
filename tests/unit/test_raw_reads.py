# SPDX-License-Identifier: GPL-2.0-or-later
"""
RawStruct and BlockCache (rmem_inspect/collect/reading.py) on real drgn programs
built in memory: types from a type finder, memory from segments whose reads are
counted. No dump needed; the collectors' use of both is covered by the vmcore
tier (snapshots equal to the golden ones).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import drgn
import pytest
from drgn import Architecture, FaultError, Platform, PlatformFlags, Program, TypeMember

from rmem_inspect.collect.reading import BlockCache, RawStruct, read_cstr

pytestmark = pytest.mark.unit

LE64 = Platform(Architecture.AARCH64, PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN)
BE64 = Platform(Architecture.UNKNOWN, PlatformFlags.IS_64_BIT)


def _program(platform: Platform) -> Program:
    """A program whose only types are a ``struct property`` look-alike and friends."""
    prog = Program(platform)
    char_p = prog.pointer_type(prog.int_type("char", 1, True))
    int_t = prog.int_type("int", 4, True)
    u32 = prog.typedef_type("u32", prog.int_type("unsigned int", 4, False))
    u64 = prog.int_type("unsigned long long", 8, False)
    prop = prog.struct_type(
        "property",
        40,
        [
            TypeMember(char_p, "name", 0),
            TypeMember(int_t, "length", 64),
            TypeMember(prog.pointer_type(prog.void_type()), "value", 128),
            TypeMember(u32, "flags", 96),  # in the hole after length
            TypeMember(u64, "next", 192),
            TypeMember(
                drgn.Object(prog, prog.int_type("unsigned int", 4, False), bit_field_size=3),
                "bits",
                256,
            ),
        ],
    )
    color = prog.enum_type("color", prog.int_type("int", 4, True), [drgn.TypeEnumerator("RED", -1)])
    holder = prog.struct_type("holder", 8, [TypeMember(color, "c", 0), TypeMember(int_t, "x", 32)])
    nested = prog.struct_type("nested", 40, [TypeMember(prop, "p", 0)])
    # a struct member behind a typedef, not at offset 0 (like atomic_long_t state_var)
    outer = prog.struct_type(
        "outer",
        48,
        [TypeMember(int_t, "pad", 0), TypeMember(prog.typedef_type("prop_t", prop), "q", 64)],
    )
    types = {"property": prop, "holder": holder, "nested": nested, "outer": outer}

    def find(
        prog: Program, kinds: drgn.TypeKindSet, name: str, filename: str | None
    ) -> drgn.Type | None:
        return types.get(name) if drgn.TypeKind.STRUCT in kinds else None

    prog.register_type_finder("test", find, enable_index=0)
    return prog


def _segment(prog: Program, address: int, data: bytes) -> list[tuple[int, int]]:
    """Map ``data`` at ``address``; return the list the segment's reads are logged to."""
    calls: list[tuple[int, int]] = []

    def read(addr: int, count: int, offset: int, physical: bool) -> bytes:
        calls.append((addr, count))
        return data[offset : offset + count]

    prog.add_memory_segment(address, len(data), read)
    return calls


def test_raw_struct_little_endian_any_order() -> None:
    prog = _program(LE64)
    raw = struct.pack("<QiIQQI4x", 0xFFFF000012345678, -5, 7, 0x1000, 0xFFFF0000DEAD0000, 0)
    _segment(prog, 0x10000, raw)
    layout = RawStruct(prog, "struct property", ["next", "length", "name", "flags", "value"])
    assert layout.size == 40
    assert layout.read(prog, 0x10000) == (0xFFFF0000DEAD0000, -5, 0xFFFF000012345678, 7, 0x1000)
    # the same as drgn's own decoding of the object
    obj = drgn.Object(prog, "struct property", address=0x10000)
    assert layout.read(prog, 0x10000) == tuple(
        getattr(obj, m).value_() for m in ["next", "length", "name", "flags", "value"]
    )


def test_raw_struct_big_endian_and_enum() -> None:
    prog = _program(BE64)
    _segment(prog, 0x2000, struct.pack(">QiIQQI4x", 1, -2, 3, 4, 5, 0) + struct.pack(">ii", -1, 9))
    assert RawStruct(prog, "struct property", ["name", "length", "next"]).read(prog, 0x2000) == (
        1,
        -2,
        5,
    )
    assert RawStruct(prog, "struct holder", ["c", "x"]).read(prog, 0x2028) == (-1, 9)


def test_raw_struct_member_paths_and_arrays() -> None:
    prog = _program(LE64)
    one = struct.pack("<i4x", 3) + struct.pack("<QiIQQI4x", 11, -12, 13, 14, 15, 0)
    two = struct.pack("<i4x", 4) + struct.pack("<QiIQQI4x", 21, -22, 23, 24, 25, 0)
    _segment(prog, 0x8000, one + two)
    layout = RawStruct(prog, "struct outer", ["q.length", "q.next", "pad"])
    assert layout.size == 48
    array = prog.read(0x8000, 2 * layout.size)
    for i in range(2):
        obj = drgn.Object(prog, "struct outer", address=0x8000 + i * layout.size)
        want = (obj.q.length.value_(), obj.q.next.value_(), obj.pad.value_())
        assert layout.unpack(array, i * layout.size) == want
        assert layout.read(prog, 0x8000 + i * layout.size) == want
    assert layout.unpack(array, layout.size) == (-22, 25, 4)


@pytest.mark.parametrize(
    ("type_name", "member", "why"),
    [
        ("struct property", "bits", "bit field"),
        ("struct nested", "p", "not a scalar"),
        ("struct outer", "q.bits", "bit field"),
        ("struct outer", "q", "not a scalar"),
    ],
)
def test_raw_struct_refuses_what_it_cannot_unpack(type_name: str, member: str, why: str) -> None:
    with pytest.raises(TypeError, match=why):
        RawStruct(_program(LE64), type_name, [member])


def test_raw_struct_faults_like_drgn() -> None:
    prog = _program(LE64)
    _segment(prog, 0x10000, bytes(20))  # shorter than the struct
    with pytest.raises(FaultError):
        RawStruct(prog, "struct property", ["name"]).read(prog, 0x10000)


BLOCK = BlockCache.BLOCK


def _cached(data_len: int, base: int = 0x40000) -> tuple[Program, bytes, list[tuple[int, int]]]:
    prog = _program(LE64)
    data = bytes((i * 7 + i // 251) & 0xFF for i in range(data_len))
    return prog, data, _segment(prog, base, data)


def test_block_cache_reads_each_block_once() -> None:
    prog, data, calls = _cached(3 * BLOCK)
    mem = BlockCache(prog)
    base = 0x40000
    for off, n in [(0, 8), (100, 40), (BLOCK - 4, 8), (2 * BLOCK + 1, 16), (5, 3), (BLOCK + 9, 1)]:
        assert mem.read(base + off, n) == data[off : off + n] == prog.read(base + off, n)
    calls.clear()
    for off in range(0, 3 * BLOCK - 64, 61):
        assert mem.read(base + off, 64) == data[off : off + 64]
    assert calls == []  # every block was already in the cache
    assert mem.read(base, 0) == b""


def test_block_cache_falls_back_where_a_block_does_not_read_whole() -> None:
    # A "truncated dump": the mapping ends 100 bytes into its third block.
    prog, data, calls = _cached(2 * BLOCK + 100)
    mem = BlockCache(prog)
    base = 0x40000
    off = 2 * BLOCK + 10
    assert mem.read(base + off, 50) == data[off : off + 50]
    with pytest.raises(FaultError) as cached:
        mem.read(base + off, 200)  # runs past the end of the mapping
    with pytest.raises(FaultError) as direct:
        prog.read(base + off, 200)
    assert cached.value.address == direct.value.address
    with pytest.raises(FaultError):
        mem.read(0x9000_0000, 4)  # nothing mapped there
    # a read across a good and the partial block also goes through
    off = 2 * BLOCK - 30
    assert mem.read(base + off, 60) == data[off : off + 60]


def test_block_cache_eviction_and_large_reads() -> None:
    prog, data, calls = _cached(12 * BLOCK)
    mem = BlockCache(prog, max_blocks=2)
    base = 0x40000
    for off in (0, 5 * BLOCK + 3, 9 * BLOCK + 17, 11 * BLOCK, 0):
        assert mem.read(base + off, 32) == data[off : off + 32]
    assert len(mem._blocks) <= 2
    calls.clear()
    assert mem.read(base, 10 * BLOCK) == data[: 10 * BLOCK]  # over MAX_SPAN: one direct read
    assert sum(n for _, n in calls) == 10 * BLOCK


def test_read_cstr_through_the_cache() -> None:
    prog = _program(LE64)
    page = bytearray(2 * BLOCK)
    page[BLOCK - 3 : BLOCK + 4] = b"abcdef\0"  # a name across a block boundary
    page[10:14] = b"reg\0"
    _segment(prog, 0x40000, bytes(page))
    mem = BlockCache(prog)
    read: Callable[[int], str | None]
    for read in (lambda a: read_cstr(mem, a), lambda a: read_cstr(prog, a)):
        assert read(0x40000 + BLOCK - 3) == "abcdef"
        assert read(0x40000 + 10) == "reg"
        assert read(0x9000_0000) is None
