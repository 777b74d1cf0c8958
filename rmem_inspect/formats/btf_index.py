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
import struct
import sys
import zlib
from dataclasses import dataclass

__all__ = ["BtfIndex", "IndexMismatch", "pack_index", "unpack_index", "walk"]

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
_MAGIC = b"RMIBTFX1"
_HEAD = struct.Struct("<8sQII")  # magic, blob size, blob CRC-32, type count


class IndexMismatch(ValueError):
    """A serialised index that is truncated, damaged or of another blob."""


@dataclass
class BtfIndex:
    """Per type id (0 is void): record offset, name offset, kind."""

    offsets: array.array[int]
    names: array.array[int]
    kinds: bytearray


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


def pack_index(index: BtfIndex, blob: bytes) -> bytes:
    """The index as bytes, tied to ``blob`` (its size and CRC-32)."""
    count = len(index.kinds) - 1
    offsets = array.array("I", index.offsets)
    names = array.array("I", index.names)
    if sys.byteorder != "little":
        offsets.byteswap()
        names.byteswap()
    body = _HEAD.pack(_MAGIC, len(blob), zlib.crc32(blob), count)
    body += offsets.tobytes() + names.tobytes() + bytes(index.kinds)
    return body + struct.pack("<I", zlib.crc32(body))


def unpack_index(data: bytes, blob: bytes) -> BtfIndex:
    """The index :func:`pack_index` wrote for ``blob``.

    :raises IndexMismatch: truncated, damaged, or written for another blob.
    """
    if len(data) < _HEAD.size + 4:
        raise IndexMismatch("BTF index truncated")
    magic, size, crc, count = _HEAD.unpack_from(data)
    if magic != _MAGIC:
        raise IndexMismatch("not a BTF index")
    if len(data) != _HEAD.size + 9 * (count + 1) + 4:
        raise IndexMismatch("BTF index truncated")
    if struct.unpack_from("<I", data, len(data) - 4)[0] != zlib.crc32(data[:-4]):
        raise IndexMismatch("BTF index damaged")
    if size != len(blob) or crc != zlib.crc32(blob):
        raise IndexMismatch("BTF index of another BTF blob")
    at = _HEAD.size
    offsets = array.array("I", data[at : at + 4 * (count + 1)])
    at += 4 * (count + 1)
    names = array.array("I", data[at : at + 4 * (count + 1)])
    at += 4 * (count + 1)
    if sys.byteorder != "little":
        offsets.byteswap()
        names.byteswap()
    return BtfIndex(offsets, names, bytearray(data[at : at + count + 1]))
