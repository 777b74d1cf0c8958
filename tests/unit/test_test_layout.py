# SPDX-License-Identifier: GPL-2.0-or-later
"""The test tree's own shape: what a full ``pytest`` run needs that running one tier
at a time does not show."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parents[1]


def test_module_basenames_are_unique() -> None:
    """The test directories have no ``__init__.py``, so pytest's default import mode
    ("prepend") imports each test file under its bare file name: two files of one name
    in different tiers make the whole run stop at collection ("import file mismatch"),
    though each tier run on its own passes. (Helper modules are imported by their
    dotted path, ``tests.live.guest``, so only the collected ``test_*.py`` count.)"""
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(TESTS.rglob("test_*.py")):
        where[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not clashes, f"test modules sharing a file name: {clashes}"
