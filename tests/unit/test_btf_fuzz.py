# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fuzz the BTF reader and the drgn types built from it with hypothesis: whatever
the bytes (truncated, wrong magic, absurd counts and offsets, type-id loops),
the reader raises BtfError or returns types, and building and walking every
type raises nothing but BtfError, within a deadline (no hang).
"""

from __future__ import annotations

import functools
import struct

import pytest
from drgn import Architecture, Platform, PlatformFlags, Program, Type, TypeKind
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.collect.kernel_btf import BtfTypeBuilder
from rmem_inspect.formats.btf import Btf, BtfError
from tests.unit.btf_blobs import sample_blob

pytestmark = pytest.mark.unit

#: A deadline per example: a loop or a quadratic walk fails the test instead of hanging.
FUZZ = settings(max_examples=300, deadline=2000, derandomize=True)
ARM64 = Platform(Architecture.AARCH64, PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN)


@functools.cache
def valid() -> bytes:
    return sample_blob()


def _walk(tp: Type, depth: int = 0) -> None:
    """Force every lazily built member and parameter type, a few levels deep."""
    if depth > 4:
        return
    kind = tp.kind
    if kind in (TypeKind.STRUCT, TypeKind.UNION) and tp.members is not None:
        for m in tp.members:
            _walk(m.type, depth + 1)
    elif kind == TypeKind.FUNCTION:
        _walk(tp.type, depth + 1)
        for p in tp.parameters:
            _walk(p.type, depth + 1)
    elif kind in (TypeKind.POINTER, TypeKind.ARRAY, TypeKind.TYPEDEF):
        _walk(tp.type, depth + 1)


def check(blob: bytes) -> None:
    """The property under test."""
    try:
        btf = Btf(blob)
    except BtfError as e:
        assert str(e) and "\n" not in str(e)
        return
    builder = BtfTypeBuilder(Program(ARM64), btf)
    for tid in range(1, min(btf.count, 200) + 1):
        try:
            btf.type(tid)
            btf.resolve(tid)
        except BtfError:
            continue
        try:
            btf.size_of(tid)
        except BtfError:
            pass
        try:
            _walk(builder.type(tid))
        except BtfError:
            pass
    for name in ("reserved_mem", "list_head", "bits", "memblock_flags"):
        for namespace in ("struct", "union", "enum"):
            try:
                btf.find(namespace, name)
            except BtfError:
                pass
    try:
        btf.find_enumerator("MEMBLOCK_NOMAP")
    except BtfError:
        pass


def test_valid_blob_passes() -> None:
    check(valid())


@FUZZ
@given(st.integers(min_value=0, max_value=len(sample_blob())))
def test_truncated(cut: int) -> None:
    check(valid()[:cut])


@FUZZ
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8))
def test_byte_flips(flips: list[tuple[int, int]]) -> None:
    blob = bytearray(valid())
    for at, value in flips:
        blob[at % len(blob)] = value
    check(bytes(blob))


@FUZZ
@given(
    st.integers(min_value=0, max_value=7),
    st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 24, 4096]),
)
def test_absurd_header_fields(field: int, value: int) -> None:
    blob = bytearray(valid())
    fmt, offset = [("H", 0), ("B", 2), ("B", 3), ("I", 4), ("I", 8), ("I", 12), ("I", 16),
                   ("I", 20)][field]  # fmt: skip
    struct.pack_into("<" + fmt, blob, offset, value & {"H": 0xFFFF, "B": 0xFF, "I": ~0}[fmt])
    check(bytes(blob))


@FUZZ
@given(
    st.integers(min_value=0, max_value=30),
    st.sampled_from([0, 4, 8]),
    st.integers(min_value=0, max_value=0xFFFFFFFF),
)
def test_absurd_record_words(record: int, word: int, value: int) -> None:
    """Overwrite one word of one type record: kinds, vlens, sizes and type ids
    (including ids that point back at themselves or past the last type)."""
    blob = bytearray(valid())
    btf = Btf(valid())
    at = 24 + btf.record_offset(min(record, btf.count - 1) + 1) + word
    struct.pack_into("<I", blob, at, value)
    check(bytes(blob))


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_after_a_valid_header(body: bytes) -> None:
    n = len(body)
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, n // 2, n // 2, n - n // 2)
    check(header + body)


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=12))
def test_reference_chains_and_loops(refs: list[int]) -> None:
    """Typedefs, qualifiers, pointers and arrays whose references form any graph."""
    from tests.unit.btf_blobs import BtfWriter

    w = BtfWriter()
    for i, ref in enumerate(refs):
        ref = ref % (len(refs) + 1)
        match i % 4:
            case 0:
                w.typedef(f"t{i}", ref)
            case 1:
                w.qual("const", ref)
            case 2:
                w.ptr(ref)
            case _:
                w.array(max(ref, 1), 0, 3)
    check(w.blob())
