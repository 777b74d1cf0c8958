# SPDX-License-Identifier: GPL-2.0-or-later
"""
ramdump
-------

Raw RAM dumps read as crash reads them: bank files with their physical bases,
given as crash's ``FILE@PADDR[,FILE@PADDR...]``, a Lauterbach ``load.cmm``, a
directory holding a ``load.cmm`` (else Qualcomm's ``dump_info.txt``), or an ELF core
without a VMCOREINFO note (QEMU ``dump-guest-memory`` of a guest without ``-device
vmcoreinfo``: each PT_LOAD is a bank at its ``p_paddr``). Every bank is mapped, never
read whole or copied.

The kernel is found unaided (:func:`open_ramdump`):

1. the VMCOREINFO page: crash_save_vmcoreinfo_init() (kernel/vmcore_info.c since 6.9,
   kernel/crash_core.c before) writes the text into a page from get_zeroed_page(),
   starting ``OSRELEASE=``; page starts are probed, and a page whose BUILD-ID differs
   from the vmlinux's (an earlier boot's, left in RAM) is not used;
2. without one (wiped page, a kernel without CONFIG_VMCORE_INFO, a bank not saved),
   from the vmlinux: :mod:`rmem_inspect.kernel.image` locates the image and rebuilds
   the VMCOREINFO from the image's own variables.

drgn reads the banks as physical memory (``Program.add_memory_segment(...,
physical=True)``) of a custom Linux target (``Program.set_linux_kernel_custom()``):
drgn 0.3.0 or later. Data no bank covers is not in the dump: reads of it fault, the
collectors say what they could not read, and :func:`missing_pages` names the pages.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field

from rmem_inspect.errors import InputError
from rmem_inspect.formats.elf import ElfError, read_elf
from rmem_inspect.formats.ramdump import (
    BankSpec,
    RamdumpFormatError,
    check_overlaps,
    looks_like_bank_list,
    parse_bank_list,
    parse_dump_info,
    parse_load_cmm,
    parse_vmcoreinfo,
)

__all__ = [
    "RAMDUMP_CACHE_KEY",
    "Bank",
    "RamSet",
    "find_vmcoreinfo",
    "is_ramdump",
    "open_banks",
    "page_starts",
]

#: ``prog.cache`` key of the :class:`RamSet` a program reads.
RAMDUMP_CACHE_KEY = "rmem_inspect.ramdump"
#: The probe granule for VMCOREINFO (the smallest PAGE_SIZE; larger pages are multiples).
PROBE = 4096
#: Bytes mapped at a time while scanning (keeps the scan's RSS bounded).
WINDOW = 64 << 20
PT_LOAD = 1

_DRGN_ARCH = {"arm64": "AARCH64", "arm": "ARM", "riscv64": "RISCV64"}


@dataclass
class Bank:
    """One file (or part of one) holding physical memory from ``paddr``."""

    path: str
    paddr: int
    size: int
    offset: int = 0
    #: How it was named (``DDRCS0_0.BIN`` in load.cmm line 3, PT_LOAD 1, ...).
    label: str = ""
    #: The open file; banks of one ELF core share it.
    fd: int = -1
    _map: mmap.mmap | None = None

    @property
    def end(self) -> int:
        return self.paddr + self.size

    def view(self) -> mmap.mmap:
        if self._map is None:
            self._map = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)
        return self._map

    def release(self) -> None:
        """Drop the mapping (the descriptor is closed by the set)."""
        if self._map is not None and not self._map.closed:
            self._map.close()
        self._map = None
        self.fd = -1

    def read(self, paddr: int, size: int) -> bytes:
        start = self.offset + paddr - self.paddr
        return self.view()[start : start + size]

    def describe(self) -> str:
        return f"{self.label or os.path.basename(self.path)} {self.paddr:#x}..{self.end - 1:#x}"


@dataclass
class RamSet:
    """The banks of one dump, sorted by physical address."""

    banks: list[Bank]
    #: What the user named (for messages).
    shown: str
    #: "raw RAM banks", "load.cmm", "dump_info.txt", "ELF without VMCOREINFO".
    format: str
    #: ELF e_machine when the input says it (note-less ELF), else None.
    machine: int | None = None
    notes: list[str] = field(default_factory=list)

    def bank_at(self, paddr: int) -> Bank | None:
        for b in self.banks:
            if b.paddr <= paddr < b.end:
                return b
        return None

    def read(self, paddr: int, size: int) -> bytes | None:
        b = self.bank_at(paddr)
        if b is None or paddr + size > b.end:
            return None
        return b.read(paddr, size)

    def page_dumped(self, pfn: int, page_size: int = 4096) -> bool:
        """Whether a bank holds the whole page ``pfn``."""
        b = self.bank_at(pfn * page_size)
        return b is not None and (pfn + 1) * page_size <= b.end

    def find(self, needle: bytes, limit: int) -> list[int]:
        """Physical addresses of ``needle`` in the banks, 64 MiB mapped at a time (holes
        of sparse files skipped)."""
        out: list[int] = []
        gran = mmap.ALLOCATIONGRANULARITY
        for b in self.banks:
            end = b.offset + b.size
            for lo, hi in _data_extents(b.fd, b.offset, end):
                pos = lo
                while pos < hi and len(out) < limit:
                    base = pos - pos % gran
                    stop = min(pos + WINDOW, hi)  # hits starting before here are ours
                    length = min(stop + len(needle) - 1, end) - base
                    with mmap.mmap(b.fd, length, access=mmap.ACCESS_READ, offset=base) as w:
                        at = w.find(needle, pos - base)
                        while 0 <= at and base + at < stop and len(out) < limit:
                            out.append(b.paddr + base + at - b.offset)
                            at = w.find(needle, at + 1)
                    pos = stop
        return out

    def gap_around(self, paddr: int) -> tuple[int | None, int | None]:
        """The range no bank covers around ``paddr``: (end of the bank below, start of
        the bank above), None where there is no bank on that side."""
        below = [b.end for b in self.banks if b.end <= paddr]
        above = [b.paddr for b in self.banks if b.paddr > paddr]
        return (max(below) if below else None, min(above) if above else None)

    def ranges(self) -> list[tuple[int, int]]:
        return [(b.paddr, b.size) for b in self.banks]

    def describe(self) -> str:
        return ", ".join(b.describe() for b in self.banks)

    def close(self) -> None:
        fds = {b.fd for b in self.banks if b.fd >= 0}
        for b in self.banks:
            b.release()
        for fd in fds:
            os.close(fd)


def is_ramdump(spec: str) -> bool:
    """Whether ``--vmcore`` names raw RAM: a bank list, a .cmm script, a directory,
    or an ELF core without a VMCOREINFO note."""
    if os.path.isdir(spec):
        return True
    if not os.path.exists(spec):
        return looks_like_bank_list(spec)
    if spec.lower().endswith(".cmm"):
        return True
    try:
        with open(spec, "rb") as f:
            head = f.read(18)
    except OSError:
        return False
    if head[:4] != b"\x7fELF":
        return False
    try:
        info = read_elf(spec)
    except (OSError, ElfError):
        return False
    return info.type == 4 and info.vmcoreinfo is None and info.described_size <= info.file_size


def _specs(spec: str) -> tuple[list[BankSpec], str, str]:
    """(banks, directory the names are relative to, format)."""
    try:
        if os.path.isdir(spec):
            for name, parse, fmt in (
                ("load.cmm", parse_load_cmm, "load.cmm"),
                ("dump_info.txt", parse_dump_info, "dump_info.txt"),
            ):
                path = os.path.join(spec, name)
                if os.path.isfile(path):
                    return parse(_text(path)), spec, fmt
            raise InputError(
                f"{spec} holds neither a load.cmm nor a dump_info.txt naming its bank files "
                "and their physical bases; pass the banks as FILE@PADDR,FILE@PADDR"
            )
        if os.path.isfile(spec):
            specs = parse_load_cmm(_text(spec))
            if not specs:
                raise InputError(
                    f"{spec} has no Data.LOAD.Binary (d.load.binary FILE ADDRESS) line: it is "
                    "not a Lauterbach load script naming bank files"
                )
            return specs, os.path.dirname(os.path.abspath(spec)), "load.cmm"
        return parse_bank_list(spec), os.getcwd(), "raw RAM banks"
    except RamdumpFormatError as e:
        raise InputError(f"{spec}: {e}") from None


def _text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    if b"\0" in data:
        raise InputError(f"{path} is not a text script (it holds NUL bytes)")
    return data.decode("latin-1")


def open_banks(spec: str) -> RamSet:
    """Open every bank ``spec`` names (mapped lazily); one line on any problem."""
    if os.path.isfile(spec) and not spec.lower().endswith(".cmm"):
        return _elf_banks(spec)
    specs, base, fmt = _specs(spec)
    banks = []
    try:
        for s in specs:
            path = s.path if os.path.isabs(s.path) else os.path.join(base, s.path)
            where = f" (line {s.line} of {spec})" if s.line else ""
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as e:
                raise InputError(f"bank file {s.path}{where}: {e.strerror}") from None
            size = os.fstat(fd).st_size - s.offset
            bank = Bank(path, s.paddr, size, s.offset, s.path, fd)
            banks.append(bank)
            if s.size is not None and s.size < size:
                bank.size = s.size
            elif s.size is not None and s.size > size:
                raise InputError(
                    f"bank file {s.path}{where} is truncated: {max(size, 0)} bytes, the list says "
                    f"{s.size}; copy the dump again"
                )
            if bank.size <= 0:
                raise InputError(f"bank file {s.path}{where} is empty")
        check_overlaps([(b.label, b.paddr, b.size) for b in banks])
    except (InputError, RamdumpFormatError) as e:
        for b in banks:
            os.close(b.fd)
        raise InputError(f"{spec}: {e}" if isinstance(e, RamdumpFormatError) else str(e)) from None
    banks.sort(key=lambda b: b.paddr)
    return RamSet(banks, spec, fmt)


def _elf_banks(path: str) -> RamSet:
    """The PT_LOADs of a note-less ELF core as banks at their ``p_paddr``."""
    import struct

    fd = os.open(path, os.O_RDONLY)
    try:
        m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        wide = m[4] == 2
        e = "<" if m[5] == 1 else ">"
        (machine,) = struct.unpack_from(e + "H", m, 18)
        if wide:
            (phoff,) = struct.unpack_from(e + "Q", m, 32)
            phentsize, phnum = struct.unpack_from(e + "HH", m, 54)
        else:
            (phoff,) = struct.unpack_from(e + "I", m, 28)
            phentsize, phnum = struct.unpack_from(e + "HH", m, 42)
        banks = []
        for i in range(phnum):
            if wide:
                ptype, _f, off, _va, pa, filesz = struct.unpack_from(
                    e + "IIQQQQ", m, phoff + i * phentsize
                )
            else:
                ptype, off, _va, pa, filesz = struct.unpack_from(
                    e + "IIIII", m, phoff + i * phentsize
                )
            if ptype == PT_LOAD and filesz:
                banks.append(Bank(path, pa, filesz, off, f"PT_LOAD {i}", fd, m))
    except (struct.error, ValueError, IndexError) as ex:
        os.close(fd)
        raise InputError(f"{path}: malformed ELF program headers ({ex})") from None
    if not banks:
        os.close(fd)
        raise InputError(f"{path} is an ELF core with no memory (no PT_LOAD)")
    try:
        check_overlaps([(b.label, b.paddr, b.size) for b in banks])
    except RamdumpFormatError as ex:
        os.close(fd)
        raise InputError(f"{path}: {ex}") from None
    banks.sort(key=lambda b: b.paddr)
    return RamSet(banks, path, "ELF without VMCOREINFO", machine)


def _data_extents(fd: int, start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) of a file without its holes (SEEK_DATA/SEEK_HOLE; the whole range
    where the file system cannot say)."""
    out = []
    pos = start
    try:
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            if data >= end:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
            out.append((data, hole))
            pos = hole
    except (AttributeError, OSError):
        return [(start, end)]
    return out


