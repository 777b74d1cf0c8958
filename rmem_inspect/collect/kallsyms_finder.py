# SPDX-License-Identifier: GPL-2.0-or-later
"""
kallsyms_finder
---------------

Give a Program without a vmlinux its symbols from the kernel's own kallsyms,
resolving only the names asked (:mod:`rmem_inspect.formats.kallsyms`): in a dump,
the tables located through VMCOREINFO and searched as kernel/kallsyms.c does; live,
/proc/kallsyms searched for the names asked. The finder is registered with drgn
(``Program.register_symbol_finder``), so ``prog.symbol()``/``prog.symbols()`` and
every collector work unchanged.

A dump whose tables are in no layout the reader knows falls back to drgn's own
loader (``load_vmlinux_kallsyms``, which decodes every name); the reason is kept
in :data:`NOTE_KEY` of ``prog.cache`` and printed under ``--verbose``.
"""

from __future__ import annotations

import os
from typing import Any

import drgn
from drgn import Program, Symbol, SymbolBinding, SymbolKind

from rmem_inspect.formats.kallsyms import (
    Kallsyms,
    KallsymsError,
    KallsymsSymbol,
)
from rmem_inspect.formats.proc_kallsyms import ProcKallsyms

__all__ = [
    "NOTE_KEY",
    "PROC_KALLSYMS",
    "TABLE_KEY",
    "install_kallsyms",
    "symbols_with_prefix",
    "vmcoreinfo",
]

#: ``prog.cache`` key of one sentence saying how kallsyms was read.
NOTE_KEY = "rmem_inspect.kallsyms"
#: ``prog.cache`` key of the kallsyms table the finder searches (absent with drgn's loader).
TABLE_KEY = "rmem_inspect.kallsyms_table"
PROC_KALLSYMS = "/proc/kallsyms"


def vmcoreinfo(prog: Program) -> dict[str, str]:
    """The kernel's VMCOREINFO as key -> value (drgn's ``VMCOREINFO`` object)."""
    text = prog["VMCOREINFO"].string_().decode(errors="replace")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _binding_kind(code: str) -> tuple[SymbolBinding, SymbolKind]:
    """nm type letter -> drgn binding and kind, as drgn's kallsyms finder maps them
    (libdrgn/kallsyms.c drgn_symbol_from_kallsyms(); drgn 0.3.0 also makes "v" an
    object), so both give equal Symbols: tests/vmcore/test_kallsyms_tables.py."""
    low = code.lower()
    if code == "u":
        binding = SymbolBinding.UNIQUE
    elif low in ("v", "w"):
        binding = SymbolBinding.WEAK
    elif code.isupper():
        binding = SymbolBinding.GLOBAL
    else:  # lower case: usually local, not always
        binding = SymbolBinding.UNKNOWN
    if low in ("b", "c", "d", "g", "r", "v"):  # v: a weak object
        kind = SymbolKind.OBJECT
    elif low == "t":
        kind = SymbolKind.FUNC
    else:
        kind = SymbolKind.UNKNOWN
    return binding, kind


def _symbol(s: KallsymsSymbol) -> Symbol:
    binding, kind = _binding_kind(s.type)
    return Symbol(s.name, s.address, s.size, binding, kind)


def _finder(table: Kallsyms | ProcKallsyms) -> Any:
    def find(prog: Program, name: str | None, address: int | None, one: bool) -> list[Symbol]:
        try:
            if address is not None:
                hit = table.at_address(address)
                found = [hit] if hit is not None and (name is None or hit.name == name) else []
            elif name is not None:
                found = table.lookup(name)
            else:
                found = list(table)
        except KallsymsError as e:  # corrupt tables found late: drgn's error, one line
            raise LookupError(f"kallsyms: {e}") from None
        return [_symbol(s) for s in (found[:1] if one else found)]

    return find


def _from_dump(prog: Program) -> Kallsyms:
    info = vmcoreinfo(prog)
    prefix = "SYMBOL(kallsyms_"
    listed = {k[len(prefix) : -1]: int(v, 16) for k, v in info.items() if k.startswith(prefix)}
    stext = info.get("SYMBOL(_stext)")
    platform = prog.platform
    little = platform is None or bool(platform.flags & drgn.PlatformFlags.IS_LITTLE_ENDIAN)
    ptr = 8 if platform is None or platform.flags & drgn.PlatformFlags.IS_64_BIT else 4
    return Kallsyms(
        lambda a, n: prog.read(a, n),
        listed,
        int(stext, 16) if stext else None,
        little=little,
        pointer_size=ptr,
    )


def install_kallsyms(prog: Program) -> str:
    """Register a kallsyms symbol finder on ``prog``; return (and keep in
    ``prog.cache[NOTE_KEY]``) one sentence saying which.

    :raises Exception: what drgn's own loader raises when the fallback fails too.
    """
    live = bool(prog.flags & drgn.ProgramFlags.IS_LIVE)
    table: Kallsyms | ProcKallsyms | None = None
    why = ""
    try:
        if live and os.geteuid() == 0 and os.path.exists(PROC_KALLSYMS):
            with open(PROC_KALLSYMS, "rb") as f:
                table = ProcKallsyms(f.read())
            note = f"symbols: {PROC_KALLSYMS}, searched for the names asked"
        else:
            table = _from_dump(prog)
            note = (
                f"symbols: kallsyms tables in the {table.layout.name} layout of "
                "scripts/kallsyms.c, searched by name through kallsyms_seqs_of_names"
            )
    except (KallsymsError, OSError, LookupError, ValueError) as e:
        why = str(e)
    if table is not None:
        prog.register_symbol_finder("rmem_inspect_kallsyms", _finder(table), enable_index=0)
    else:
        from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms

        index = load_vmlinux_kallsyms(prog)
        prog.register_symbol_finder("kallsyms", index, enable_index=0)
        note = f"symbols: drgn's kallsyms loader (every name decoded), because {why}"
    if isinstance(getattr(prog, "cache", None), dict):
        prog.cache[NOTE_KEY] = note
        if table is not None:
            prog.cache[TABLE_KEY] = table
    return note


def symbols_with_prefix(prog: Program, prefix: str) -> list[Symbol]:
    """Every symbol of ``prog`` whose name starts with ``prefix``. drgn's finders answer
    a name or an address, not a prefix: with :func:`install_kallsyms`'s table, only the
    matching names are decoded; otherwise every symbol is listed and filtered."""
    cache = getattr(prog, "cache", None)
    table = cache.get(TABLE_KEY) if isinstance(cache, dict) else None
    if isinstance(table, (Kallsyms, ProcKallsyms)):
        try:
            return [_symbol(s) for s in table.with_prefix(prefix)]
        except KallsymsError as e:  # as the finder does: drgn's error, one line
            raise LookupError(f"kallsyms: {e}") from None
    return [s for s in prog.symbols() if s.name.startswith(prefix)]
