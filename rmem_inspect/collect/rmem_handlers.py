# SPDX-License-Identifier: GPL-2.0-or-later
"""
collect.rmem_handlers
---------------------

The reserved-memory handlers a kernel was built with: the entries of its
``__reservedmem_of_table`` (one per RESERVEDMEM_OF_DECLARE(), see
:mod:`rmem_inspect.kernel.handlers`). The table is init data, freed after boot, so it is
read where it survives:

- with a vmlinux (DWARF path): from the vmlinux file itself, compatible strings and data
  pointers as the kernel wrote them (:mod:`rmem_inspect.formats.of_table`);
- without (kallsyms + BTF): from the ``__of_table_<name>`` symbols kallsyms lists between
  ``__reservedmem_of_table`` and ``__rmem_of_table_sentinel``, each named by the
  declaration it belongs to; a name two declarations share (``dma``: coherent.c and
  swiotlb.c) is told apart by which one's init function or ops kallsyms holds.
"""

from __future__ import annotations

import drgn

from rmem_inspect.collect.kallsyms_finder import symbols_with_prefix
from rmem_inspect.formats.elf import ElfError
from rmem_inspect.formats.of_table import open_table_image, read_reservedmem_table
from rmem_inspect.kernel.handlers import DECLARATIONS
from rmem_inspect.model import RmemHandler

__all__ = ["read_rmem_handlers"]

TABLE = "__reservedmem_of_table"
SENTINEL = "__rmem_of_table_sentinel"
PREFIX = "__of_table_"


def _vmlinux(prog: drgn.Program) -> tuple[str, int] | None:
    """The vmlinux file drgn loaded and its bias (KASLR: run-time minus link-time address)."""
    try:
        main = prog.main_module()  # drgn 0.0.31+
    except (AttributeError, LookupError):
        return None
    path = getattr(main, "debug_file_path", None)
    bias = getattr(main, "debug_file_bias", None)
    return (str(path), int(bias)) if path and bias is not None else None


def _has(prog: drgn.Program, name: str) -> bool:
    try:
        return bool(prog.symbols(name))
    except LookupError:
        return False


def _from_kallsyms(prog: drgn.Program) -> list[RmemHandler]:
    if not _has(prog, SENTINEL):
        return []  # no CONFIG_OF_RESERVED_MEM, or no data symbols in kallsyms
    start = prog.symbols(TABLE)[0].address
    end = prog.symbols(SENTINEL)[0].address
    entries = sorted(
        (s.address, s.name.removeprefix(PREFIX))
        for s in symbols_with_prefix(prog, PREFIX)
        if start <= s.address < end
    )
    # .data is the ops struct when reserved_mem_ops has node_init (7.1+), else the init
    # function (include/linux/of_reserved_mem.h)
    try:
        ops_data = prog.type("struct reserved_mem_ops").has_member("node_init")
    except LookupError:
        ops_data = False
    out = []
    for _at, name in entries:
        found = []
        for d in DECLARATIONS:
            data = d.data[-1] if ops_data else d.data[0]
            if d.name == name and _has(prog, data):
                found.append((d, data))
        if len(found) == 1:
            out.append(RmemHandler(name, found[0][0].compatible, found[0][1]))
        else:
            out.append(RmemHandler(name, None, None))
    return out


def read_rmem_handlers(prog: drgn.Program) -> tuple[list[RmemHandler], str] | None:
    """(the table's entries, where they were read), or None when neither a vmlinux nor
    kallsyms data symbols give it."""
    if not _has(prog, TABLE):
        return None  # no CONFIG_OF_RESERVED_MEM, or no data symbols in kallsyms
    vmlinux = _vmlinux(prog)
    if vmlinux is not None and _has(prog, SENTINEL):
        path, bias = vmlinux
        try:
            image = open_table_image(path, with_symbols=False)
        except (OSError, ElfError):
            image = None
        if image is not None:
            bounds = (
                prog.symbols(TABLE)[0].address - bias,
                prog.symbols(SENTINEL)[0].address - bias,
            )

            def names_at(link_address: int) -> list[str]:
                at = link_address + bias
                return [s.name for s in prog.symbols(at) if s.address == at]

            return read_reservedmem_table(image, bounds, names_at), f"{TABLE} in the vmlinux file"
    return _from_kallsyms(prog), f"{PREFIX}* symbols in kallsyms"
