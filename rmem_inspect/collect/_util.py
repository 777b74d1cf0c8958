# SPDX-License-Identifier: GPL-2.0-or-later
"""Bounded, fault-tolerant reads shared by the drgn collectors."""

from __future__ import annotations

from drgn import FaultError, Object, Program

__all__ = [
    "MAX_NAME",
    "has_member",
    "read_cstr",
    "symbol_name",
]

#: Longest string we read from kernel memory (node names are far shorter).
MAX_NAME = 256


def read_cstr(prog: Program, address: int, limit: int = MAX_NAME) -> str | None:
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
