# SPDX-License-Identifier: GPL-2.0-or-later
"""
of_table
--------

The kernel's ``__reservedmem_of_table`` read from a vmlinux FILE (no drgn): the table is
init data, freed after boot, so a dump or a running kernel no longer holds it but the
vmlinux does. Entries are ``struct of_device_id`` (include/linux/mod_devicetable.h:
``char name[32]; char type[32]; char compatible[128]; const void *data;``) from the symbol
``__reservedmem_of_table`` up to ``__rmem_of_table_sentinel`` (drivers/of/of_reserved_mem.c);
``.data`` is named from the symbol table. Every read is bounded; malformed files raise
:class:`~rmem_inspect.formats.elf.ElfError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from rmem_inspect.formats.elf import ElfError
from rmem_inspect.model import RmemHandler

__all__ = ["ElfImage", "read_reservedmem_table"]

SHT_SYMTAB = 2
SHT_RELA = 4
SHT_NOBITS = 8
#: struct of_device_id: name[32], type[32], compatible[128], then the data pointer.
COMPATIBLE_AT, COMPATIBLE_LEN, DATA_AT = 64, 128, 192
MAX_ENTRIES = 4096
MAX_SYMTAB = 256 << 20


@dataclass
class ElfImage:
    """Sections and symbols of an ELF executable, enough to read its data by address."""

    little: bool
    wide: bool
    #: (address, file offset, size) of each section with file contents.
    sections: list[tuple[int, int, int]]
    #: name -> addresses (static symbols repeat names).
    symbols: dict[str, list[int]]
    #: address -> names.
    by_address: dict[int, list[str]]
    path: str
    #: (file offset, size) of the SHT_RELA sections: a relocatable kernel (arm64) may
    #: leave pointers in its data 0 in the file and fill them from these at boot.
    relas: list[tuple[int, int]]

    @classmethod
    def open(cls, path: str, *, with_symbols: bool = True) -> ElfImage:
        """``with_symbols=False``: sections and relocations only (the caller names addresses)."""
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF":
                raise ElfError("not an ELF file")
            wide, little = ident[4] == 2, ident[5] == 1
            e = "<" if little else ">"
            if wide:
                (shoff,) = struct.unpack_from(e + "Q", ident, 40)
                shentsize, shnum = struct.unpack_from(e + "HH", ident, 58)
                fmt, sym_fmt = e + "IIQQQQIIQQ", e + "IBBHQQ"
            else:
                (shoff,) = struct.unpack_from(e + "I", ident, 32)
                shentsize, shnum = struct.unpack_from(e + "HH", ident, 46)
                fmt, sym_fmt = e + "IIIIIIIIII", e + "IIIBBH"
            if not shnum or shnum > 65536 or shentsize < struct.calcsize(fmt):
                raise ElfError("no section headers")
            f.seek(shoff)
            raw = f.read(shentsize * shnum)
            if len(raw) < shentsize * shnum:
                raise ElfError("truncated section headers")
            hdrs = [struct.unpack_from(fmt, raw, i * shentsize) for i in range(shnum)]
            # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, ...
            sections = [(h[3], h[4], h[5]) for h in hdrs if h[3] and h[1] != SHT_NOBITS]
            relas = [(h[4], h[5]) for h in hdrs if h[1] == SHT_RELA and h[5] <= MAX_SYMTAB]
            symbols: dict[str, list[int]] = {}
            by_address: dict[int, list[str]] = {}
            for h in hdrs:
                if not with_symbols or h[1] != SHT_SYMTAB or h[6] >= shnum or h[5] > MAX_SYMTAB:
                    continue
                strtab_h = hdrs[h[6]]
                f.seek(h[4])
                symtab = f.read(h[5])
                f.seek(strtab_h[4])
                strtab = f.read(min(strtab_h[5], MAX_SYMTAB))
                step = struct.calcsize(sym_fmt)
                for fields in struct.iter_unpack(sym_fmt, symtab[: len(symtab) // step * step]):
                    name_off, value = fields[0], (fields[4] if wide else fields[1])
                    end = strtab.find(b"\0", name_off)
                    if not value or end < 0:
                        continue
                    name = strtab[name_off:end].decode(errors="replace")
                    if not name or name.startswith("$"):
                        continue
                    symbols.setdefault(name, []).append(value)
                    by_address.setdefault(value, []).append(name)
        return cls(little, wide, sections, symbols, by_address, path, relas)

    def read(self, address: int, size: int) -> bytes:
        for base, off, length in self.sections:
            if base <= address and address + size <= base + length:
                with open(self.path, "rb") as f:
                    f.seek(off + address - base)
                    data = f.read(size)
                if len(data) == size:
                    return data
        raise ElfError(f"{address:#x}: not in any section with contents")

    def relocated(self, start: int, end: int) -> dict[int, int]:
        """``r_offset -> r_addend`` of the RELA entries in [start, end) (what a
        R_*_RELATIVE relocation writes there at boot)."""
        out: dict[int, int] = {}
        fmt = ("<" if self.little else ">") + ("QQQ" if self.wide else "III")
        step = struct.calcsize(fmt)
        with open(self.path, "rb") as f:
            for off, size in self.relas:
                f.seek(off)
                data = f.read(size)
                for r_offset, _info, addend in struct.iter_unpack(
                    fmt, data[: len(data) // step * step]
                ):
                    if start <= r_offset < end:
                        out[r_offset] = addend
        return out

    def one(self, name: str) -> int:
        found = self.symbols.get(name, [])
        if len(found) != 1:
            raise ElfError(f"{len(found)} symbols named {name}")
        return found[0]


def read_reservedmem_table(
    image: ElfImage,
    bounds: tuple[int, int] | None = None,
    names_at: Callable[[int], list[str]] | None = None,
) -> list[RmemHandler]:
    """The entries of ``__reservedmem_of_table``; [] when the kernel has none (no
    CONFIG_OF_RESERVED_MEM: the table and its sentinel are absent). ``bounds`` (the
    table's and the sentinel's addresses) and ``names_at`` (symbol names at an address)
    default to the image's own symbol table."""
    if bounds is None:
        if "__rmem_of_table_sentinel" not in image.symbols:
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
