# SPDX-License-Identifier: GPL-2.0-or-later
"""
checks.LogIndex against a brute-force reading of the rule it implements: a log
line speaks of a region when one of its tokens (a maximal run of node-name
characters), as is or without trailing ",.-:", is the region's name. Lines and
names are drawn from node-name characters, the punctuation the kernel prints
around names, and a non-ASCII letter, so names end in punctuation, sit inside
quotes and parentheses, prefix longer tokens and share lines.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.checks import LogIndex
from rmem_inspect.model import LogLine

pytestmark = pytest.mark.unit

_RUN = re.compile(r"[\w@,.\-+]+")

name_chars = st.sampled_from(list("ab0@,.-+_é"))
names = st.lists(st.text(name_chars, min_size=1, max_size=4), max_size=6, unique=True)
line_parts = st.one_of(
    name_chars, st.sampled_from([" ", "'", ":", "(", ")", "=", "/", "\t", "\n", "[", "]"])
)


def _reference(texts: list[str], known: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for text in texts:
        toks = _RUN.findall(text)
        cands = set(toks) | {t.rstrip(",.-:") for t in toks}
        for name in sorted(cands & known):
            out.setdefault(name, []).append(text)
    return out


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Names, and lines that mix free text with those names (and near misses)
    between the quotes, brackets and punctuation the kernel prints around them."""
    # names that end in ",.-" take another path: draw them in one log of four
    odd = draw(st.integers(0, 3)) == 0
    if odd:
        known = draw(names)
    else:
        known = draw(st.lists(st.builds(str.__add__, st.text(name_chars, max_size=3),
            st.sampled_from(list("ab0@+_é"))), max_size=6, unique=True))  # fmt: skip
    if draw(st.booleans()):
        known = [n.replace("é", "e") for n in known]  # an ASCII log, mostly
    name = st.sampled_from(known) if known else st.nothing()
    mention = st.builds(
        lambda p, n, q: p + n + q,
        st.sampled_from(["", "'", "node ", "(", "skip '", "x"]),
        st.one_of(name, st.text(name_chars, min_size=1, max_size=4)),
        st.sampled_from(
            ["", "'", ",", ".", "-", ":", ": x", "' y", "...", ".,", "-, z", ",-.", "-.-", "x"]
        ),
    )
    piece = st.one_of(st.text(line_parts, max_size=12), mention)
    if not any("é" in n for n in known) and draw(st.booleans()):
        piece = piece.map(lambda t: t.replace("é", "e"))
    texts = draw(st.lists(st.lists(piece, max_size=4).map("".join), max_size=8))
    return known, texts


@settings(max_examples=500, deadline=None)
@given(logs())
def test_lines_are_attributed_as_the_rule_says(log: tuple[list[str], list[str]]) -> None:
    known, texts = log
    index = LogIndex([LogLine(t) for t in texts], known)
    assert index.by_region == _reference(texts, set(known))


def test_trailing_punctuation_and_prefixes() -> None:
    texts = [
        "OF: reserved mem: 0x50000000..0x5fffffff (256 MiB) nomap non-reusable vpu@50000000",
        "failed to allocate memory for node 'dsp@0'",
        "regions vpu@50000000, dsp@0.",
        "vpu@500000001 is another node",
        "then dsp@0..., and vpu@50000000-,",
    ]
    index = LogIndex([LogLine(t) for t in texts], ["vpu@50000000", "dsp@0", "dsp"])
    assert index.by_region == {
        "vpu@50000000": [texts[0], texts[2], texts[4]],
        "dsp@0": [texts[1], texts[2], texts[4]],
    }


def test_names_ending_in_punctuation_match_as_is_and_trimmed() -> None:
    texts = ["pool- is full", "pool is full", "see pool-, then pool."]
    index = LogIndex([LogLine(t) for t in texts], ["pool-", "pool"])
    # "pool-," trims to "pool" (all of ",.-" go), so only the first line names "pool-"
    assert index.by_region == {"pool-": [texts[0]], "pool": texts}


def test_non_ascii_line() -> None:
    texts = ["réserve: pool@1 ok", "pool@1é is not pool@1"]
    index = LogIndex([LogLine(t) for t in texts], ["pool@1"])
    assert index.by_region == {"pool@1": texts}
