# SPDX-License-Identifier: GPL-2.0-or-later
"""rmem_inspect.kernel.messages: each format round-trips through its parser, and each
parser's literal (the checks' cheap pre-filter) is in every line it matches."""

from __future__ import annotations

import pytest

from rmem_inspect.kernel import messages
from rmem_inspect.kernel.arch import ARCHES

pytestmark = pytest.mark.unit


def test_alloc_failed_round_trips() -> None:
    line = messages.RMEM_PREFIX + messages.alloc_failed("pool9", 64 << 20)
    assert line == "OF: reserved mem: failed to allocate memory for node 'pool9': size 64 MiB"
    m = messages.ALLOC_FAILED.search(line)
    assert m is not None and m.group(1) == "pool9"
    assert messages.LOG_LITERALS["alloc_failed"] in line


def test_match_fail_round_trips() -> None:
    line = messages.RMEM_PREFIX + messages.match_fail("linux,cma")
    for pat in (messages.MATCH_FAIL, messages.MATCH_FAIL_LINE):
        m = pat.search(line)
        assert m is not None and m.group(1) == "linux,cma"
    assert messages.LOG_LITERALS["match_fail"] in line


def test_mem_limit_round_trips() -> None:
    line = messages.mem_limit(768 << 20)
    assert line == "Memory limited to 768MB"
    m = messages.MEM_LIMIT.search(line)
    assert m is not None and int(m.group(1)) << 20 == 768 << 20


@pytest.mark.parametrize("nomap", [False, True])
@pytest.mark.parametrize("reusable", [False, True])
def test_region_line_round_trips(nomap: bool, reusable: bool) -> None:
    base, size = 0x6F900000, 1 << 20
    line = messages.RMEM_PREFIX + messages.region_line(base, size, nomap, reusable, "pool0")
    m = messages.REGION_LINE.search(line)
    assert m is not None
    assert int(m.group(1), 16) == base and int(m.group(2), 16) == base + size - 1
    assert int(m.group(3)) == size >> 10
    assert m.group(4) == ("nomap" if nomap else "map")
    assert m.group(5) == ("reusable" if reusable else "non-reusable")
    assert m.group(6) == "pool0"


def test_every_pattern_has_a_literal() -> None:
    assert messages.LOG_PATTERNS.keys() == messages.LOG_LITERALS.keys()


def test_arm64_has_the_preflight_alignments() -> None:
    arm64 = ARCHES["arm64"]
    assert (arm64.smp_cache_bytes, arm64.page_size, arm64.cma_min_alignment_bytes) == (
        64,
        4096,
        2 << 20,
    )


def test_every_line_a_pattern_matches_holds_its_literal() -> None:
    """The log index looks for a pattern only in lines holding its literal: on every
    kernel log line of every golden snapshot, a match without the literal would be a
    line the checks miss."""
    from tests.unit.test_golden import GOLDEN, load

    assert messages.LOG_PATTERNS.keys() == messages.LOG_LITERALS.keys()
    matched = set()
    for path in sorted(GOLDEN.glob("*.json")):
        series, scenario = path.stem.split("-", 1)
        for line in load(series, scenario).log or []:
            for kind, pattern in messages.LOG_PATTERNS.items():
                if pattern.search(line.text):
                    assert messages.LOG_LITERALS[kind] in line.text, (kind, line.text)
                    matched.add(kind)
    # the factory's scenarios make the kernel print most of them
    assert {"not_enough", "alloc_failed", "overlap", "unsupported"} <= matched
