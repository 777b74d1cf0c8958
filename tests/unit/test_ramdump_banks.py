# SPDX-License-Identifier: GPL-2.0-or-later
"""
Bank files as raw RAM (rmem_inspect.collect.ramdump): the windowed, hole-skipping
searches find exactly what a plain search of the bytes finds, wherever the hits fall
(window edges, holes, a bank that starts mid-page of its file), and reads never cross
a bank's end.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.collect import ramdump
from rmem_inspect.collect.ramdump import find_vmcoreinfo, open_banks, page_starts

pytestmark = pytest.mark.unit

NEEDLE = b"Linux version 9.9.9-test ("
SIZE = 1 << 20


def _bank(path: Path, hits: list[int], holes: bool) -> bytes:
    data = bytearray(SIZE)
    for at in hits:
        data[at : at + len(NEEDLE)] = NEEDLE
    with open(path, "wb") as f:
        if holes:  # sparse: only 4 KiB pages holding a hit are written
            f.truncate(SIZE)
            for page in sorted(
                {a // 4096 for a in hits} | {(a + len(NEEDLE)) // 4096 for a in hits}
            ):
                f.seek(page * 4096)
                f.write(data[page * 4096 : (page + 1) * 4096])
        else:
            f.write(data)
    return bytes(data)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(0, SIZE - len(NEEDLE)), max_size=6),
    st.sampled_from([4096, 65536, 1 << 20]),
    st.booleans(),
    st.integers(0, 3),
)
def test_find_equals_plain_search(tmp_path_factory, hits, window, holes, skip_pages):
    path = tmp_path_factory.mktemp("bank") / "DDR.BIN"
    data = _bank(path, hits, holes)
    want = []
    at = data.find(NEEDLE)
    while at >= 0:
        want.append(at)
        at = data.find(NEEDLE, at + 1)
    old = ramdump.WINDOW
    ramdump.WINDOW = window
    try:
        ram = open_banks(f"{path}@0x80000000")
        try:
            assert ram.find(NEEDLE, 100) == [0x80000000 + a for a in want]
        finally:
            ram.close()
    finally:
        ramdump.WINDOW = old


def test_page_starts_and_vmcoreinfo(tmp_path: Path):
    data = bytearray(SIZE)
    text = b"OSRELEASE=9.9.9-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffff800081892000\n"
    data[0x3000 : 0x3000 + len(text)] = text  # a page start
    data[0x5010 : 0x5010 + len(text)] = text  # not one: the VMCOREINFO note's copy
    path = tmp_path / "DDR.BIN"
    path.write_bytes(b"\x00" * 0x800 + bytes(data))  # the bank starts 0x800 into its file
    cmm = tmp_path / "load.cmm"
    cmm.write_text("d.load.binary DDR.BIN 0x40000000 /skip 0x800\n")
    ram = open_banks(str(cmm))
    try:
        assert page_starts(ram, b"OSRELEASE=") == [0x40003000]
        ((phys, fields, _text),) = find_vmcoreinfo(ram)
        assert phys == 0x40003000 and fields["OSRELEASE"] == "9.9.9-test"
        assert ram.read(0x40000000 + SIZE - 4, 8) is None  # never across the end
        assert ram.page_dumped(0x40000) and not ram.page_dumped(0x40000 + SIZE // 4096)
    finally:
        ram.close()
    assert os.path.exists(path)
