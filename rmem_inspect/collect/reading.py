# SPDX-License-Identifier: GPL-2.0-or-later
"""Bounded, fault-tolerant reads shared by the drgn collectors."""

from __future__ import annotations

import struct
from typing import Protocol

from drgn import FaultError, Object, PlatformFlags, Program, Type, TypeKind, sizeof

__all__ = [
    "MAX_NAME",
    "BlockCache",
    "RawStruct",
    "Reader",
    "has_member",
    "read_cstr",
    "symbol_name",
]


class Reader(Protocol):
    """What reads kernel memory: a :class:`drgn.Program` or a :class:`BlockCache`."""

    def read(self, address: int, size: int) -> bytes: ...


#: Longest string we read from kernel memory (node names are far shorter).
MAX_NAME = 256


def read_cstr(prog: Reader, address: int, limit: int = MAX_NAME) -> str | None:
    """Read a NUL-terminated string of at most ``limit`` bytes; None if unreadable.

    Reads page by page so that a string ending just before an unmapped page is
    still read, and a pointer into unmapped memory gives None instead of raising.
    """
    if not address:
        return None
    out = b""
    while len(out) < limit:
        chunk = min(limit - len(out), 4096 - ((address + len(out)) & 0xFFF))
        try:
            data = prog.read(address + len(out), chunk)
        except (FaultError, ValueError, OverflowError):
            return out.decode(errors="replace") if out else None
        nul = data.find(b"\0")
        if nul >= 0:
            return (out + data[:nul]).decode(errors="replace")
        out += data
    return out.decode(errors="replace")


def symbol_name(prog: Program, address: int) -> str | None:
    """The name of the symbol containing ``address`` (None when NULL or unknown)."""
    if not address:
        return None
    try:
        sym = prog.symbol(address)
    except LookupError:
        return None
    if sym.address == address:
        return sym.name
    return f"{sym.name}+{address - sym.address:#x}"


def has_member(obj_or_type: Object, name: str) -> bool:
    """Whether a struct (Object or Type) has member ``name`` (probe, never version-compare)."""
    tp = obj_or_type.type_ if isinstance(obj_or_type, Object) else obj_or_type
    while tp.kind.name in ("POINTER", "TYPEDEF"):
        tp = tp.type
    try:
        tp.member(name)
    except (LookupError, TypeError):  # TypeError: not a struct/union at all
        return False
    return True


class RawStruct:
    """Scalar members of a C struct, read with one memory read and one unpack.

    Going through :class:`drgn.Object` costs an Object per member access; on a
    devicetree of 1,000 reserved-memory nodes (four members per node, four per
    property) that was most of the walk. The layout (offsets, sizes,
    signedness, byte order) still comes from the debug info, so it follows the
    kernel's type; only integer, enum, bool and pointer members are allowed.

    >>> prop = RawStruct(prog, "struct property", ["name", "length", "value", "next"])
    >>> name, length, value, next_ = prop.read(address)

    A member of a nested struct is named by its path (``"state_var.counter"``).
    """

    def __init__(self, prog: Program, type_name: str, members: list[str]) -> None:
        tp = prog.type(type_name)
        self.type_name = type_name
        self.size = sizeof(tp)
        order = (
            "<" if prog.platform and prog.platform.flags & PlatformFlags.IS_LITTLE_ENDIAN else ">"
        )
        fields = []
        for position, name in enumerate(members):
            offset, member_type = _member_at(tp, name, type_name)
            fields.append((offset, _code(member_type, f"{type_name}.{name}"), position))
        fields.sort()
        fmt, at = order, 0
        for offset, code, _ in fields:
            if offset > at:
                fmt += f"{offset - at}x"
            fmt += code
            at = offset + struct.calcsize(order + code)
        self._struct = struct.Struct(fmt)
        # unpack_from gives the members sorted by offset; _order puts them back
        self._order = [0] * len(members)
        for unpacked_at, (_, _, position) in enumerate(fields):
            self._order[position] = unpacked_at
        self._identity = self._order == list(range(len(members)))

    def read(self, prog: Reader, address: int) -> tuple[int, ...]:
        """The members at ``address``, in the order given to the constructor.

        :raises drgn.FaultError: the struct is not (wholly) readable.
        """
        return self.unpack(prog.read(address, self.size))

    def unpack(self, data: bytes, offset: int = 0) -> tuple[int, ...]:
        """The members of the struct at ``offset`` in ``data`` (an array read whole)."""
        values = self._struct.unpack_from(data, offset)
        if self._identity:
            return values
        return tuple(values[i] for i in self._order)


