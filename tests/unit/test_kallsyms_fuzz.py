# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fuzz the kallsyms reader with hypothesis on the real tables of each series:
truncated memory, absurd kallsyms_num_syms, listed addresses moved, markers,
offsets and sequence numbers out of range, a token index pointing anywhere
(a token table without its NUL) and random bytes: the reader raises KallsymsError
or answers, within a deadline (never a hang), and nothing else escapes.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.formats.kallsyms import Kallsyms, KallsymsError
from rmem_inspect.formats.proc_kallsyms import ProcKallsyms
from tests.unit.kallsyms_fixtures import SERIES, Fixture, load

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=150, deadline=3000, derandomize=True)


@functools.cache
def _fixture(series: str) -> Fixture:
    return load(series)


def _exercise(read: Callable[[int, int], bytes], fx: Fixture, listed: dict[str, int]) -> None:
    try:
        ks = Kallsyms(read, listed, fx.stext)
        for name, address, _ in fx.symbols[::97]:
            ks.lookup(name)
            ks.with_prefix(name[:3])
            ks.at_address(address)
        for i in range(0, min(ks.count, 4096), 61):
            ks.symbol(i)
    except KallsymsError as e:
        assert str(e) and "\n" not in str(e)


def _patched(fx: Fixture, where: int, data: bytes) -> Callable[[int, int], bytes]:
    image = bytearray(fx.image)
    image[where : where + len(data)] = data
    image = image[: len(fx.image)]

    def read(address: int, size: int) -> bytes:
        at = address - fx.base
        if at < 0 or at + size > len(image):
            raise ValueError("outside the image")
        return bytes(image[at : at + size])

    return read


series = st.sampled_from(list(SERIES))


@FUZZ
@given(series, st.integers(min_value=0, max_value=30000))
def test_truncated_memory(s: str, keep: int) -> None:
    fx = _fixture(s)

    def read(address: int, size: int) -> bytes:
        at = address - fx.base
        if at < 0 or at + size > keep:
            raise ValueError("truncated")
        return fx.image[at : at + size]

    _exercise(read, fx, fx.listed)


@FUZZ
@given(series, st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_absurd_counts(s: str, count: int) -> None:
    fx = _fixture(s)
    _exercise(_patched(fx, fx.listed["num_syms"] - fx.base, struct.pack("<I", count)), fx,
              fx.listed)  # fmt: skip


@FUZZ
@given(series, st.sampled_from(["names", "token_table", "token_index", "offsets", "num_syms"]),
       st.integers(min_value=-0x10000, max_value=0x10000))  # fmt: skip
def test_listed_addresses_moved(s: str, which: str, delta: int) -> None:
    fx = _fixture(s)
    listed = dict(fx.listed)
    listed[which] += delta
    _exercise(fx.read, fx, listed)


@FUZZ
@given(series, st.sampled_from(["markers", "seqs_of_names", "offsets", "token_index", "names"]),
       st.integers(min_value=0, max_value=4000), st.binary(min_size=1, max_size=16))  # fmt: skip
def test_arrays_overwritten(s: str, which: str, at: int, data: bytes) -> None:
    fx = _fixture(s)
    ks = Kallsyms(fx.read, fx.listed, fx.stext)
    start = ks.at[which] - fx.base
    _exercise(_patched(fx, start + at, data), fx, fx.listed)


@FUZZ
@given(series, st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=1, max_size=8),
       st.integers(min_value=0, max_value=255))  # fmt: skip
def test_token_index_points_anywhere(s: str, values: list[int], first: int) -> None:
    fx = _fixture(s)
    where = fx.listed["token_index"] - fx.base + 2 * first
    data = struct.pack(f"<{len(values)}H", *values)[: 512 - 2 * first]
    _exercise(_patched(fx, where, data), fx, fx.listed)


@FUZZ
@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=1 << 64))
def test_proc_kallsyms_garbage(text: bytes, address: int) -> None:
    try:
        pk = ProcKallsyms(text)
        pk.lookup("a")
        pk.with_prefix("a")
        pk.at_address(address)
    except KallsymsError as e:
        assert str(e) and "\n" not in str(e)
