# SPDX-License-Identifier: GPL-2.0-or-later
"""
output.text.tabulate() takes shortcuts (no wcwidth on ASCII, its own layout of
"simple" text tables) that must never change a byte of what tabulate prints:
checked on the region tables of every golden snapshot, on random tables, and on
cells the shortcuts must leave to tabulate (wide, control and escape characters).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import tabulate as tabulate_module
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect import checks
from rmem_inspect.model import Snapshot

render = importlib.import_module("rmem_inspect.output.text")

pytestmark = pytest.mark.unit

GOLDEN = sorted((Path(__file__).parent.parent / "golden").glob("*.json"))
HEADERS = ["name", "base", "size", "kind", "flags", "compatible", "tracked", "reserved", "verdict"]


def _both(rows: list[list[str]], headers: list[str], **kwargs: Any) -> tuple[str, str]:
    return (
        render.tabulate(rows, headers, **kwargs),
        tabulate_module.tabulate(rows, headers, **kwargs),
    )


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_region_tables_of_real_snapshots(path: Path) -> None:
    report = checks.run(Snapshot.loads(path.read_text()))
    rows = render._region_rows(report)
    if not rows:
        pytest.skip("no regions")
    for fmt in ("simple", "github"):
        ours, theirs = _both(rows, HEADERS, tablefmt=fmt, disable_numparse=True)
        assert ours == theirs
    # the summary above the tables: sentences, so number parsing changes nothing
    header = [list(r) for r in render._header(report)]
    ours, theirs = _both(header, [], tablefmt="plain", disable_numparse=True)
    assert ours == theirs == tabulate_module.tabulate(header, tablefmt="plain")
    ours, theirs = _both(
        render._finding_rows(report.findings) or [["-", "-", "-", "-"]],
        ["severity", "code", "region", "message"],
        tablefmt="simple",
        maxcolwidths=[None, None, 24, 90],
    )
    assert ours == theirs


printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=5).flatmap(
        lambda n: st.tuples(
            st.lists(printable, min_size=n, max_size=n),
            st.lists(st.lists(printable, min_size=n, max_size=n), min_size=1, max_size=6),
        )
    )
)
def test_random_ascii_tables(table: tuple[list[str], list[list[str]]]) -> None:
    headers, rows = table
    for fmt in ("simple", "github", "plain"):
        ours, theirs = _both(rows, headers, tablefmt=fmt, disable_numparse=True)
        assert ours == theirs
        ours, theirs = _both(rows, [], tablefmt=fmt, disable_numparse=True)
        assert ours == theirs
    ours, theirs = _both(rows, headers, tablefmt="simple")  # number parsing on
    assert ours == theirs


def test_min_padding_is_tabulates() -> None:
    assert render._MIN_PADDING == tabulate_module.MIN_PADDING


@pytest.mark.parametrize(
    "cell",
    ["pool@5000", "r\u00e9serve", "\u5185\u5b58", "\x1b[31mred\x1b[0m", "two\nlines", "a\tb", ""],
)
def test_cells_left_to_tabulate(cell: str) -> None:
    rows = [[cell, "x"], ["longer name here", cell]]
    ours, theirs = _both(rows, ["name", "v"], tablefmt="simple", disable_numparse=True)
    assert ours == theirs
