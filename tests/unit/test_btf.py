# SPDX-License-Identifier: GPL-2.0-or-later
"""
The BTF reader (rmem_inspect/formats/btf.py) and the drgn types built from it
(rmem_inspect/collect/kernel_btf.py) on blobs written record by record after
include/uapi/linux/btf.h. The kernel's own blobs are read in the vmcore tier
(tests/vmcore/test_btf_kernel.py), against the vmlinux's DWARF.
"""

from __future__ import annotations

import struct

import drgn
import pytest
from drgn import Architecture, Platform, PlatformFlags, Program, TypeKind

from rmem_inspect.collect.kernel_btf import BtfTypeBuilder
from rmem_inspect.formats.btf import Btf, BtfError
from tests.unit.btf_blobs import BtfWriter, sample_blob

pytestmark = pytest.mark.unit

ARM64 = Platform(Architecture.AARCH64, PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN)


def builder(blob: bytes) -> tuple[Program, BtfTypeBuilder]:
    prog = Program(ARM64)
    return prog, BtfTypeBuilder(prog, Btf(blob))


@pytest.mark.parametrize("order", ["<", ">"])
def test_every_kind_decodes(order: str) -> None:
    btf = Btf(sample_blob(order))
    assert btf.count == 31
    rm = btf.type(btf.find("struct", "reserved_mem")[0])
    assert rm.size == 40
    assert [(m.name, m.bit_offset) for m in rm.members] == [
        ("name", 0), ("ops", 64), ("base", 128), ("size", 192), ("priv", 256)
    ]  # fmt: skip
    bits = btf.type(btf.find("struct", "bits")[0])
    assert [(m.bit_offset, m.bit_size) for m in bits.members] == [(0, 3), (3, 5), (8, 24)]
    assert btf.find_enumerator("MEMBLOCK_NOMAP") == (14, 4)
    assert btf.find_enumerator("BIG_NEG") == (23, -2)
    assert btf.find_enumerator("BIG_HUGE") == (23, 1 << 40)
    assert btf.find_enumerator("NO_SUCH") is None
    assert btf.size_of(16) == 64 * 40
    assert btf.size_of(btf.find("typedef", "phys_addr_t")[0]) == 8
    assert btf.resolve(30) == 12  # volatile restrict -> the pointer


def test_lookup_prefers_definitions_and_respects_namespaces() -> None:
    btf = Btf(sample_blob())
    # a forward declaration and the definition: the definition first
    assert btf.find("struct", "reserved_mem_ops") == [21, 8]
    assert btf.find("union", "reserved_mem_ops") == []
    assert btf.find("union", "sock_common") == [31]
    assert btf.find("struct", "sock_common") == []
    assert btf.find("union", "u") == [22]
    assert btf.find("struct", "u") == []
    assert btf.find("func", "rmem_init") == [19]
    # a VAR named like the variable is not a type
    assert btf.find("int", "reserved_mem_count") == []


def test_drgn_types_match_the_c_declarations() -> None:
    _, b = builder(sample_blob())
    rm = b.find(TypeKind.STRUCT, "reserved_mem")
    assert rm is not None and rm.size == 40
    assert [(m.name, m.offset) for m in rm.members] == [
        ("name", 0), ("ops", 8), ("base", 16), ("size", 24), ("priv", 32)
    ]  # fmt: skip
    assert str(rm.member("name").type) == "const char *"
    assert rm.member("base").type.name == "phys_addr_t"
    assert rm.member("base").type.type.type.size == 8
    lh = b.find(TypeKind.STRUCT, "list_head")
    assert lh is not None  # a self-reference, resolved lazily:
    assert lh.member("next").type.type.tag == "list_head"
    assert lh.member("next").type.type.member("prev").offset == 8
    bits = b.find(TypeKind.STRUCT, "bits")
    assert bits is not None
    assert [(m.bit_offset, m.bit_field_size) for m in bits.members] == [(0, 3), (3, 5), (8, 24)]
    ops = b.find(TypeKind.STRUCT, "reserved_mem_ops")
    assert ops is not None and ops.is_complete()
    fn = ops.member("node_init").type.type
    assert fn.kind == TypeKind.FUNCTION and fn.is_variadic
    assert [p.name for p in fn.parameters] == ["rmem"]
    flags = b.find(TypeKind.ENUM, "memblock_flags")
    assert flags is not None and flags.enumerators is not None
    assert [(e.name, e.value) for e in flags.enumerators][-1] == ("MEMBLOCK_NOMAP", 4)
    u = b.find(TypeKind.UNION, "u")
    assert u is not None and u.kind == TypeKind.UNION
    ulong = b.find(TypeKind.INT, "long unsigned int")
    assert ulong is not None and (ulong.name, ulong.size, ulong.is_signed) == (
        "unsigned long", 8, False
    )  # fmt: skip
    assert b.find(TypeKind.STRUCT, "no_such") is None
    assert b.type(30).qualifiers == drgn.Qualifiers.VOLATILE | drgn.Qualifiers.RESTRICT


