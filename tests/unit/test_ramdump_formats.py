# SPDX-License-Identifier: GPL-2.0-or-later
"""
The raw RAM parsers (crash's FILE@PADDR list, Lauterbach load.cmm, Qualcomm's
dump_info.txt), on real-looking inputs and fuzzed with hypothesis: whatever the
text, they return banks or raise RamdumpFormatError, and a list written from banks
reads back as those banks.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.formats.ramdump import (
    BankSpec,
    RamdumpFormatError,
    check_overlaps,
    looks_like_bank_list,
    parse_bank_list,
    parse_dump_info,
    parse_load_cmm,
    parse_trace32_number,
)

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=300, deadline=None, derandomize=True)

#: A script as QPST writes one for a Snapdragon board (DDR in two chip selects plus
#: on-chip memories), with TRACE32's other spellings mixed in.
QCOM_CMM = """; This script loads the RAM dump
sys.cpu CORTEXA53
sys.up
d.load.binary DDRCS0_0.BIN 0x80000000 /noclear
D.LOAD.BINARY DDRCS1_0.BIN 0x880000000 /noclear   ; second chip select
data.load.binary "OCIMEM.BIN" A:0x14680000 /noclear
Data.Load.B CODERAM.BIN 0x0B000000--0x0B00FFFF /NoClear
d.load.binary C:\\dumps\\PIMEM.BIN 610000000. /skip 0x100
// not a load
print "done"
"""


def test_qualcomm_cmm():
    banks = parse_load_cmm(QCOM_CMM)
    assert [(b.path, b.paddr, b.size, b.offset) for b in banks] == [
        ("DDRCS0_0.BIN", 0x80000000, None, 0),
        ("DDRCS1_0.BIN", 0x880000000, None, 0),
        ("OCIMEM.BIN", 0x14680000, None, 0),
        ("CODERAM.BIN", 0x0B000000, 0x10000, 0),
        ("PIMEM.BIN", 610000000, None, 0x100),
    ]
    assert [b.line for b in banks] == [4, 5, 6, 7, 8]


def test_crash_bank_list():
    assert parse_bank_list("DDRCS0_0.BIN@0x80000000,DDRCS1_0.BIN@880000000") == [
        BankSpec("DDRCS0_0.BIN", 0x80000000),
        BankSpec("DDRCS1_0.BIN", 0x880000000),
    ]
    # crash reads PADDR with htoll(): hexadecimal even without 0x
    assert parse_bank_list("a@b@40000000")[0] == BankSpec("a@b", 0x40000000)
    assert looks_like_bank_list("x.bin@0x40000000") and not looks_like_bank_list("vmcore")
    for bad in ("x.bin", "x.bin@", "@0x10", "x@0x10,", "x@zz", "x@0x" + "f" * 17):
        with pytest.raises(RamdumpFormatError):
            parse_bank_list(bad)


def test_dump_info():
    text = (
        "ID  Base                Size        Description        File\n"
        "   1 0x0000000080000000          2147483648   DDR CS0 part0 Memo   DDRCS0_0.BIN\n"
        "   2 0x0000000014680000          180224   OCIMEM Memory        OCIMEM.BIN\n"
    )
    assert parse_dump_info(text) == [
        BankSpec("DDRCS0_0.BIN", 0x80000000, size=2147483648, line=2),
        BankSpec("OCIMEM.BIN", 0x14680000, size=180224, line=3),
    ]


def test_refusals_name_the_line():
    for text, needle in (
        ("d.load.binary ONLY.BIN\n", "line 1"),
        ("\n\nd.load.binary &dir/X.BIN 0x0\n", "line 3"),
        ('d.load.binary "X.BIN 0x0\n', "line 1"),
        ("d.load.binary X.BIN 0xnothex\n", "line 1"),
        ("d.load.binary X.BIN 0x20--0x10\n", "ends before"),
    ):
        with pytest.raises(RamdumpFormatError, match=needle):
            parse_load_cmm(text)
    assert parse_trace32_number("100.") == 100 and parse_trace32_number("100") == 0x100


def test_overlaps():
    check_overlaps([("a", 0, 0x1000), ("b", 0x1000, 0x1000)])
    with pytest.raises(RamdumpFormatError, match="a .* and b .* overlap"):
        check_overlaps([("b", 0xFFF, 0x10), ("a", 0, 0x1000)])


_chars = st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters='@,;"&/\\')
_names = st.text(_chars, min_size=1, max_size=20)
_addrs = st.integers(0, (1 << 64) - 1)


@FUZZ
@given(st.lists(st.tuples(_names, _addrs), min_size=1, max_size=8))
def test_bank_list_round_trip(banks):
    spec = ",".join(f"{n}@{a:#x}" for n, a in banks)
    assert [(b.path, b.paddr) for b in parse_bank_list(spec)] == banks


@FUZZ
@given(st.lists(st.tuples(_names, _addrs, st.booleans()), min_size=1, max_size=8))
def test_load_cmm_round_trip(banks):
    lines = [
        f"{'Data.LOAD.Binary' if upper else 'd.load.binary'} {n} {a:#x} /noclear"
        for n, a, upper in banks
    ]
    got = parse_load_cmm("\n".join(["; header", *lines]))
    assert [(b.path, b.paddr) for b in got] == [(n, a) for n, a, _ in banks]


@FUZZ
@given(st.text(max_size=400))
def test_bank_list_fuzz(text):
    try:
        for b in parse_bank_list(text):
            assert b.path and 0 <= b.paddr < 1 << 64
    except RamdumpFormatError:
        pass


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("dD.loadLOADbinaryBINARY 0x1fF-+/;\"&:\\\n.skipCA")),
               max_size=400))  # fmt: skip
def test_load_cmm_fuzz(text):
    try:
        for b in parse_load_cmm(text):
            assert b.path and 0 <= b.paddr < 1 << 64 and b.offset >= 0
            assert b.size is None or b.size > 0
    except RamdumpFormatError as e:
        assert "\n" not in str(e)


@FUZZ
@given(st.binary(max_size=600))
def test_scripts_fuzz_bytes(data):
    text = data.decode("latin-1")
    for parse in (parse_load_cmm, parse_dump_info):
        try:
            parse(text)
        except RamdumpFormatError:
            pass
