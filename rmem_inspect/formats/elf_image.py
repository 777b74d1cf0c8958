# SPDX-License-Identifier: GPL-2.0-or-later
"""
elf_image
---------

A vmlinux seen as the kernel image it describes, for finding that image in raw
RAM: the link-time address of a few symbols (``.symtab``), the bytes the file holds
at a link-time address (the ``PROGBITS`` sections), and the GNU build-id note.
The file is mapped, never read whole; every read is bounded and a malformed file
raises :class:`~rmem_inspect.formats.elf.ElfError`.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from rmem_inspect.formats.elf import ElfError

__all__ = ["VmlinuxImage", "open_vmlinux_image"]

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_NOTE = 7
NT_GNU_BUILD_ID = 3


@dataclass
class _Section:
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
    symbols: dict[str, int] = field(default_factory=dict)
    sections: list[_Section] = field(default_factory=list)
    #: (link-time address, bytes) of the GNU build-id note, header included.
    build_id_note: tuple[int, bytes] | None = None
    build_id: str | None = None
    _map: mmap.mmap | None = None

    def read(self, addr: int, size: int) -> bytes | None:
        """The file's bytes at link-time ``addr`` (None: not in one PROGBITS/NOTE section)."""
        for s in self.sections:
            if (
                s.type in (SHT_PROGBITS, SHT_NOTE)
                and s.addr <= addr
                and addr + size <= s.addr + s.size
            ):
                assert self._map is not None
                start = s.offset + addr - s.addr
                return bytes(self._map[start : start + size])
        return None

    def c_string(self, addr: int, limit: int = 1024) -> bytes | None:
        """The NUL-terminated bytes at ``addr`` (without the NUL)."""
        for s in self.sections:
            if s.type == SHT_PROGBITS and s.addr <= addr < s.addr + s.size:
                n = min(limit, s.addr + s.size - addr)
                data = self.read(addr, n) or b""
                end = data.find(b"\0")
                return data[:end] if end >= 0 else None
        return None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


def open_vmlinux_image(path: str, wanted: Iterable[str]) -> VmlinuxImage:
    """Map ``path`` and look up the ``wanted`` symbols (those absent are left out)."""
    f = open(path, "rb")
    try:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except ValueError as e:
        raise ElfError(f"cannot map {path}: {e}") from None
    finally:
        f.close()
    try:
        return _parse(path, m, set(wanted))
    except (struct.error, IndexError) as e:
        m.close()
        raise ElfError(f"malformed ELF headers ({e})") from None
    except ElfError:
        m.close()
        raise


def _parse(path: str, m: mmap.mmap, wanted: set[str]) -> VmlinuxImage:
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
    if not shnum or shoff + shnum * shentsize > len(m) or shstrndx >= shnum:
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
        img.sections.append(_Section(name, stype, addr, off, size))
        if stype == SHT_SYMTAB:
            symtab = (off, size, entsize, raw[link][4], raw[link][5])
        if stype == SHT_NOTE and addr:
            _note(img, m, e, addr, off, size)
    if symtab is None:
        raise ElfError("no symbol table (.symtab): a stripped vmlinux")
    _symbols(img, m, e, wide, symtab, wanted)
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
