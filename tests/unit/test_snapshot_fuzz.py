# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fuzz the snapshot loader with hypothesis: whatever the text, ``Snapshot.loads``
raises :class:`~rmem_inspect.model.SnapshotError` with a message, or returns a
snapshot that round-trips and that the checks run on without raising. Inputs:
random text, random JSON, and the golden snapshots (taken from the real dumps)
cut short or mutated at random places.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect import checks
from rmem_inspect.model import Snapshot, SnapshotError

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=200, deadline=None, derandomize=True)
GOLDEN = Path(__file__).resolve().parent.parent / "golden"
GOLDEN_NAMES = ["6.1-overflow", "6.12-alloc-fail", "7.x-consumers"]


@functools.cache
def golden_text(name: str) -> str:
    return (GOLDEN / f"{name}.json").read_text()


def check(text: str) -> Snapshot | None:
    """The property: SnapshotError with a message, or a usable snapshot."""
    try:
        snap = Snapshot.loads(text)
    except SnapshotError as e:
        assert str(e)
        return None
    assert Snapshot.loads(snap.dumps()) == snap
    report = checks.run(snap)
    for f in report.findings:
        assert f.code in checks.CODES and f.severity in ("error", "warning", "info")
    return snap


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

#: Values likely to upset a checker: wrong types, out-of-range numbers, odd strings.
NASTY: st.SearchStrategy[Any] = st.sampled_from(
    [None, True, False, 0, -1, 1 << 64, -(1 << 63), 2**31, 0.5, "", "x" * 300, [], {}, [0, 0]]
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (dict keys and list indexes) into a JSON value."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:8]):
            out += _paths(v, prefix + (i,))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], kind: str, value: Any) -> Any:
    if not path:
        return value if kind == "replace" else doc
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if kind == "replace":
        parent[key] = value
    elif kind == "delete":
        del parent[key]
    elif kind == "unknown-key" and isinstance(parent, dict):
        parent[f"zz-{key}"] = value
    return doc


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    check(text)


@FUZZ
@given(JSON)
def test_random_json(value: Any) -> None:
    check(json.dumps(value))


@FUZZ
@given(st.sampled_from(GOLDEN_NAMES), st.integers(min_value=0, max_value=1 << 30))
def test_truncated_golden(name: str, cut: int) -> None:
    text = golden_text(name)
    cut %= len(text)
    assert check(text[:cut]) is None  # never a complete JSON object before the end


@FUZZ
@given(
    st.sampled_from(GOLDEN_NAMES),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=1 << 20),
            st.sampled_from(["replace", "delete", "unknown-key"]),
            NASTY | JSON,
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_golden(name: str, mutations: list[tuple[int, str, Any]]) -> None:
    doc = json.loads(golden_text(name))
    for pick, kind, value in mutations:
        paths = _paths(doc)
        doc = _mutate(doc, paths[pick % len(paths)], kind, value)
    check(json.dumps(doc))


def test_golden_snapshots_load() -> None:
    for name in GOLDEN_NAMES:
        assert check(golden_text(name)) is not None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
        ("[]", "not a JSON object"),
        ('{"schema": 99}', "schema 99"),
        ('{"schema": 1}', "missing key 'kernel'"),
        ('{"schema": 1, "kernel": {"release": "x", "arch": "arm64"}, "bogus": 1}', "unknown keys"),
        (
            '{"schema": 1, "kernel": {"release": "x", "arch": "arm64", "page_size": "4k"}}',
            "snapshot.kernel.page_size: expected an integer",
        ),
    ],
)
def test_rejected_with_a_message(text: str, why: str) -> None:
    with pytest.raises(SnapshotError, match=why):
        Snapshot.loads(text)
