# SPDX-License-Identifier: GPL-2.0-or-later
"""
of_table
--------

The kernel's ``__reservedmem_of_table`` read from a vmlinux FILE (no drgn): the table is
init data, freed after boot, so a dump or a running kernel no longer holds it but the
vmlinux does. Entries are ``struct of_device_id`` (include/linux/mod_devicetable.h:
``char name[32]; char type[32]; char compatible[128]; const void *data;``) from the symbol
``__reservedmem_of_table`` up to ``__rmem_of_table_sentinel`` (drivers/of/of_reserved_mem.c);
``.data`` is named from the symbol table. The file is read by formats/elf_image.py (the
one vmlinux reader, relocations included). Every read is bounded; malformed files raise
:class:`~rmem_inspect.formats.elf.ElfError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from rmem_inspect.formats.elf import ElfError
from rmem_inspect.formats.elf_image import VmlinuxImage, open_vmlinux_image
from rmem_inspect.model import RmemHandler

__all__ = ["open_table_image", "read_reservedmem_table"]


def open_table_image(path: str, *, with_symbols: bool = True) -> VmlinuxImage:
    """The vmlinux at ``path`` as :func:`read_reservedmem_table` reads it: every symbol
    (``with_symbols=False``: none; the caller names addresses), and a file without a
    symbol table taken as one without the table."""
    return open_vmlinux_image(path, all_symbols=with_symbols, need_symtab=False)


#: struct of_device_id: name[32], type[32], compatible[128], then the data pointer.
COMPATIBLE_AT, COMPATIBLE_LEN, DATA_AT = 64, 128, 192
MAX_ENTRIES = 4096


def read_reservedmem_table(
    image: VmlinuxImage,
    bounds: tuple[int, int] | None = None,
    names_at: Callable[[int], list[str]] | None = None,
) -> list[RmemHandler]:
    """The entries of ``__reservedmem_of_table``; [] when the kernel has none (no
    CONFIG_OF_RESERVED_MEM: the table and its sentinel are absent). ``bounds`` (the
    table's and the sentinel's addresses) and ``names_at`` (symbol names at an address)
    default to the image's own symbol table."""
    if bounds is None:
        if "__rmem_of_table_sentinel" not in image.all_symbols:
            return []
        bounds = image.one("__reservedmem_of_table"), image.one("__rmem_of_table_sentinel")
    start, end = bounds
    name_of = names_at or (lambda a: image.by_address.get(a, []))
    ptr = 8 if image.wide else 4
    stride = (DATA_AT + ptr + ptr - 1) // ptr * ptr
    if end < start or (end - start) % stride or (end - start) // stride > MAX_ENTRIES:
        raise ElfError(f"__reservedmem_of_table {start:#x}..{end:#x} is not a table")
    relocated = image.relocated(start, end)
    out = []
    for at in range(start, end, stride):
        raw = image.read(at, stride)
        compat = raw[COMPATIBLE_AT : COMPATIBLE_AT + COMPATIBLE_LEN].split(b"\0")[0]
        (data,) = struct.unpack_from(
            ("<" if image.little else ">") + ("Q" if image.wide else "I"), raw, DATA_AT
        )
        data = data or relocated.get(at + DATA_AT, 0)
        names = [n for n in name_of(at) if n.startswith("__of_table_")]
        data_names = name_of(data) if data else []
        out.append(
            RmemHandler(
                name=names[0].removeprefix("__of_table_") if names else None,
                compatible=compat.decode(errors="replace"),
                data=data_names[0] if data_names else None,
            )
        )
    return out
