# SPDX-License-Identifier: GPL-2.0-or-later
"""
BTF index
---------

The one pass over a BTF type section that :class:`rmem_inspect.formats.btf.Btf`
needs before it can find a type: where each record starts, its name offset and
its kind (record sizes as include/uapi/linux/btf.h gives them per kind and vlen),
with the checks of kernel/bpf/btf.c ``btf_check_all_metas()`` (known kind, record
inside the section, name inside the string section, referenced ids defined).
Nothing is decoded: decoding waits for a lookup.

The index is also serialised (:func:`pack_index`, :func:`unpack_index`) so a
caller can keep it per kernel build; the serialised form carries the blob's size
and CRC-32 and its own, so a truncated, damaged or foreign index is refused
(:class:`IndexMismatch`) and the caller walks again.
"""

from __future__ import annotations

import array
import bisect
import struct
import sys
import zlib
from dataclasses import dataclass, field

__all__ = [
    "BtfIndex",
    "IndexMismatch",
    "add_enumerators",
    "blob_key",
    "complete",
    "enumerator_refs",
    "ids_named",
    "pack_index",
    "string_offsets",
    "unpack_index",
    "walk",
]

#: Bytes after struct btf_type, fixed per kind and per vlen entry (uapi/linux/btf.h).
_EXTRA = {1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 13: (0, 8), 14: (4, 0),
          15: (0, 12), 17: (4, 0), 19: (0, 12)}  # fmt: skip