def _member_at(tp: Type, path: str, type_name: str) -> tuple[int, Type]:
    """Byte offset and type of member ``path`` ("a" or "a.b") of struct type ``tp``."""
    offset = 0
    for name in path.split("."):
        while tp.kind == TypeKind.TYPEDEF:  # atomic_long_t and the like
            tp = tp.type
        member = tp.member(name)
        if member.bit_field_size:
            raise TypeError(f"{type_name}.{path} is a bit field")
        offset += member.offset
        tp = member.type
    return offset, tp


def _code(tp: Type, what: str) -> str:
    """The :mod:`struct` code of a scalar member type."""
    while tp.kind == TypeKind.TYPEDEF:  # Type.unaliased() is not in drgn 0.0.31
        tp = tp.type
    size = sizeof(tp)
    signed = tp.kind == TypeKind.INT and tp.is_signed
    if tp.kind == TypeKind.ENUM and tp.type is not None:
        signed = tp.type.is_signed
    if tp.kind not in (TypeKind.INT, TypeKind.BOOL, TypeKind.POINTER, TypeKind.ENUM):
        raise TypeError(f"{what} is not a scalar ({tp.kind.name})")
    codes = {1: "b", 2: "h", 4: "i", 8: "q"}
    if size not in codes:
        raise TypeError(f"{what} has size {size}")
    return codes[size] if signed else codes[size].upper()


class BlockCache:
    """``prog.read`` through a cache of aligned 4 KiB blocks, for one walk.

    A walk over kernel structures that were allocated together reads the same
    few pages thousands of times: the unflattened devicetree is one memblock
    allocation (nodes, properties, full names), and its property names and
    values point into the boot FDT blob. Each ``prog.read`` translates the
    address and copies from the dump; reading each aligned 4 KiB block once and
    slicing gives the same bytes, since no mapping is finer than 4 KiB.

    A block that does not read whole (a truncated dump, or a page a filtered
    dump left out next to one it kept) is not cached: the read goes to
    ``prog.read`` as asked, so what faults, and how, is exactly what
    ``prog.read`` does. Reads over ``MAX_SPAN`` go straight through. Use one
    cache per walk: on a live kernel, memory changes between walks.
    """

    BLOCK = 4096
    #: Reads spanning more than this many blocks are not cached.
    MAX_SPAN = 8

    def __init__(self, prog: Program, max_blocks: int = 4096) -> None:
        self.prog = prog
        self.max_blocks = max_blocks
        self._blocks: dict[int, bytes | None] = {}

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address``, like :meth:`drgn.Program.read`."""
        if size <= 0:
            return self.prog.read(address, size)
        first = address & ~(self.BLOCK - 1)
        last = (address + size - 1) & ~(self.BLOCK - 1)
        if last - first >= self.MAX_SPAN * self.BLOCK:
            return self.prog.read(address, size)
        block = self._block(first)
        if block is None:
            return self.prog.read(address, size)
        offset = address - first
        if first == last:
            return block[offset : offset + size]
        parts = [block]
        for at in range(first + self.BLOCK, last + 1, self.BLOCK):
            more = self._block(at)
            if more is None:
                return self.prog.read(address, size)
            parts.append(more)
        return b"".join(parts)[offset : offset + size]

    def _block(self, at: int) -> bytes | None:
        try:
            return self._blocks[at]
        except KeyError:
            pass
        if len(self._blocks) >= self.max_blocks:
            self._blocks.clear()
        try:
            data: bytes | None = self.prog.read(at, self.BLOCK)
        except (FaultError, ValueError, OverflowError):
            data = None
        self._blocks[at] = data
        return data
