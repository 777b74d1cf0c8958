# SPDX-License-Identifier: GPL-2.0-or-later
"""
BTF reader
----------

A small, strict reader for the kernel's BPF Type Format blob (``CONFIG_DEBUG_INFO_BTF``:
``__start_BTF``..``__stop_BTF`` in the kernel image, ``/sys/kernel/btf/vmlinux`` live),
after include/uapi/linux/btf.h and Documentation/bpf/btf.rst. It reads the kinds the
collectors need (INT, PTR, ARRAY, STRUCT, UNION, ENUM, ENUM64, FWD, TYPEDEF, VOLATILE,
CONST, RESTRICT, FUNC_PROTO, FLOAT, TYPE_TAG) and steps over the others (FUNC, VAR,
DATASEC, DECL_TAG) by their size.

The blob comes out of a crash dump, so nothing is trusted. The checks follow the
kernel's own loader (kernel/bpf/btf.c: ``btf_parse_hdr()``, ``btf_parse_str_sec()``,
``btf_check_all_metas()``): magic 0xeb9f, version 1, sections inside the blob and not
overlapping, the string section starting and ending with a NUL, every record inside
the type section with a known kind, every name offset inside the string section and
every referenced type id defined. Reference chains (typedefs, qualifiers, arrays) are
followed with a bound, so a type-id loop is an error, not a hang. Every problem
raises :class:`BtfError` with one sentence; nothing else is raised.

>>> btf = Btf(blob)
>>> [btf.type(i).name for i in btf.find("struct", "reserved_mem")]
['reserved_mem']
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rmem_inspect.formats.btf_index import (
    BtfIndex,
    add_enumerators,
    enumerator_refs,
    ids_named,
    string_offsets,
    walk,
)

__all__ = [
    "BTF_MAGIC",
    "KIND_NAMES",
    "MAX_BTF_SIZE",
    "Btf",
    "BtfError",
    "BtfMember",
    "BtfType",
]

BTF_MAGIC = 0xEB9F
#: Largest blob read (the kernel's BTF_MAX_SIZE is 16 MiB for programs; vmlinux BTF
#: of Debian kernels is 5-6 MiB).
MAX_BTF_SIZE = 64 << 20
#: Longest reference chain followed (the kernel's MAX_RESOLVE_DEPTH is 32).
MAX_RESOLVE_DEPTH = 32
#: BTF_MAX_VLEN: vlen is 16 bits wide.
MAX_VLEN = 0xFFFF

KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19

KIND_NAMES = {
    KIND_INT: "int",
    KIND_PTR: "ptr",
    KIND_ARRAY: "array",
    KIND_STRUCT: "struct",
    KIND_UNION: "union",
    KIND_ENUM: "enum",
    KIND_FWD: "fwd",
    KIND_TYPEDEF: "typedef",
    KIND_VOLATILE: "volatile",
    KIND_CONST: "const",
    KIND_RESTRICT: "restrict",
    KIND_FUNC: "func",
    KIND_FUNC_PROTO: "func_proto",
    KIND_VAR: "var",
    KIND_DATASEC: "datasec",
    KIND_FLOAT: "float",
    KIND_DECL_TAG: "decl_tag",
    KIND_TYPE_TAG: "type_tag",
    KIND_ENUM64: "enum64",
}
#: Bytes after struct btf_type, fixed per kind and per vlen entry.
_EXTRA = {
    KIND_INT: (4, 0),
    KIND_ARRAY: (12, 0),
    KIND_STRUCT: (0, 12),
    KIND_UNION: (0, 12),
    KIND_ENUM: (0, 8),
    KIND_FUNC_PROTO: (0, 8),
    KIND_VAR: (4, 0),
    KIND_DATASEC: (0, 12),
    KIND_DECL_TAG: (4, 0),
    KIND_ENUM64: (0, 12),
}
#: Kinds whose third word is a type id (the others hold a size).
_REF_KINDS = frozenset(
    {
        KIND_PTR,
        KIND_TYPEDEF,
        KIND_VOLATILE,
        KIND_CONST,
        KIND_RESTRICT,
        KIND_FUNC,
        KIND_FUNC_PROTO,
        KIND_VAR,
        KIND_DECL_TAG,
        KIND_TYPE_TAG,
    }
)
#: Kinds looked up by name, as the C namespace groups them.
_LOOKUP = {
    "struct": (KIND_STRUCT, KIND_FWD),
    "union": (KIND_UNION, KIND_FWD),
    "enum": (KIND_ENUM, KIND_ENUM64, KIND_FWD),
    "typedef": (KIND_TYPEDEF,),
    "int": (KIND_INT,),
    "float": (KIND_FLOAT,),
    "func": (KIND_FUNC,),
}
HEADER_SIZE = 24
INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4


class BtfError(ValueError):
    """A BTF blob that is not valid."""


@dataclass(frozen=True)
class BtfMember:
    """A struct/union member, a function parameter (bit fields 0) or an enumerator."""

    name: str
    type_id: int
    bit_offset: int = 0
    bit_size: int = 0
    value: int = 0


@dataclass(frozen=True)
class BtfType:
    """One decoded type record. ``ref`` is the referenced type id (PTR, TYPEDEF,
    qualifiers, FUNC_PROTO's return type, ARRAY's element type), ``size`` the byte
    size (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT)."""

    id: int
    kind: int
    name: str
    size: int = 0
    ref: int = 0
    kind_flag: bool = False
    #: INT: BTF_INT_SIGNED/CHAR/BOOL bits, bit offset and number of bits.
    encoding: int = 0
    int_offset: int = 0
    int_bits: int = 0
    #: ARRAY: element count.
    nelems: int = 0
    members: tuple[BtfMember, ...] = ()

    @property
    def kind_name(self) -> str:
        """The kind as in bpftool ("struct", "ptr", ...)."""
        return KIND_NAMES[self.kind]


class Btf:
    """A validated BTF blob; types are decoded on demand and cached.

    :raises BtfError: the blob is not valid BTF (one sentence saying what and where).
    """

    def __init__(self, data: bytes, pointer_size: int = 8, index: BtfIndex | None = None) -> None:
        #: BTF records no pointer size; the caller knows the platform.
        self.pointer_size = pointer_size
        if len(data) > MAX_BTF_SIZE:
            raise BtfError(f"BTF blob of {len(data)} bytes is larger than {MAX_BTF_SIZE}")
        if len(data) < HEADER_SIZE:
            raise BtfError(f"BTF blob truncated: {len(data)} bytes, the header needs 24")
        magic_le = struct.unpack_from("<H", data)[0]
        if magic_le == BTF_MAGIC:
            self._order = "<"
        elif struct.unpack_from(">H", data)[0] == BTF_MAGIC:
            self._order = ">"
        else:
            raise BtfError(f"not BTF: magic {magic_le:#06x}, expected {BTF_MAGIC:#06x}")
        o = self._order
        _, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
            o + "HBBIIIII", data
        )
        if version != 1:
            raise BtfError(f"BTF version {version} is not supported (only version 1)")
        # btf_parse_hdr(): the header may grow, but what it covers must be in the blob
        if hdr_len < HEADER_SIZE or hdr_len > len(data):
            raise BtfError(f"BTF header length {hdr_len} is outside 24..{len(data)}")
        body = len(data) - hdr_len
        # btf_check_sec_info(): sections inside the blob, type section first, aligned
        for what, off, length in (("type", type_off, type_len), ("string", str_off, str_len)):
            if off + length > body:
                raise BtfError(
                    f"BTF {what} section ({off}+{length}) runs past the blob's {body} bytes"
                )
        if type_off % 4:
            raise BtfError(f"BTF type section offset {type_off} is not 4-byte aligned")
        if type_off + type_len > str_off and str_off + str_len > type_off:
            raise BtfError("BTF type and string sections overlap")
        # btf_parse_str_sec(): non-empty, first string empty, last byte NUL
        strs = data[hdr_len + str_off : hdr_len + str_off + str_len]
        if not strs or strs[0] != 0 or strs[-1] != 0:
            raise BtfError("BTF string section must start and end with a NUL byte")
        self._strs = strs
        self._types = data[hdr_len + type_off : hdr_len + type_off + type_len]
        # the first pass (record boundaries, name offsets, kinds), or the caller's
        # saved one for this very blob (pack_index/unpack_index check it)
        if index is None:
            index = walk(self._types, len(self._strs), o, BtfError)
        elif len(index.kinds) < 1 or (
            len(index.kinds) > 1 and index.offsets[-1] >= len(self._types)
        ):
            raise BtfError("BTF index does not fit the blob")
        else:  # strings remembered by an earlier run: kept only where they are there
            strs = self._strs
            index.strings = {
                name: offs
                for name, offs in index.strings.items()
                if all(0 < o and strs[o - 1 : o + len(name) + 1] == b"\0" + name.encode() + b"\0"
                       for o in offs)  # fmt: skip
            }
        self.index = index
        self._offsets = index.offsets  # type id -> record offset (id 0 is void)
        self._names = index.names  # type id -> name offset
        self._kinds = index.kinds  # type id -> kind
        self._found: dict[tuple[str, str], list[int]] = {}
        self._cache: dict[int, BtfType] = {}

    # -- lookups -------------------------------------------------------------------

    @property
    def types_section(self) -> bytes:
        """The raw type section."""
        return self._types

    @property
    def strings_section(self) -> bytes:
        """The raw string section."""
        return self._strs

    @property
    def byte_order(self) -> str:
        """``"<"`` or ``">"``, as the blob's magic says."""
        return self._order

    @property
    def count(self) -> int:
        """Number of types (ids 1..count; id 0 is void)."""
        return len(self._offsets) - 1

    def record_offset(self, tid: int) -> int:
        """Byte offset of type ``tid``'s record in the type section (for diagnostics)."""
        if not 1 <= tid <= self.count:
            raise BtfError(f"BTF type id {tid} is outside 1..{self.count}")
        return self._offsets[tid]

    def string(self, offset: int) -> str:
        """The NUL-terminated string at ``offset`` of the string section."""
        if not 0 <= offset < len(self._strs):
            raise BtfError(f"BTF string offset {offset} is past the string section")
        nul = self._strs.index(b"\0", offset)  # the section ends with NUL: always found
        return self._strs[offset:nul].decode(errors="replace")

    def _name_offsets(self, name: str) -> list[int]:
        memo = self.index.strings  # kept with a cached index
        try:
            return memo[name]
        except KeyError:
            out = memo[name] = string_offsets(self._strs, name.encode())
            return out

    def find(self, namespace: str, name: str) -> list[int]:
        """Ids of the types named ``name`` in ``namespace`` ("struct", "union", "enum",
        "typedef", "int", "float", "func"), complete definitions before forward
        declarations."""
        key = (namespace, name)
        try:
            return list(self._found[key])
        except KeyError:
            pass
        kinds = _LOOKUP[namespace]
        found: list[int] = []
        fwd: list[int] = []
        for off in self._name_offsets(name):
            for tid in ids_named(self.index, off):
                kind = self._kinds[tid]
                if kind not in kinds:
                    continue
                if kind == KIND_FWD:
                    # kind_flag: a forward union; else a forward struct (enums: no flag)
                    if (namespace == "union") != self.type(tid).kind_flag and namespace != "enum":
                        continue
                    fwd.append(tid)
                else:
                    found.append(tid)
        self._found[key] = found + fwd
        return found + fwd

    def find_enumerator(self, name: str) -> tuple[int, int] | None:
        """(enum type id, value) of the enumerator ``name`` (the enum of lowest id), or
        None."""
        if self.index.by_enum is None:
            add_enumerators(self.index, self._types, self._order)
        for off in self._name_offsets(name):
            refs = enumerator_refs(self.index, off)
            if refs:
                tid, nth = min(refs) >> 16, min(refs) & 0xFFFF
                return tid, self.type(tid).members[nth].value
        return None

    def type(self, tid: int) -> BtfType:
        """The decoded type ``tid`` (1..count).

        :raises BtfError: no such type (0 is void and has no record).
        """
        try:
            return self._cache[tid]
        except KeyError:
            pass
        if not 1 <= tid <= self.count:
            raise BtfError(f"BTF type id {tid} is outside 1..{self.count}")
        t = self._decode(tid)
        self._cache[tid] = t
        return t

    def _decode(self, tid: int) -> BtfType:
        o, types = self._order, self._types
        at = self._offsets[tid]
        name_off, info, word = struct.unpack_from(o + "III", types, at)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        name = self.string(name_off)
        at += 12
        if kind == KIND_INT:
            (enc,) = struct.unpack_from(o + "I", types, at)
            bits, offset, encoding = enc & 0xFF, (enc >> 16) & 0xFF, (enc >> 24) & 0xF
            # btf_int_check_meta(): at most 128 bits, inside the type's size
            if word not in (1, 2, 4, 8, 16) or bits > 128 or bits + offset > word * 8:
                raise BtfError(f"BTF int {tid} ({name}) has size {word} and {bits} bits")
            return BtfType(tid, kind, name, size=word, encoding=encoding, int_offset=offset,
                           int_bits=bits)  # fmt: skip
        if kind == KIND_ARRAY:
            elem, index, nelems = struct.unpack_from(o + "III", types, at)
            for ref in (elem, index):
                if ref > self.count:
                    raise BtfError(f"BTF array {tid} refers to type {ref}, past the last")
            if elem == 0:
                raise BtfError(f"BTF array {tid} has void elements")
            return BtfType(tid, kind, name, ref=elem, nelems=nelems)
        if kind in (KIND_STRUCT, KIND_UNION):
            members = []
            for i in range(vlen):
                m_name, m_type, m_off = struct.unpack_from(o + "III", types, at + 12 * i)
                if m_type > self.count or m_type == 0:
                    raise BtfError(f"BTF {KIND_NAMES[kind]} {tid} member {i} has type {m_type}")
                bit_size, bit_off = (m_off >> 24, m_off & 0xFFFFFF) if kflag else (0, m_off)
                if bit_off + bit_size > word * 8 + 0:
                    raise BtfError(
                        f"BTF {KIND_NAMES[kind]} {tid} ({name}) member {i} at bit {bit_off} "
                        f"lies outside its {word} bytes"
                    )
                members.append(BtfMember(self.string(m_name), m_type, bit_off, bit_size))
            return BtfType(tid, kind, name, size=word, kind_flag=kflag, members=tuple(members))
        if kind in (KIND_ENUM, KIND_ENUM64):
            values = []
            signed = kflag
            for i in range(vlen):
                if kind == KIND_ENUM:
                    e_name, val = struct.unpack_from(
                        o + ("Ii" if signed else "II"), types, at + 8 * i
                    )
                else:
                    e_name, lo, hi = struct.unpack_from(o + "III", types, at + 12 * i)
                    val = (hi << 32) | lo
                    if signed and val >> 63:
                        val -= 1 << 64
                values.append(BtfMember(self.string(e_name), 0, value=val))
            if word not in (1, 2, 4, 8):
                raise BtfError(f"BTF enum {tid} ({name}) has size {word}")
            return BtfType(tid, kind, name, size=word, kind_flag=kflag, members=tuple(values))
        if kind == KIND_FUNC_PROTO:
            params = []
            for i in range(vlen):
                p_name, p_type = struct.unpack_from(o + "II", types, at + 8 * i)
                if p_type > self.count:
                    raise BtfError(f"BTF func_proto {tid} parameter {i} has type {p_type}")
                params.append(BtfMember(self.string(p_name), p_type))
            return BtfType(tid, kind, name, ref=word, members=tuple(params))
        if kind == KIND_FLOAT:
            if word not in (2, 4, 8, 12, 16):
                raise BtfError(f"BTF float {tid} ({name}) has size {word}")
            return BtfType(tid, kind, name, size=word)
        if kind in _REF_KINDS:
            return BtfType(tid, kind, name, ref=word, kind_flag=kflag)
        return BtfType(tid, kind, name, size=word, kind_flag=kflag)  # FWD, DATASEC

    def resolve(self, tid: int) -> int:
        """Follow typedefs and qualifiers from ``tid`` to the type they name (0: void).

        :raises BtfError: the chain loops or is longer than the kernel allows.
        """
        for _ in range(MAX_RESOLVE_DEPTH):
            if tid == 0:
                return 0
            t = self.type(tid)
            if t.kind not in (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT,
                              KIND_TYPE_TAG):  # fmt: skip
                return tid
            tid = t.ref
        raise BtfError(f"BTF type {tid}: typedef/qualifier chain loops or is too deep")

    def size_of(self, tid: int) -> int:
        """Byte size of type ``tid`` (arrays multiplied out).

        :raises BtfError: the type has no size (void, function, forward) or loops.
        """
        factor = 1
        for _ in range(MAX_RESOLVE_DEPTH):
            tid = self.resolve(tid)
            if tid == 0:
                raise BtfError("void has no size")
            t = self.type(tid)
            if t.kind == KIND_ARRAY:
                factor *= t.nelems
                tid = t.ref
                continue
            if t.kind == KIND_PTR:
                return factor * self.pointer_size
            if t.kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FLOAT):
                return factor * t.size
            raise BtfError(f"BTF type {tid} ({t.kind_name} {t.name}) has no size")
        raise BtfError(f"BTF type {tid}: array chain loops or is too deep")