#: Kinds whose third word is a type id: PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC,
#: FUNC_PROTO, VAR, DECL_TAG, TYPE_TAG.
_REF = frozenset({2, 8, 9, 10, 11, 12, 13, 14, 17, 18})
_VALID = [1 <= k <= 19 for k in range(32)]
_FIXED_W = [3 + _EXTRA.get(k, (0, 0))[0] // 4 for k in range(32)]
_PER_W = [_EXTRA.get(k, (0, 0))[1] // 4 for k in range(32)]
_KIND_NAMES = ["", "int", "ptr", "array", "struct", "union", "enum", "fwd", "typedef",
               "volatile", "const", "restrict", "func", "func_proto", "var", "datasec",
               "float", "decl_tag", "type_tag", "enum64"] + [""] * 12  # fmt: skip
_MAGIC = b"RMIBTFX3"
_HEAD = struct.Struct("<8sQII")  # magic, blob size, blob CRC-32, type count


class IndexMismatch(ValueError):
    """A serialised index that is truncated, damaged or of another blob."""


@dataclass
class BtfIndex:
    """Per type id (0 is void): record offset, name offset, kind; then the lookups
    :func:`complete` adds (None until then), each one sorted array of packed keys."""

    offsets: array.array[int]
    names: array.array[int]
    kinds: bytearray
    #: ``name offset << 20 | type id`` ascending (BTF_MAX_TYPE is 0xfffff: 20 bits).
    by_name: array.array[int] | None = None
    #: ``name offset << 32 | n`` of every ENUM/ENUM64 enumerator, ascending, where
    #: ``enum_refs[n]`` is its ``type id << 16 | position``.
    by_enum: array.array[int] | None = None
    enum_refs: array.array[int] | None = None
    #: Strings looked up so far -> their offsets in the string section (kept with the
    #: index, so a later run over the same blob does not search the section again).
    strings: dict[str, list[int]] = field(default_factory=dict)


#: The arrays serialised, in order (all of 64-bit items but the first two).
_ARRAYS = (("offsets", "I"), ("names", "I"), ("by_name", "Q"), ("by_enum", "Q"),
           ("enum_refs", "Q"))  # fmt: skip
TID_BITS = 20


def complete(index: BtfIndex, types: bytes, order: str) -> None:
    """Add the type-name and enumerator lookups to ``index`` (no type decoded)."""
    keys = [(off << TID_BITS) | tid for tid, off in enumerate(index.names)]
    keys.sort()
    index.by_name = array.array("Q", keys)
    add_enumerators(index, types, order)


def add_enumerators(index: BtfIndex, types: bytes, order: str) -> None:
    """Add the enumerator lookup: every ENUM/ENUM64 enumerator by name offset."""
    words = array.array("I", types)
    if (order == "<") != (sys.byteorder == "little"):
        words.byteswap()
    e_names = array.array("I")
    e_refs = array.array("Q")
    kinds, offsets = index.kinds, index.offsets
    for kind, step in ((6, 2), (19, 3)):  # BTF_KIND_ENUM: name, val; ENUM64: name, lo, hi
        tid = kinds.find(kind, 1)
        while tid >= 0:
            w = offsets[tid] // 4
            vlen = words[w + 1] & 0xFFFF
            e_names.extend(words[w + 3 : w + 3 + step * vlen : step])
            e_refs.extend(range(tid << 16, (tid << 16) + vlen))
            tid = kinds.find(kind, tid + 1)
    keys = [(off << 32) | n for n, off in enumerate(e_names)]
    keys.sort()
    index.by_enum = array.array("Q", keys)
    index.enum_refs = e_refs


def string_offsets(strs: bytes, raw: bytes) -> list[int]:
    """Offsets of the string ``raw`` in the string section ``strs``, ascending."""
    out: list[int] = []
    needle = b"\0" + raw + b"\0"
    at = strs.find(needle)
    while at >= 0:
        out.append(at + 1)
        at = strs.find(needle, at + 1)
    return out


def ids_named(index: BtfIndex, off: int) -> list[int]:
    """Type ids whose name is at string offset ``off``, ascending."""
    out: list[int] = []
    by_name = index.by_name
    if by_name is None:
        names = index.names
        at = 1
        while True:
            try:
                at = names.index(off, at)
            except ValueError:
                return out
            out.append(at)
            at += 1
    i = bisect.bisect_left(by_name, off << TID_BITS)
    mask = (1 << TID_BITS) - 1
    while i < len(by_name) and by_name[i] >> TID_BITS == off:
        if by_name[i] & mask:  # not void
            out.append(by_name[i] & mask)
        i += 1
    return out


def enumerator_refs(index: BtfIndex, off: int) -> list[int]:
    """``type id << 16 | position`` of the enumerators named at ``off`` (the
    enumerator lookup must have been added)."""
    by_enum, refs = index.by_enum, index.enum_refs
    assert by_enum is not None and refs is not None
    i = bisect.bisect_left(by_enum, off << 32)
    out = []
    while i < len(by_enum) and by_enum[i] >> 32 == off:
        out.append(refs[by_enum[i] & 0xFFFFFFFF])
        i += 1
    return out


def walk(types: bytes, str_len: int, order: str, error: type[ValueError]) -> BtfIndex:
    """Index the type section ``types`` (byte order ``order``, "<" or ">").

    :raises error: (the caller's exception class) with one sentence.
    """
    if len(types) % 4:
        raise error(f"BTF type section of {len(types)} bytes is not whole words")
    words = array.array("I", types)
    if (order == "<") != (sys.byteorder == "little"):
        words.byteswap()
    n = len(words)
    offsets = array.array("I", [0])
    names = array.array("I", [0])
    thirds = array.array("I", [0])
    kinds = bytearray(1)
    valid, fixed, per = _VALID, _FIXED_W, _PER_W
    add_off, add_name, add_third, add_kind = (offsets.append, names.append, thirds.append,
                                              kinds.append)  # fmt: skip
    i = 0
    while i < n:
        if i + 3 > n:
            raise error(f"BTF type {len(offsets)} at offset {4 * i} is truncated")
        info = words[i + 1]
        kind = (info >> 24) & 0x1F
        if not valid[kind]:
            raise error(f"BTF type {len(offsets)} at offset {4 * i} has unknown kind {kind}")
        add_off(4 * i)
        add_name(words[i])
        add_third(words[i + 2])
        add_kind(kind)
        i += fixed[kind] + per[kind] * (info & 0xFFFF)
    if i > n:
        tid = len(offsets) - 1
        vlen = words[offsets[tid] // 4 + 1] & 0xFFFF
        raise error(
            f"BTF type {tid} ({_KIND_NAMES[kinds[tid]]}, vlen {vlen}) runs past the type section"
        )
    if max(names) >= str_len:
        tid = next(t for t, off in enumerate(names) if off >= str_len)
        raise error(f"BTF type {tid} has name offset {names[tid]} past the strings")
    count = len(offsets) - 1
    refs = [t for t, k in zip(thirds, kinds, strict=True) if k in _REF]
    if refs and max(refs) > count:
        tid = next(t for t in range(1, count + 1) if kinds[t] in _REF and thirds[t] > count)
        raise error(f"BTF type {tid} refers to type {thirds[tid]}, past the last ({count})")
    return BtfIndex(offsets, names, kinds)


def blob_key(blob: bytes) -> tuple[int, int]:
    """What an index is tied to: the blob's size and CRC-32."""
    return len(blob), zlib.crc32(blob)


def pack_index(index: BtfIndex, key: tuple[int, int]) -> bytes:
    """The index (:func:`complete` it first) and the strings looked up, as bytes tied
    to the blob of ``key`` (:func:`blob_key`)."""
    parts = []
    for name, code in _ARRAYS:
        arr = array.array(code, getattr(index, name))
        if sys.byteorder != "little":
            arr.byteswap()
        parts.append(arr)
    strings = b"".join(
        name.encode() + b"\0" + ",".join(map(str, offs)).encode() + b"\n"
        for name, offs in sorted(index.strings.items())
    )
    body = _HEAD.pack(_MAGIC, key[0], key[1], len(index.kinds) - 1)
    body += struct.pack(f"<{len(parts) + 1}I", *(len(a) for a in parts), len(strings))
    body += b"".join(a.tobytes() for a in parts) + bytes(index.kinds) + strings
    return body + struct.pack("<I", zlib.crc32(body))


def unpack_index(data: bytes, key: tuple[int, int]) -> BtfIndex:
    """The index :func:`pack_index` wrote for the blob of ``key``.

    :raises IndexMismatch: truncated, damaged, or written for another blob.
    """
    head = _HEAD.size + 4 * (len(_ARRAYS) + 1)
    if len(data) < head + 4:
        raise IndexMismatch("BTF index truncated")
    magic, size, crc, count = _HEAD.unpack_from(data)
    if magic != _MAGIC:
        raise IndexMismatch("not a BTF index")
    *lengths, n_strings = struct.unpack_from(f"<{len(_ARRAYS) + 1}I", data, _HEAD.size)
    sizes = [n * array.array(code).itemsize for n, (_, code) in zip(lengths, _ARRAYS, strict=True)]
    if len(data) != head + sum(sizes) + count + 1 + n_strings + 4:
        raise IndexMismatch("BTF index truncated")
    if struct.unpack_from("<I", data, len(data) - 4)[0] != zlib.crc32(data[:-4]):
        raise IndexMismatch("BTF index damaged")
    if (size, crc) != key:
        raise IndexMismatch("BTF index of another BTF blob")
    at = head
    arrays = {}
    for (name, code), n in zip(_ARRAYS, sizes, strict=True):
        arr = array.array(code, data[at : at + n])
        if sys.byteorder != "little":
            arr.byteswap()
        arrays[name] = arr
        at += n
    if len(arrays["offsets"]) != count + 1 or len(arrays["names"]) != count + 1:
        raise IndexMismatch("BTF index counts disagree")
    kinds = bytearray(data[at : at + count + 1])
    at += count + 1
    strings: dict[str, list[int]] = {}
    try:
        for line in data[at : at + n_strings].split(b"\n")[:-1]:
            raw, _, offs = line.partition(b"\0")
            strings[raw.decode()] = [int(x) for x in offs.split(b",") if x]
    except (ValueError, UnicodeDecodeError):
        raise IndexMismatch("BTF index strings damaged") from None
    return BtfIndex(kinds=kinds, strings=strings, **arrays)
