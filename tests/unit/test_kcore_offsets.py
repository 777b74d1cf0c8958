# SPDX-License-Identifier: GPL-2.0-or-later
"""
The kcore offset computation on a real 6.12 boot's data (tests/unit/kcore612):
kallsyms addresses and /proc/kcore's program headers give the file offsets the
second round's ``dd`` reads; the page the board cut at the computed offset holds
``init_uts_ns`` with the release ``uname -r`` printed, so the offset was right.
"""

from __future__ import annotations

import re

import pytest

from rmem_inspect.board_script import cut_script
from rmem_inspect.collect.kcore_pack import PAGE, kallsyms_symbols
from rmem_inspect.formats.kcore import KcoreError, file_ranges, parse_kcore_head
from tests.unit.kcore_fixture import kcore_fixture

pytestmark = pytest.mark.unit

#: struct new_utsname (include/uapi/linux/utsname.h): six char[65] fields, release the third.
UTS_LEN = 65


def test_text_segment_is_the_kernel_image() -> None:
    """fs/proc/kcore.c's KCORE_TEXT entry spans _text.._end (kallsyms, independently)."""
    fx = kcore_fixture()
    head = parse_kcore_head(fx.head)
    text, end = fx.symbol("_text"), fx.symbol("_end")
    seg = head.segment(text)
    assert seg is not None and seg.vaddr == text and seg.vaddr + seg.size >= end
    # the physical side: __pa_symbol(_text) is also in a KCORE_RAM (linear-map) segment
    assert head.virtual(seg.paddr) is not None


def test_vmcoreinfo_note_names_the_release() -> None:
    fx = kcore_fixture()
    info = parse_kcore_head(fx.head).vmcoreinfo
    assert info is not None
    assert f"OSRELEASE={fx.release}".encode() in info.splitlines()


def test_offset_of_init_uts_ns_cut_by_the_board() -> None:
    fx = kcore_fixture()
    head = parse_kcore_head(fx.head)
    uts = fx.symbol("init_uts_ns")
    page = uts - uts % PAGE
    [(vaddr, offset, length)] = file_ranges(head, page, PAGE)
    assert (vaddr, length) == (page, PAGE) and offset % PAGE == 0
    # the script for that round reads exactly there
    script = cut_script(2, [(vaddr, offset, length)])
    assert f"    cut {page:016x} {offset} 4096 1\n" in script
    data = fx.cuts[page]
    at = uts - page
    fields = [data[at + i * UTS_LEN : at + (i + 1) * UTS_LEN].split(b"\0")[0] for i in range(6)]
    # init_uts_ns.name is the first member since 5.11 (kref gone); sysname, nodename, release
    assert fields[0] == b"Linux" and fields[2].decode() == fx.release


def test_range_outside_kcore() -> None:
    head = parse_kcore_head(kcore_fixture().head)
    with pytest.raises(KcoreError, match="in no /proc/kcore segment"):
        file_ranges(head, 0x1000, PAGE)


def test_ranges_across_segments() -> None:
    """A range over two adjacent segments is cut in two pieces, each at its offset."""
    head = parse_kcore_head(kcore_fixture().head)
    ordered = sorted(head.segments, key=lambda s: s.vaddr)
    pairs = [
        (a, b) for a, b in zip(ordered, ordered[1:], strict=False) if a.vaddr + a.size == b.vaddr
    ]
    if not pairs:
        pytest.skip("this boot's kcore has no adjacent segments")
    a, b = pairs[0]
    pieces = file_ranges(head, b.vaddr - PAGE, 2 * PAGE)
    assert pieces == [(b.vaddr - PAGE, a.offset + a.size - PAGE, PAGE), (b.vaddr, b.offset, PAGE)]


def test_kallsyms_symbols() -> None:
    fx = kcore_fixture()
    syms = {s.name: s for s in kallsyms_symbols(fx.kallsyms + "ffff000000000000 t x [mod]\n")}
    assert "x" not in syms  # module symbols are left out
    assert syms["init_uts_ns"].address == fx.symbol("init_uts_ns")
    # size: up to the next address in the file
    assert syms["memblock"].size == fx.symbol("init_uts_ns") - fx.symbol("memblock")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", fx.release)
