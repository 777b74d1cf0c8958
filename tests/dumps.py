# SPDX-License-Identifier: GPL-2.0-or-later
"""The factory's real dumps as the tiers find them (shared by tests/vmcore and tests/hostile)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from vmcores.manifest import DumpManifest, default_cache, load_manifests

__all__ = ["manifest_for", "reencode_snappy"]

_MANIFESTS: dict[tuple[str, str], DumpManifest] | None = None


def manifest_for(series: str, scenario: str) -> DumpManifest:
    """The factory's manifest for a real dump; a missing dump fails the test (never skips)."""
    global _MANIFESTS
    if _MANIFESTS is None:
        _MANIFESTS = {(m.series, m.scenario): m for m in load_manifests()}
    m = _MANIFESTS.get((series, scenario))
    if m is None:
        pytest.fail(
            f"no factory dump for {series}/{scenario} in {default_cache()}: "
            "run python -m vmcores.build"
        )
    return m


def _snappy_literal(page: bytes) -> bytes:
    """``page`` as one snappy literal (raw format: varint length, then a literal element,
    tag 61<<2 with a 2-byte length-1): valid snappy, stored uncompressed."""
    n = len(page)
    varint = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        varint.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes(varint) + bytes([61 << 2]) + (len(page) - 1).to_bytes(2, "little") + page


def reencode_snappy(src: Path, dst: Path, damage: bool = False) -> Path:
    """Rewrite an uncompressed kdump-compressed dump (makedumpfile without -c/-l/-p/-z)
    with every page snappy-encoded: DUMP_DH_COMPRESSED_SNAPPY (0x4) in the header status
    and each page descriptor (makedumpfile's diskdump_mod.h; parsed here with struct).
    ``damage``: give every page a wrong uncompressed length, so decompression fails.
    Debian's makedumpfile has no snappy, so this is how a snappy dump is had here."""
    data = src.read_bytes()
    status, bs, sub, blocks = struct.unpack_from("<IiiI", data, 424)
    assert status & 0x27 == 0, f"{src} is not an uncompressed kdump dump"
    bitmap = bs * (1 + sub)
    pd_off = bitmap + bs * blocks
    count = int.from_bytes(data[bitmap + bs * blocks // 2 : pd_off], "little").bit_count()
    out = bytearray(data[:pd_off])
    struct.pack_into("<I", out, 424, status | 0x4)
    descs = bytearray()
    pages = bytearray()
    at = pd_off + count * 24
    for i in range(count):
        offset, size, flags, pflags = struct.unpack_from("<QIIQ", data, pd_off + i * 24)
        assert flags == 0 and size == 4096, (i, flags, size)
        enc = _snappy_literal(data[offset : offset + size])
        if damage:
            enc = b"\x00" + enc[1:]
        descs += struct.pack("<QIIQ", at + len(pages), len(enc), 0x4, pflags)
        pages += enc
    dst.write_bytes(bytes(out + descs + pages))
    return dst
