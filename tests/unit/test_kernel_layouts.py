# SPDX-License-Identifier: GPL-2.0-or-later
"""rmem_inspect.kernel.layouts: one record per generation, the detector and the
version mapping read from the same records."""

from __future__ import annotations

import pytest

from rmem_inspect.kernel.layouts import (
    LAYOUT_RECORDS,
    Layout,
    OpsLayout,
    detect_layout,
    kernel_layout,
)

pytestmark = pytest.mark.unit


def test_one_record_per_layout_oldest_first() -> None:
    assert list(LAYOUT_RECORDS) == list(Layout)
    starts = [r.since for r in LAYOUT_RECORDS.values()]
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("dynamic", "hooks", "want"),
    [
        (False, False, Layout.STATIC_ARRAY),
        (False, True, Layout.STATIC_ARRAY),  # node hooks never came without the dynamic array
        (True, False, Layout.DYNAMIC_ARRAY),
        (True, True, Layout.NODE_OPS),
    ],
)
def test_detect_layout(dynamic: bool, hooks: bool, want: Layout) -> None:
    assert detect_layout(dynamic_array=dynamic, node_hooks=hooks) is want


def test_what_the_records_say_about_7x() -> None:
    """7.1 dropped fdt_node and brought the node hooks; 7.2 made count 0 at the init
    array legitimate. The snapshot records a 7.x kernel as the dynamic array with
    node ops."""
    r = LAYOUT_RECORDS[Layout.NODE_OPS]
    assert (r.since, r.array, r.ops_layout, r.has_fdt_node) == (
        (7, 1),
        Layout.DYNAMIC_ARRAY,
        OpsLayout.NODE,
        False,
    )
    assert any("7.2" in n and "init array" in n for n in r.notes)
    assert LAYOUT_RECORDS[Layout.DYNAMIC_ARRAY].has_fdt_node


@pytest.mark.parametrize(
    ("version", "want"),
    [
        ("3.14", None),
        ("3.15", Layout.STATIC_ARRAY),
        ("6.11.9", Layout.STATIC_ARRAY),
        ("6.12", Layout.DYNAMIC_ARRAY),
        ("7.0.1-arm64", Layout.DYNAMIC_ARRAY),
        ("7.1", Layout.NODE_OPS),
        ("7.3.4+deb13-cloud-arm64", Layout.NODE_OPS),
        ("6.1", Layout.STATIC_ARRAY),
        ("7.x", Layout.NODE_OPS),
        ("not a kernel", None),
    ],
)
def test_kernel_layout_from_the_records(version: str, want: Layout | None) -> None:
    assert kernel_layout(version) == want