def _header(**fields: int) -> bytes:
    base = {"magic": 0xEB9F, "version": 1, "flags": 0, "hdr_len": 24, "type_off": 0,
            "type_len": 0, "str_off": 0, "str_len": 1}  # fmt: skip
    base.update(fields)
    return struct.pack("<HBBIIIII", *base.values())


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x9f\xeb\x01", "truncated"),
        (b"\x00" * 24, "not BTF: magic 0x0000"),
        (_header(version=2) + b"\0", "version 2"),
        (_header(hdr_len=12) + b"\0", "header length 12"),
        (_header(str_len=100) + b"\0", "string section (0+100) runs past"),
        (_header(type_len=0xFFFFFFFF) + b"\0", "type section"),
        (_header(str_len=2) + b"a\0", "must start and end with a NUL"),
        (_header(str_len=2) + b"\0a", "must start and end with a NUL"),
        (_header(type_off=1, str_off=0) + b"\0" * 2, "not 4-byte aligned"),
    ],
)
def test_bad_headers_are_one_clear_error(blob: bytes, message: str) -> None:
    with pytest.raises(
        BtfError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")
    ):
        Btf(blob)


def _records(*records: bytes, strs: bytes = b"\0x\0") -> bytes:
    types = b"".join(records)
    return _header(type_len=len(types), str_off=len(types), str_len=len(strs)) + types + strs


def _rec(kind: int, word: int, vlen: int = 0, name: int = 0, extra: bytes = b"") -> bytes:
    return struct.pack("<III", name, (kind << 24) | vlen, word) + extra


@pytest.mark.parametrize(
    "blob, message",
    [
        (_records(_rec(20, 0)), "unknown kind 20"),
        (_records(_rec(4, 8, vlen=3)), r"runs past the type section"),
        (_records(_rec(4, 8, vlen=0xFFFF)), r"vlen 65535\) runs past"),
        (_records(_rec(8, 0, name=99)), "name offset 99 past the strings"),
        (_records(_rec(2, 7)), "refers to type 7, past the last"),
        (_records(b"\0" * 8), "truncated"),
    ],
)
def test_bad_records_are_one_clear_error(blob: bytes, message: str) -> None:
    with pytest.raises(BtfError, match=message):
        Btf(blob)


def test_type_id_loops_are_errors_not_hangs() -> None:
    w = BtfWriter()
    w.typedef("a", 2)  # 1 -> 2
    w.qual("const", 1)  # 2 -> 1: a loop through a typedef and a qualifier
    w.ptr(3)  # 3 -> 3: a pointer to itself
    w.array(5, 0, 2)  # 4: array of 5
    w.array(4, 0, 2)  # 5: array of 4
    btf = Btf(w.blob())
    with pytest.raises(BtfError, match="loops"):
        btf.resolve(1)
    with pytest.raises(BtfError):
        btf.size_of(4)
    _, b = builder(w.blob())
    for tid in (1, 2, 3, 4, 5):
        with pytest.raises(BtfError, match="refers to itself"):
            b.type(tid)


def test_member_outside_its_struct_and_bad_ints() -> None:
    w = BtfWriter()
    i = w.int_("int", 4, signed=True)
    w.struct("s", 4, [("a", i, 64, 0)])
    with pytest.raises(BtfError, match="lies outside"):
        Btf(w.blob()).type(2)
    w = BtfWriter()
    w.int_("int", 3)
    with pytest.raises(BtfError, match="size 3"):
        Btf(w.blob()).type(1)
    w = BtfWriter()
    w.array(0, 0, 4)
    with pytest.raises(BtfError, match="void elements"):
        Btf(w.blob()).type(1)


def test_non_types_are_not_drgn_types() -> None:
    _, b = builder(sample_blob())
    for tid in (19, 25, 26, 27):  # FUNC, VAR, DATASEC, DECL_TAG
        with pytest.raises(BtfError, match="not a C type"):
            b.type(tid)
