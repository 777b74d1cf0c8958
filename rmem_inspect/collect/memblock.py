# SPDX-License-Identifier: GPL-2.0-or-later
"""
memblock
--------

Read ``memblock.memory`` and ``memblock.reserved`` (``struct memblock``,
mm/memblock.c) with region flags decoded by the names of ``enum
memblock_flags`` as found in the debug info (values differ across kernels).

Only architectures with CONFIG_ARCH_KEEP_MEMBLOCK (arm64 among them) keep the
region arrays after boot; elsewhere memblock_discard() frees them and whatever
the arrays hold is stale. That is detected (the symbol ``memblock_discard``
exists only without CONFIG_ARCH_KEEP_MEMBLOCK) and reported instead of trusted.
"""

from __future__ import annotations

from drgn import FaultError, Object, Program

from rmem_inspect.model import MemblockRegion, MemblockState

__all__ = ["REGION_READ_CAP", "decode_flags", "read_memblock"]

#: Never read more regions than this from one type, whatever cnt says.
REGION_READ_CAP = 1 << 20


def _flag_values(prog: Program) -> dict[str, int]:
    try:
        tp = prog.type("enum memblock_flags")
    except LookupError:
        return {}
    return {name: value for name, value in (tp.enumerators or ())}


def decode_flags(flags: int, values: dict[str, int]) -> list[str]:
    """Names of the bits set in ``flags`` (``MEMBLOCK_NONE`` for 0, hex for unknown bits)."""
    if flags == 0:
        return ["MEMBLOCK_NONE"]
    names = []
    rest = flags
    for name, value in sorted(values.items(), key=lambda kv: kv[1]):
        if value and flags & value == value:
            names.append(name)
            rest &= ~value
    if rest:
        names.append(f"{rest:#x}")
    return names


def _kept_after_boot(prog: Program) -> tuple[bool, str | None]:
    """Whether the memblock arrays are still valid after boot."""
    try:
        # memblock_discard() is a real (__init) function only without
        # CONFIG_ARCH_KEEP_MEMBLOCK; with it, the header makes it an empty static
        # inline, which has DWARF but no symbol. So probe the symbol table.
        prog.symbol("memblock_discard")
    except LookupError:
        pass
    else:
        return False, (
            "this kernel frees memblock's arrays after boot (no CONFIG_ARCH_KEEP_MEMBLOCK): "
            "memblock cannot be trusted"
        )
    try:
        # memblock_discard() also resets mm/memblock.c's memblock_memory to NULL.
        if not prog.variable("memblock_memory", "memblock.c").value_():
            return False, (
                "memblock_memory is NULL: memblock was discarded after boot and its arrays "
                "cannot be trusted"
            )
    except (LookupError, FaultError):
        pass
    return True, None


def _read_type(
    prog: Program, mtype: Object, values: dict[str, int], errors: list[str]
) -> list[MemblockRegion]:
    name = "memblock"
    try:
        cnt = mtype.cnt.value_()
        max_ = mtype.max.value_()
        regions = mtype.regions.value_()
        name = mtype.name.string_().decode(errors="replace") if mtype.name else "memblock"
    except FaultError as e:
        errors.append(f"memblock type unreadable: {e}")
        return []
    if cnt > max_ or cnt > REGION_READ_CAP:
        errors.append(
            f"memblock.{name}: cnt {cnt} exceeds max {max_} (corrupt); read only "
            f"{min(max_, cnt, REGION_READ_CAP)}"
        )
        cnt = min(cnt, max_, REGION_READ_CAP)
    tp = prog.type("struct memblock_region")
    has_nid = True
    try:
        tp.member("nid")
    except LookupError:
        has_nid = False
    out = []
    for i in range(cnt):
        try:
            r = Object(prog, tp, address=regions + i * (tp.size or 0)).read_()
            flags = r.flags.value_()
            out.append(
                MemblockRegion(
                    base=r.base.value_(),
                    size=r.size.value_(),
                    flags=flags,
                    flag_names=decode_flags(flags, values),
                    nid=r.nid.value_() if has_nid else None,
                )
            )
        except FaultError as e:
            errors.append(f"memblock.{name}[{i}] unreadable: {e}")
    return out


def read_memblock(prog: Program) -> MemblockState:
    """Read memblock.memory and memblock.reserved."""
    values = _flag_values(prog)
    kept, note = _kept_after_boot(prog)
    mb = prog["memblock"]
    errors: list[str] = []
    state = MemblockState(
        available=kept,
        memory=_read_type(prog, mb.memory, values, errors),
        reserved=_read_type(prog, mb.reserved, values, errors),
        flag_values=values,
        note=note,
    )
    if errors:
        # A count beyond the array or an unreadable region: the arrays cannot be trusted.
        state.available = False
        state.note = "; ".join(([note] if note else []) + errors)
        state.note += ": memblock cannot be trusted"
    if state.note:
        state.note += "; memblock-based checks are skipped."
    return state