def page_starts(ram: RamSet, prefix: bytes) -> list[int]:
    """Physical addresses of the 4 KiB page starts that begin with ``prefix``: one small
    read per page (no mapping, so memory use stays flat), holes of sparse files skipped."""
    out = []
    for b in ram.banks:
        for lo, hi in _data_extents(b.fd, b.offset, b.offset + b.size):
            k = lo - b.offset
            k += -(b.paddr + k) % PROBE  # the next page start, in physical terms
            while b.offset + k < hi:
                if os.pread(b.fd, len(prefix), b.offset + k) == prefix:
                    out.append(b.paddr + k)
                k += PROBE
    return out


def find_vmcoreinfo(ram: RamSet, limit: int = 8) -> list[tuple[int, dict[str, str], str]]:
    """(phys, fields, text) of each page starting ``OSRELEASE=`` (page starts only)."""
    out = []
    for hit in page_starts(ram, b"OSRELEASE="):
        data = ram.read(hit, PROBE) or b""
        text = data.split(b"\0", 1)[0]
        fields = parse_vmcoreinfo(text)
        if "PAGESIZE" in fields and "SYMBOL(swapper_pg_dir)" in fields:
            out.append((hit, fields, text.decode("ascii", errors="replace")))
            if len(out) >= limit:
                break
    return out
