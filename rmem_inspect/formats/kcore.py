# SPDX-License-Identifier: GPL-2.0-or-later
"""
kcore
-----

The head of ``/proc/kcore`` as a board pack carries it (its first bytes: the
ELF header, program headers and notes, fs/proc/kcore.c ``read_kcore_iter()``),
parsed from bytes: the PT_LOAD segments that map kernel virtual addresses to
file offsets, and the notes (VMCOREINFO among them, appended by
``append_kcore_note()`` since v4.19, commit 23c85094fe18).

:func:`file_ranges` turns virtual ranges into the ``(offset, length)`` pieces of
the file that hold them: the offsets a board's ``dd`` reads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rmem_inspect.formats.elf import ELFCLASS64, PT_LOAD, PT_NOTE, parse_notes

__all__ = ["KcoreError", "KcoreHead", "KcoreSegment", "file_ranges", "parse_kcore_head"]

ET_CORE = 4
#: fs/proc/kcore.c writes at most this many program headers on today's kernels
#: (one per RAM range, text, vmalloc, modules, vmemmap); more is not a kcore.
MAX_PHDRS = 4096


class KcoreError(ValueError):
    pass


@dataclass(frozen=True)
class KcoreSegment:
    """One PT_LOAD of /proc/kcore: ``vaddr``..``vaddr+size`` is at file ``offset``."""

    offset: int
    vaddr: int
    paddr: int
    size: int

    def contains(self, address: int) -> bool:
        return self.vaddr <= address < self.vaddr + self.size


@dataclass
class KcoreHead:
    machine: int
    little: bool
    segments: list[KcoreSegment] = field(default_factory=list)
    #: (name, type, descriptor) of each note the head holds
    notes: list[tuple[str, int, bytes]] = field(default_factory=list)

    def segment(self, address: int) -> KcoreSegment | None:
        for s in self.segments:
            if s.contains(address):
                return s
        return None

    def virtual(self, paddr: int) -> int | None:
        """A virtual address of physical ``paddr`` in the segments that have one (p_paddr
        is (elf_addr_t)-1 for those that do not, fs/proc/kcore.c)."""
        for s in self.segments:
            if s.paddr != (1 << 64) - 1 and s.paddr <= paddr < s.paddr + s.size:
                return s.vaddr + paddr - s.paddr
        return None

    @property
    def vmcoreinfo(self) -> bytes | None:
        for name, _t, desc in self.notes:
            if name == "VMCOREINFO":
                return desc.rstrip(b"\0")
        return None


def parse_kcore_head(data: bytes) -> KcoreHead:
    """The segments and notes of a 64-bit /proc/kcore head (notes beyond ``data`` are left out).

    :raises KcoreError: not a 64-bit ELF core, or program headers beyond ``data``.
    """
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise KcoreError("not an ELF file")
    if data[4] != ELFCLASS64:
        raise KcoreError(f"ELF class {data[4]}: /proc/kcore of a 64-bit kernel is ELFCLASS64")
    little = data[5] == 1
    e = "<" if little else ">"
    etype, machine = struct.unpack_from(e + "HH", data, 16)
    if etype != ET_CORE:
        raise KcoreError(f"ELF type {etype}, not a core file")
    (phoff,) = struct.unpack_from(e + "Q", data, 32)
    phentsize, phnum = struct.unpack_from(e + "HH", data, 54)
    if phnum > MAX_PHDRS or (phnum and phentsize < 56):
        raise KcoreError(f"{phnum} program headers of {phentsize} bytes")
    if phoff + phnum * phentsize > len(data):
        raise KcoreError(
            f"program headers end at byte {phoff + phnum * phentsize}, the head has {len(data)}"
        )
    head = KcoreHead(machine=machine, little=little)
    for i in range(phnum):
        ptype, _fl, off, va, pa, filesz = struct.unpack_from(
            e + "IIQQQQ", data, phoff + i * phentsize
        )
        if ptype == PT_LOAD and filesz:
            head.segments.append(KcoreSegment(offset=off, vaddr=va, paddr=pa, size=filesz))
        elif ptype == PT_NOTE and off < len(data):
            head.notes.extend(parse_notes(data[off : off + filesz], little))
    return head


def file_ranges(head: KcoreHead, vaddr: int, length: int) -> list[tuple[int, int, int]]:
    """``(vaddr, file offset, length)`` pieces of ``vaddr``..``vaddr+length`` in the file.

    :raises KcoreError: some byte of the range is in no PT_LOAD (not readable in kcore).
    """
    out = []
    end = vaddr + length
    while vaddr < end:
        seg = head.segment(vaddr)
        if seg is None:
            raise KcoreError(f"{vaddr:#x} is in no /proc/kcore segment")
        n = min(end, seg.vaddr + seg.size) - vaddr
        out.append((vaddr, seg.offset + vaddr - seg.vaddr, n))
        vaddr += n
    return out
