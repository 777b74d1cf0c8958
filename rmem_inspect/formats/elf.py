# SPDX-License-Identifier: GPL-2.0-or-later
"""
elf
---

Just enough ELF (32- and 64-bit) to vet inputs before drgn sees them: the machine, the
VMCOREINFO note of a dump, the GNU build-id of a vmlinux, whether a vmlinux has
DWARF, and whether a dump is shorter than its program headers say. Every read
is bounded; malformed files raise :class:`ElfError`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

__all__ = [
    "EM_NAMES",
    "ElfError",
    "ElfInfo",
    "parse_notes",
    "read_elf",
]

EM_NAMES = {3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 62: "x86_64",
            183: "arm64", 243: "riscv", 258: "loongarch"}  # fmt: skip
ET_CORE = 4
PT_LOAD = 1
PT_NOTE = 4
SHT_NOTE = 7
ELFCLASS32 = 1
ELFCLASS64 = 2
NT_GNU_BUILD_ID = 3
MAX_NOTES_BYTES = 16 << 20
MAX_HEADERS = 65536


class ElfError(ValueError):
    pass


@dataclass
class ElfInfo:
    path: str
    machine: int
    type: int
    file_size: int
    #: 32 (ELFCLASS32) or 64 (ELFCLASS64).
    bits: int = 64
    #: Bytes the PT_LOAD segments say the file holds (end of the last one).
    described_size: int = 0
    vmcoreinfo: dict[str, str] | None = None
    build_id: str | None = None
    section_names: set[str] = field(default_factory=set)

    @property
    def arch(self) -> str:
        return EM_NAMES.get(self.machine, f"machine {self.machine}")

    @property
    def has_dwarf(self) -> bool:
        return ".debug_info" in self.section_names


def parse_notes(data: bytes, little: bool) -> list[tuple[str, int, bytes]]:
    """(name, type, descriptor) of each ELF note in ``data`` (a PT_NOTE segment, an
    SHT_NOTE section or /sys/kernel/notes), each padded to 4 bytes; a truncated last
    note ends the list."""
    e = "<" if little else ">"
    out = []
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(e + "III", data, off)
        off += 12
        name = data[off : off + namesz].rstrip(b"\0").decode(errors="replace")
        off += (namesz + 3) & ~3
        desc = data[off : off + descsz]
        off += (descsz + 3) & ~3
        if off > len(data) + 3:
            break
        out.append((name, ntype, desc))
    return out


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise ElfError(
            f"truncated: the file ends at byte {offset + len(data)}, its headers need "
            f"{offset + size}"
        )
    return data


def read_elf(path: str, *, sections: bool = False) -> ElfInfo:
    """Vet an ELF file (dump or vmlinux). ``sections``: also read section names/notes."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        ident = f.read(64)
        if len(ident) < 52 or ident[:4] != b"\x7fELF":
            raise ElfError("not an ELF file")
        elfclass = ident[4]
        if elfclass not in (ELFCLASS32, ELFCLASS64):
            raise ElfError(f"unknown ELF class {elfclass} (neither 32- nor 64-bit)")
        little = ident[5] == 1
        e = "<" if little else ">"
        wide = elfclass == ELFCLASS64
        etype, machine = struct.unpack_from(e + "HH", ident, 16)
        # Elf64_Ehdr / Elf32_Ehdr (include/uapi/linux/elf.h): e_phoff and e_shoff are
        # 8 bytes at 32 or 4 bytes at 28, the counts follow e_flags and e_ehsize.
        if wide:
            phoff, shoff = struct.unpack_from(e + "QQ", ident, 32)
            counts_at, ph_min, sh_min = 54, 56, 64
            ph_fmt, sh_fmt = "IIQQQQ", "IIQQQQ"
        else:
            phoff, shoff = struct.unpack_from(e + "II", ident, 28)
            counts_at, ph_min, sh_min = 42, 32, 40
            # Elf32_Phdr: p_type, p_offset, p_vaddr, p_paddr, p_filesz (p_flags comes
            # later); Elf32_Shdr: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size
            ph_fmt, sh_fmt = "IIIII", "IIIIII"
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(
            e + "HHHHH", ident, counts_at
        )
        info = ElfInfo(path=path, machine=machine, type=etype, file_size=size, bits=32 << wide)
        if phnum > MAX_HEADERS or shnum > MAX_HEADERS:
            raise ElfError(f"absurd header counts ({phnum} program, {shnum} section)")
        if phnum and phentsize >= ph_min:
            ph = _read(f, phoff, phentsize * phnum)
            for i in range(phnum):
                fields = struct.unpack_from(e + ph_fmt, ph, i * phentsize)
                if wide:
                    ptype, _flags, poff, _va, _pa, filesz = fields
                else:
                    ptype, poff, _va, _pa, filesz = fields
                if ptype == PT_LOAD:
                    info.described_size = max(info.described_size, poff + filesz)
                elif ptype == PT_NOTE and etype == ET_CORE and 0 < filesz <= MAX_NOTES_BYTES:
                    try:
                        data = _read(f, poff, filesz)
                    except ElfError:
                        continue
                    for name, _ntype, desc in parse_notes(data, little):
                        if name == "VMCOREINFO":
                            text = desc.rstrip(b"\0").decode(errors="replace")
                            info.vmcoreinfo = dict(
                                line.split("=", 1) for line in text.splitlines() if "=" in line
                            )
        if sections and shnum and shentsize >= sh_min:
            sh = _read(f, shoff, shentsize * shnum)
            hdrs = [struct.unpack_from(e + sh_fmt, sh, i * shentsize) for i in range(shnum)]
            if shstrndx < shnum:
                _n, _t, _fl, _a, stroff, strsize = hdrs[shstrndx]
                strtab = _read(f, stroff, min(strsize, MAX_NOTES_BYTES))
                for name_off, stype, _fl, _a, off, sz in hdrs:
                    end = strtab.find(b"\0", name_off)
                    info.section_names.add(strtab[name_off:end].decode(errors="replace"))
                    if stype == SHT_NOTE and 0 < sz <= MAX_NOTES_BYTES:
                        for name, ntype, desc in parse_notes(_read(f, off, sz), little):
                            if name == "GNU" and ntype == NT_GNU_BUILD_ID:
                                info.build_id = desc.hex()
        return info
