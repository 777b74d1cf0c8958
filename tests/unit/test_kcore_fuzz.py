# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fuzz the /proc/kcore head parser with hypothesis: whatever the bytes (a real
head from a guest, truncated or with bytes flipped), it raises KcoreError or
returns segments, and file_ranges() of any range raises nothing but KcoreError.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.formats.kcore import KcoreError, file_ranges, parse_kcore_head
from tests.unit.kcore_fixture import kcore_fixture

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=300, deadline=2000, derandomize=True)


def check(data: bytes, vaddr: int, length: int) -> None:
    try:
        head = parse_kcore_head(data)
    except KcoreError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert len(head.segments) <= 4096
    try:
        pieces = file_ranges(head, vaddr, length)
    except KcoreError:
        return
    assert sum(n for _v, _o, n in pieces) == length


@FUZZ
@given(st.binary(max_size=512), st.integers(0, 2**64 - 1), st.integers(0, 1 << 20))
def test_any_bytes(data: bytes, vaddr: int, length: int) -> None:
    check(data, vaddr, length)


@FUZZ
@given(st.data())
def test_real_head_mutated(data: st.DataObject) -> None:
    head = bytearray(kcore_fixture().head)
    for _ in range(data.draw(st.integers(0, 8))):
        i = data.draw(st.integers(0, len(head) - 1))
        head[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(head)))
    seg = parse_kcore_head(kcore_fixture().head).segments
    vaddr = data.draw(st.sampled_from([s.vaddr for s in seg] + [0, 2**64 - 4096]))
    check(bytes(head[:cut]), vaddr, data.draw(st.integers(0, 1 << 22)))
