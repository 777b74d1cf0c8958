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


MEMBERS = [
    "sys/firmware/fdt",
    "sys/firmware/devicetree/base/reserved-memory/pool@0/reg",
    "sys/firmware/devicetree/base/reserved-memory/pool@0/size",
    "sys/firmware/devicetree/base/#address-cells",
    "sys/kernel/debug/memblock/memory",
    "sys/kernel/debug/memblock/reserved",
    "sys/kernel/notes",
    "proc/iomem",
    "proc/kallsyms",
    "proc/cmdline",
    "rmem/dmesg",
    "rmem/uname",
    "rmem/pagesize",
    "rmem/missing",
]


_HEX = st.integers(0, (1 << 64) - 1).map(lambda v: f"0x{v:016x}")
#: Lines shaped like the real members' (memblock, iomem, the kernel log, kallsyms), with
#: random numbers: the parsers get past their first regex.
_LINE = st.one_of(
    st.builds(lambda i, a, b: f"{i:4d}: {a}..{b} 0 NONE", st.integers(0, 99), _HEX, _HEX),
    st.builds(lambda a, b: f"{a[2:]}-{b[2:]} : reserved", _HEX, _HEX),
    st.builds(
        lambda a, b, n: f"[    0.000000] OF: reserved mem: {a}..{b} (4 KiB) nomap non-reusable {n}",
        _HEX, _HEX, st.text("abcdefgh@0123456789,", min_size=1, max_size=12),
    ),
    st.builds(lambda n: f"[    0.000000] OF: reserved mem: node {n} compatible matching fail",
              st.text("abc@01", min_size=1, max_size=8)),
    st.just("ffff800080000000 T fdt_scan_reserved_mem_reg_nodes"),
    st.just("ffff800080000000 T fdt_scan_reserved_mem"),
    st.text(max_size=80),
)  # fmt: skip
_CONTENT = st.one_of(
    st.binary(max_size=300),
    st.lists(_LINE, max_size=12).map(lambda lines: "\n".join(lines).encode()),
)


@FUZZ
@given(st.dictionaries(st.sampled_from(MEMBERS), _CONTENT, max_size=len(MEMBERS)))
def test_any_member_contents(members: dict[str, bytes]) -> None:
    """Whatever a pack's members hold, the snapshot is built and the checks run: a
    board's files are data, never a reason to raise."""
    from rmem_inspect import checks
    from rmem_inspect.collect.board_pack import snapshot_of_pack
    from rmem_inspect.formats.pack import Pack

    pack = Pack(files={"rmem/pack": b"1\n", **members}, kind="tar")
    for name in members:
        parts = name.split("/")
        pack.dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    snap = snapshot_of_pack(pack, {"kind": "board-pack"})
    checks.run(snap)
