# SPDX-License-Identifier: GPL-2.0-or-later
"""The flattened-format reader and reassembler on streams built here by hand, in the
layout makedumpfile writes (a 4 KiB header, big-endian (offset, size) records, an end
record of -1): records out of order, overlapping, with holes, cut short."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from rmem_inspect.formats.kdump import FlatFile, KdumpError, reassemble

pytestmark = pytest.mark.unit


def _flat(records: list[tuple[int, bytes]], end: bool = True) -> bytes:
    out = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    out = out.ljust(4096, b"\0")
    for off, data in records:
        out += struct.pack(">qq", off, len(data)) + data
    if end:
        out += struct.pack(">qq", -1, -1)
    return out


def test_reassemble_out_of_order_with_holes(tmp_path: Path) -> None:
    want = bytearray(1 << 20)
    records = []
    for off in (700_000, 10, 300_000, 5000, 999_000):
        data = os.urandom(1000)
        want[off : off + len(data)] = data
        records.append((off, data))
    # A later record overwrites an earlier one, as makedumpfile's header rewrite does.
    again = os.urandom(200)
    want[10:210] = again
    records.append((10, again))
    src = tmp_path / "dump.flat"
    src.write_bytes(_flat(records))
    dst = tmp_path / "dump"
    size = reassemble(str(src), str(dst))
    assert size == 1_000_000
    assert dst.read_bytes() == bytes(want[:size])
    with open(src, "rb") as f:
        flat = FlatFile(f)
        assert flat.complete and flat.stream_end == src.stat().st_size
        assert flat.pread(0, 1_000_000) == bytes(want[:size])
        assert flat.pread(9, 4) == bytes(want[9:13])


def test_reassemble_refuses_to_overwrite(tmp_path: Path) -> None:
    src = tmp_path / "dump.flat"
    src.write_bytes(_flat([(0, b"x" * 10)]))
    dst = tmp_path / "dump"
    dst.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        reassemble(str(src), str(dst))
    assert dst.read_bytes() == b"keep"


def test_cut_short_and_missing_end(tmp_path: Path) -> None:
    src = tmp_path / "dump.flat"
    full = _flat([(0, b"a" * 5000), (8192, b"b" * 5000)])
    src.write_bytes(full[:-3000])
    with open(src, "rb") as f, pytest.raises(KdumpError, match="cut short"):
        FlatFile(f)
    src.write_bytes(_flat([(0, b"a" * 5000)], end=False))
    with pytest.raises(KdumpError, match="no end record"):
        reassemble(str(src), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
