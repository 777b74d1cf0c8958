# SPDX-License-Identifier: GPL-2.0-or-later
"""
kdump
-----

Just enough of makedumpfile's output formats to vet a dump before drgn (and
the libkdumpfile inside it) opens it, and to name what a filtered dump left
out:

- the kdump-compressed format (``makedumpfile -c/-l/-p/-z``, and QEMU's
  ``dump-guest-memory -z``): ``struct disk_dump_header`` and ``struct
  kdump_sub_header`` (makedumpfile's diskdump_mod.h; the same layout is read by
  libkdumpfile's src/kdumpfile/diskdump.c), the VMCOREINFO it carries, the
  dump level and the compression, and the second page bitmap, whose clear bits
  are the pages the dump level excluded;
- the flattened format (``makedumpfile -F``, for streaming over ssh or to a
  raw disk): a 4 KiB ``makedumpfile_header``, then ``makedumpfile_data_header``
  records (big-endian offset and size) each followed by its data, ended by a
  record whose offset is -1. :func:`reassemble` writes such a stream out as the
  plain file it describes (what ``makedumpfile -R`` does), sparse.

Only the 64-bit header layout is read (every architecture the tool supports
is 64-bit). Every read is bounded; malformed files raise :class:`KdumpError`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from rmem_inspect.formats.elf import EM_NAMES

__all__ = [
    "COMPRESSION_FLAGS",
    "FlatFile",
    "KdumpError",
    "KdumpHeader",
    "UTS_MACHINES",
    "describe_dump",
    "is_flattened",
    "read_kdump",
    "reassemble",
]

FLAT_SIGNATURE = b"makedumpfile"
FLAT_HEADER_SIZE = 4096
FLAT_END = -1
KDUMP_SIGNATURES = (b"KDUMP   ", b"DISKDUMP")
#: struct disk_dump_header (64-bit): signature[8], header_version, struct
#: new_utsname (6 x 65 bytes), 6 bytes padding, struct timeval (16 bytes), then
#: status, block_size, sub_hdr_size, bitmap_blocks, max_mapnr (32-bit each).
UTS_OFFSET = 12
UTS_FIELD = 65
HEADER_FIELDS_OFFSET = UTS_OFFSET + 6 * UTS_FIELD + 6 + 16
HEADER_SIZE = HEADER_FIELDS_OFFSET + 5 * 4
#: struct kdump_sub_header (64-bit), one block after the header: phys_base,
#: dump_level (int), split (int), start_pfn, end_pfn, offset_vmcoreinfo,
#: size_vmcoreinfo, offset_note, size_note, offset_eraseinfo, size_eraseinfo,
#: start_pfn_64, end_pfn_64, max_mapnr_64.
SUB_HEADER = "QiiQQQQQQQQQQQ"
#: disk_dump_header.status bits for the page compression (diskdump_mod.h).
COMPRESSION_FLAGS = {0x1: "zlib", 0x2: "lzo", 0x4: "snappy", 0x20: "zstd"}
DUMP_DH_COMPRESSED_INCOMPLETE = 0x8
#: utsname machine -> ELF e_machine, to compare a dump with a vmlinux.
UTS_MACHINES = {"aarch64": 183, "arm64": 183, "x86_64": 62, "ppc64le": 21, "ppc64": 21,
                "s390x": 22, "riscv64": 243, "loongarch64": 258, "armv7l": 40,
                "armv8l": 40}  # fmt: skip
PAGE_DESC_SIZE = 24
MAX_VMCOREINFO = 1 << 20
MAX_BITMAP = 1 << 30
MAX_RECORDS = 1 << 24


class KdumpError(ValueError):
    pass


class FlatFile:
    """A flattened makedumpfile stream, readable at the offsets of the file it describes."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        size = os.fstat(f.fileno()).st_size
        #: (offset in the described file, size, offset of the data in this file)
        self.records: list[tuple[int, int, int]] = []
        pos = FLAT_HEADER_SIZE
        self.complete = False
        while pos + 16 <= size:
            f.seek(pos)
            offset, length = struct.unpack(">qq", f.read(16))
            if offset == FLAT_END:
                self.complete = True
                break
            if offset < 0 or length < 0 or pos + 16 + length > size:
                raise KdumpError(
                    f"flattened record at byte {pos} is damaged or cut short "
                    f"(offset {offset}, size {length}, file size {size})"
                )
            self.records.append((offset, length, pos + 16))
            if len(self.records) > MAX_RECORDS:
                raise KdumpError(f"more than {MAX_RECORDS} flattened records")
            pos += 16 + length
        #: Bytes of this file that hold the stream (a raw disk may hold more).
        self.stream_end = pos + 16 if self.complete else pos
        self.size = max((o + n for o, n, _ in self.records), default=0)

    def pread(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of the described file (holes read as zeros)."""
        out = bytearray(size)
        end = offset + size
        for roff, rlen, fpos in self.records:
            lo, hi = max(offset, roff), min(end, roff + rlen)
            if lo < hi:
                self.f.seek(fpos + lo - roff)
                out[lo - offset : hi - offset] = self.f.read(hi - lo)
        return bytes(out)


def is_flattened(head: bytes) -> bool:
    return head.startswith(FLAT_SIGNATURE)


def reassemble(src: str, dst: str) -> int:
    """Write the file the flattened ``src`` describes to ``dst`` (a new file, holes left
    sparse); returns its size. Raises :class:`KdumpError` if ``src`` is incomplete."""
    with open(src, "rb") as f:
        flat = FlatFile(f)
        if not flat.complete:
            raise KdumpError("the flattened stream has no end record (cut short)")
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for roff, rlen, fpos in flat.records:
                f.seek(fpos)
                left, at = rlen, roff
                while left:
                    chunk = f.read(min(left, 1 << 20))
                    if not chunk:
                        raise KdumpError("the flattened stream ends inside a record")
                    os.pwrite(fd, chunk, at)
                    at += len(chunk)
                    left -= len(chunk)
            os.ftruncate(fd, flat.size)
        finally:
            os.close(fd)
    return flat.size


@dataclass
class KdumpHeader:
    """What a kdump-compressed dump's headers say."""

    path: str
    flattened: bool
    signature: str
    header_version: int
    release: str
    machine_name: str
    status: int
    block_size: int
    sub_hdr_size: int
    bitmap_blocks: int
    max_mapnr: int
    dump_level: int | None = None
    vmcoreinfo: dict[str, str] | None = None
    #: Pages the dump holds (set bits of the second bitmap), when it was read.
    dumped_pages: int = 0
    #: Size of the file the headers describe: through the last page's data when the
    #: bitmap was read, else through the bitmap.
    described_size: int = 0
    file_size: int = 0
    bitmap2: bytes = field(default=b"", repr=False)

    @property
    def machine(self) -> int:
        """The ELF e_machine of the dumped kernel (0 when the header does not say)."""
        return UTS_MACHINES.get(self.machine_name, 0)

    @property
    def arch(self) -> str:
        return EM_NAMES.get(self.machine, self.machine_name or "unknown machine")

    @property
    def compression(self) -> str:
        names = [n for bit, n in COMPRESSION_FLAGS.items() if self.status & bit]
        return "+".join(names) or "none"

    @property
    def incomplete(self) -> bool:
        """makedumpfile marks a dump it could not finish (ENOSPC) with this status bit."""
        return bool(self.status & DUMP_DH_COMPRESSED_INCOMPLETE)

    @property
    def format_name(self) -> str:
        kind = "flattened kdump-compressed" if self.flattened else "kdump-compressed"
        level = "" if self.dump_level is None else f", dump level {self.dump_level}"
        return f"{kind} ({self.compression}{level})"

    def page_dumped(self, pfn: int) -> bool | None:
        """Whether page ``pfn`` is in the dump (the second bitmap), None if unknown."""
        if not self.bitmap2 or pfn < 0:
            return None
        if pfn >= len(self.bitmap2) * 8:
            return False
        return bool(self.bitmap2[pfn >> 3] & (1 << (pfn & 7)))


def read_kdump(path: str, *, bitmap: bool = False) -> KdumpHeader | None:
    """The headers of a (possibly flattened) kdump-compressed dump; None if ``path`` is
    not one. ``bitmap``: also read the second page bitmap (what the dump holds)."""
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        head = f.read(FLAT_HEADER_SIZE)
        flat: FlatFile | None = None
        if is_flattened(head):
            flat = FlatFile(f)

            def pread(off: int, n: int) -> bytes:
                assert flat is not None
                return flat.pread(off, n)

        else:

            def pread(off: int, n: int) -> bytes:
                f.seek(off)
                return f.read(n)

        data = pread(0, HEADER_SIZE)
        if data[:8] not in KDUMP_SIGNATURES:
            return None
        if len(data) < HEADER_SIZE:
            raise KdumpError(f"truncated: the kdump header needs {HEADER_SIZE} bytes")
        (version,) = struct.unpack_from("<i", data, 8)
        uts = [
            data[UTS_OFFSET + i * UTS_FIELD : UTS_OFFSET + (i + 1) * UTS_FIELD]
            .split(b"\0", 1)[0]
            .decode(errors="replace")
            for i in range(6)
        ]
        status, block_size, sub_blocks, bitmap_blocks, max_mapnr = struct.unpack_from(
            "<IiiII", data, HEADER_FIELDS_OFFSET
        )
        hdr = KdumpHeader(
            path=path,
            flattened=flat is not None,
            signature=data[:8].decode(errors="replace").strip(),
            header_version=version,
            release=uts[2],
            machine_name=uts[4],
            status=status,
            block_size=block_size,
            sub_hdr_size=sub_blocks,
            bitmap_blocks=bitmap_blocks,
            max_mapnr=max_mapnr,
            file_size=flat.size if flat is not None else file_size,
        )
        if not (512 <= block_size <= 1 << 20) or block_size & (block_size - 1):
            raise KdumpError(f"kdump header block size {block_size} is not a power of two")
        bitmap_off = block_size * (1 + max(sub_blocks, 0))
        bitmap_len = block_size * bitmap_blocks
        hdr.described_size = bitmap_off + bitmap_len
        if hdr.signature == "KDUMP" and version >= 1:
            sub = pread(block_size, struct.calcsize("<" + SUB_HEADER))
            if len(sub) == struct.calcsize("<" + SUB_HEADER):
                fields = struct.unpack("<" + SUB_HEADER, sub)
                hdr.dump_level = fields[1]
                if version >= 6 and fields[13]:
                    hdr.max_mapnr = fields[13]
                off_vmci, size_vmci = fields[5], fields[6]
                if version >= 3 and 0 < size_vmci <= MAX_VMCOREINFO:
                    text = pread(off_vmci, size_vmci).rstrip(b"\0").decode(errors="replace")
                    hdr.vmcoreinfo = dict(
                        line.split("=", 1) for line in text.splitlines() if "=" in line
                    )
                    hdr.described_size = max(hdr.described_size, off_vmci + size_vmci)
        if bitmap and 0 < bitmap_len <= MAX_BITMAP:
            half = bitmap_len // 2
            hdr.bitmap2 = pread(bitmap_off + half, half)
            hdr.dumped_pages = int.from_bytes(hdr.bitmap2, "little").bit_count()
            # struct page_desc {offset, size, flags, page_flags} follow the bitmaps, one
            # per dumped page in pfn order; the last one says where the data ends.
            if hdr.dumped_pages and hdr.signature == "KDUMP":
                pd_off = bitmap_off + bitmap_len + (hdr.dumped_pages - 1) * PAGE_DESC_SIZE
                hdr.described_size = max(hdr.described_size, pd_off + PAGE_DESC_SIZE)
                pd = pread(pd_off, PAGE_DESC_SIZE)
                if len(pd) == PAGE_DESC_SIZE:
                    offset, size, _flags, _pflags = struct.unpack("<QIIQ", pd)
                    if pd.count(0) != PAGE_DESC_SIZE:
                        hdr.described_size = max(hdr.described_size, offset + size)
        return hdr


def describe_dump(path: str) -> dict[str, object]:
    """The dump's ``format``, ``compression`` and ``dump_level`` (None: not known, as
    for ELF dumps, whose headers do not record it), for the report's source line."""
    try:
        kd = read_kdump(path)
        if kd is not None:
            kind = "flattened kdump-compressed" if kd.flattened else "kdump-compressed"
            out: dict[str, object] = {
                "format": kind,
                "compression": kd.compression,
                "dump_level": kd.dump_level,
            }
            if kd.incomplete:
                # makedumpfile sets it when it could not write every page (ENOSPC).
                out["incomplete"] = True
            return out
        with open(path, "rb") as f:
            flat = is_flattened(f.read(len(FLAT_SIGNATURE)))
    except (OSError, KdumpError):
        return {}
    return {"format": "flattened ELF" if flat else "ELF", "compression": "none",
            "dump_level": None}  # fmt: skip
