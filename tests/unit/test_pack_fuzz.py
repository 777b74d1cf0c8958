# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fuzz the board-pack reader with hypothesis: whatever the bytes (random, or a
real tar or cpio archive with bytes flipped, cut or spliced), parse_pack raises
PackError or returns members that are relative paths without ``..``, within the
caps; it never raises anything else.
"""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.formats.pack import MAX_MEMBER, MAX_TOTAL, PackError, parse_pack

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=400, deadline=None, derandomize=True)

FILES = {
    "rmem/pack": b"1\n",
    "rmem/missing": b"/proc/kcore\tnot readable\n",
    "proc/iomem": b"40000000-7fffffff : System RAM\n",
    "sys/firmware/devicetree/base/reserved-memory/" + "n" * 120 + "/reg": b"\0" * 16,
}


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _cpio() -> bytes:
    out = b""
    for i, (name, data) in enumerate([*FILES.items(), ("TRAILER!!!", b"")]):
        n = name.encode() + b"\0"
        mode = 0o100644 if name != "TRAILER!!!" else 0
        fields = [i + 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(n), 0]
        head = b"070701" + b"".join(b"%08X" % f for f in fields) + n
        out += head + b"\0" * (-len(head) % 4) + data + b"\0" * (-len(data) % 4)
    return out


TAR, CPIO = _tar(), _cpio()


def _valid(data: bytes) -> None:
    try:
        pack = parse_pack(data)
    except PackError as e:
        assert str(e) and "\n" not in str(e)
        return
    total = 0
    for name, blob in pack.files.items():
        assert name and not name.startswith("/") and ".." not in name.split("/")
        assert len(blob) <= MAX_MEMBER
        total += len(blob)
    assert total <= MAX_TOTAL
    for d in pack.dirs:
        assert not d.startswith("/") and ".." not in d.split("/")


def test_seeds_parse() -> None:
    for data in (TAR, CPIO):
        pack = parse_pack(data)
        assert pack.files == FILES
    # cpio(1) itself agrees with our seed
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=CPIO, capture_output=True).stdout
    assert listing.decode().split() == list(FILES)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    _valid(data)
    _valid(b"070701" + data)
    _valid(b"\0" * 257 + b"ustar" + data)


@FUZZ
@given(
    st.sampled_from([TAR, CPIO]),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
)
def test_flipped_bytes(seed: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for pos, val in flips:
        data[pos % len(data)] = val
    _valid(bytes(data))


@FUZZ
@given(st.sampled_from([TAR, CPIO]), st.integers(0, 1 << 16), st.binary(max_size=600))
def test_cut_and_spliced(seed: bytes, cut: int, tail: bytes) -> None:
    _valid(seed[: cut % len(seed)])
    _valid(seed[: cut % len(seed)] + tail)
