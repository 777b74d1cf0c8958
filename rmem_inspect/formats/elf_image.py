# SPDX-License-Identifier: GPL-2.0-or-later
"""
elf_image
---------

The one reader of a vmlinux FILE (no drgn): its sections, the link-time address of
symbols (``.symtab``: a few wanted ones, found through ``.strtab`` without decoding the
whole table, or all of them), the bytes the file holds at a link-time address (every
section with an address and file contents), the GNU build-id note, and the
``R_*_RELATIVE`` addends of its ``SHT_RELA`` sections (a relocatable kernel, arm64,
leaves pointers in its data 0 in the file and fills them from these at boot). Raw RAM
dumps use it to find the kernel image (kernel/image.py), formats/of_table.py to read
the handler table. The file is mapped, never read whole; every read is bounded and a
malformed file raises :class:`~rmem_inspect.formats.elf.ElfError`.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from rmem_inspect.formats.elf import ElfError

__all__ = ["Section", "VmlinuxImage", "open_vmlinux_image"]

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_RELA = 4
SHT_NOTE = 7
SHT_NOBITS = 8
NT_GNU_BUILD_ID = 3
#: Largest symbol, string or relocation table read (a vmlinux's are tens of MiB).
MAX_TABLE = 256 << 20


@dataclass
class Section:
    name: str
    type: int
    addr: int
    offset: int
    size: int


@dataclass
class VmlinuxImage:
    """Symbols and bytes of a vmlinux at its link-time addresses."""

    path: str
    machine: int
    bits: int
    little: bool
    #: The wanted symbols' addresses (the first non-zero definition of each).
    symbols: dict[str, int] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    #: (link-time address, bytes) of the GNU build-id note, header included.
    build_id_note: tuple[int, bytes] | None = None
    build_id: str | None = None
    #: With ``all_symbols``: name -> addresses (static symbols repeat names) and
    #: address -> names, mapping symbols (``$x``, ``$d``) and zero values left out.
    all_symbols: dict[str, list[int]] = field(default_factory=dict)
    by_address: dict[int, list[str]] = field(default_factory=dict)
    #: (file offset, size) of the SHT_RELA sections.
    relas: list[tuple[int, int]] = field(default_factory=list)
    _map: mmap.mmap | None = None

    @property
    def wide(self) -> bool:
        return self.bits == 64

    def read(self, addr: int, size: int) -> bytes:
        """The file's bytes at link-time ``addr``: in one section with an address and
        file contents, else :class:`ElfError`."""
        for s in self.sections:
            if (
                s.addr
                and s.type != SHT_NOBITS
                and s.addr <= addr
                and addr + size <= s.addr + s.size
            ):
                assert self._map is not None
                start = s.offset + addr - s.addr
                data = bytes(self._map[start : start + size])
                if len(data) == size:
                    return data
        raise ElfError(f"{addr:#x}: not in any section with contents")

    def c_string(self, addr: int, limit: int = 1024) -> bytes | None:
        """The NUL-terminated bytes at ``addr`` (without the NUL)."""
        for s in self.sections:
            if s.type == SHT_PROGBITS and s.addr <= addr < s.addr + s.size:
                n = min(limit, s.addr + s.size - addr)
                try:
                    data = self.read(addr, n)
                except ElfError:
                    return None
                end = data.find(b"\0")
                return data[:end] if end >= 0 else None
        return None

    def one(self, name: str) -> int:
        """The address of the one symbol ``name`` (``all_symbols`` only)."""
        found = self.all_symbols.get(name, [])
        if len(found) != 1:
            raise ElfError(f"{len(found)} symbols named {name}")
        return found[0]

    def relocated(self, start: int, end: int) -> dict[int, int]:
        """``r_offset -> r_addend`` of the RELA entries in [start, end) (what a
        R_*_RELATIVE relocation writes there at boot)."""
        assert self._map is not None
        out: dict[int, int] = {}
        fmt = ("<" if self.little else ">") + ("QQQ" if self.wide else "III")
        step = struct.calcsize(fmt)
        for off, size in self.relas:
            data = self._map[off : off + size]
            for r_offset, _info, addend in struct.iter_unpack(
                fmt, data[: len(data) // step * step]
            ):
                if start <= r_offset < end:
                    out[r_offset] = addend
        return out

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


def open_vmlinux_image(
    path: str,
    wanted: Iterable[str] = (),
    *,
    all_symbols: bool = False,
    need_symtab: bool = True,
) -> VmlinuxImage:
    """Map ``path`` and look up the ``wanted`` symbols (those absent are left out);
    ``all_symbols``: decode the whole symbol table too. ``need_symtab=False`` takes a
    file without ``.symtab`` (its symbols are then empty) instead of refusing it."""
    f = open(path, "rb")
    try:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except ValueError as e:
        raise ElfError(f"cannot map {path}: {e}") from None
    finally:
        f.close()
    try:
        return _parse(path, m, set(wanted), all_symbols, need_symtab)
    except (struct.error, IndexError) as e:
        m.close()
        raise ElfError(f"malformed ELF headers ({e})") from None
    except ElfError:
        m.close()
        raise


def _parse(
    path: str, m: mmap.mmap, wanted: set[str], all_symbols: bool, need_symtab: bool
) -> VmlinuxImage:
    if m[:4] != b"\x7fELF" or m[4] not in (1, 2):
        raise ElfError("not an ELF file")
    wide = m[4] == 2
    little = m[5] == 1
    e = "<" if little else ">"
    (machine,) = struct.unpack_from(e + "H", m, 18)
    if wide:
        (shoff,) = struct.unpack_from(e + "Q", m, 40)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", m, 58)
        sh_fmt = e + "IIQQQQIIQQ"
    else:
        (shoff,) = struct.unpack_from(e + "I", m, 32)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", m, 46)
        sh_fmt = e + "IIIIIIIIII"
    if (
        not shnum
        or shentsize < struct.calcsize(sh_fmt)
        or shoff + shnum * shentsize > len(m)
        or shstrndx >= shnum
    ):
        raise ElfError("no section headers")
    raw = [struct.unpack_from(sh_fmt, m, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = raw[shstrndx][4]
    img = VmlinuxImage(path=path, machine=machine, bits=64 if wide else 32, little=little, _map=m)
    symtab = None
    for h in raw:
        name_off, stype, _flags, addr, off, size, link, _info, _align, entsize = h
        end = m.find(b"\0", strtab_off + name_off)
        name = m[strtab_off + name_off : end].decode(errors="replace")
        if off + (0 if stype == 8 else size) > len(m):
            raise ElfError(f"section {name} lies beyond the end of the file (truncated?)")
        img.sections.append(Section(name, stype, addr, off, size))
        if stype == SHT_SYMTAB and link < shnum and size <= MAX_TABLE:
            symtab = (off, size, entsize, raw[link][4], min(raw[link][5], MAX_TABLE))
        if stype == SHT_RELA and size <= MAX_TABLE:
            img.relas.append((off, size))
        if stype == SHT_NOTE and addr:
            _note(img, m, e, addr, off, size)
    if symtab is None:
        if need_symtab:
            raise ElfError("no symbol table (.symtab): a stripped vmlinux")
        return img
    if wanted:  # a pass over every symtab entry (~150,000 in a distribution vmlinux)
        _symbols(img, m, e, wide, symtab, wanted)
    if all_symbols:
        _all_symbols(img, m, e, wide, symtab)
    return img


def _note(img: VmlinuxImage, m: mmap.mmap, e: str, addr: int, off: int, size: int) -> None:
    pos = 0
    while pos + 12 <= size:
        namesz, descsz, ntype = struct.unpack_from(e + "III", m, off + pos)
        name_at = off + pos + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        total = desc_at - off - pos + ((descsz + 3) & ~3)
        if m[name_at : name_at + namesz].rstrip(b"\0") == b"GNU" and ntype == NT_GNU_BUILD_ID:
            img.build_id = bytes(m[desc_at : desc_at + descsz]).hex()
            img.build_id_note = (addr + pos, bytes(m[off + pos : off + pos + total]))
            return
        pos += total


def _symbols(
    img: VmlinuxImage, m: mmap.mmap, e: str, wide: bool, symtab: tuple[int, ...], wanted: set[str]
) -> None:
    off, size, entsize, str_off, str_size = symtab
    # every offset in .strtab where a wanted name + NUL starts (linkers may share the
    # tail of a longer name: "_text" inside "__init_text")
    offsets: dict[int, str] = {}
    for name in wanted:
        needle = name.encode() + b"\0"
        at = m.find(needle, str_off, str_off + str_size)
        while at >= 0:
            offsets[at - str_off] = name
            at = m.find(needle, at + 1, str_off + str_size)
    if wide:
        fmt, name_at, value_at = e + "IBBHQQ", 0, 4
    else:
        fmt, name_at, value_at = e + "IIIBBH", 0, 1
    entsize = entsize or struct.calcsize(fmt)
    for fields in struct.iter_unpack(fmt, m[off : off + size - size % entsize]):
        found = offsets.get(fields[name_at])
        if found is not None and found not in img.symbols and fields[value_at]:
            img.symbols[found] = fields[value_at]


def _all_symbols(
    img: VmlinuxImage, m: mmap.mmap, e: str, wide: bool, symtab: tuple[int, ...]
) -> None:
    off, size, _entsize, str_off, str_size = symtab
    strtab = m[str_off : str_off + str_size]
    fmt = e + ("IBBHQQ" if wide else "IIIBBH")
    step = struct.calcsize(fmt)
    for fields in struct.iter_unpack(fmt, m[off : off + size - size % step]):
        name_off, value = fields[0], (fields[4] if wide else fields[1])
        end = strtab.find(b"\0", name_off)
        if not value or end < 0:
            continue
        name = strtab[name_off:end].decode(errors="replace")
        if not name or name.startswith("$"):
            continue
        img.all_symbols.setdefault(name, []).append(value)
        img.by_address.setdefault(value, []).append(name)
