# SPDX-License-Identifier: GPL-2.0-or-later
"""
Kernel layouts
--------------

The generations of ``struct reserved_mem`` and its array that this tool tells apart,
one :class:`Layout` each. The collectors detect the layout from the debug info or
BTF (members and symbols, never the version string); preflight picks one from a
kernel version number (:func:`kernel_layout`). The values are the names the JSON
snapshot, the reports and ``--kernel`` use.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "KERNEL_LAYOUT_HELP",
    "LAYOUTS",
    "LAYOUT_ALIASES",
    "LAYOUT_RECORDS",
    "Layout",
    "LayoutRecord",
    "OpsLayout",
    "detect_layout",
    "kernel_layout",
]


class Layout(enum.StrEnum):
    """A generation of drivers/of/of_reserved_mem.c's ``reserved_mem`` array."""

    #: ``struct reserved_mem reserved_mem[MAX_RESERVED_REGIONS]`` (3.15 .. 6.11).
    STATIC_ARRAY = "static-array"
    #: 6.12 .. 7.0: ``reserved_mem`` points at an array sized by
    #: ``total_reserved_mem_cnt`` once the page allocator can give it; the
    #: static ``reserved_mem_array`` serves until then (commit 00c9a452a235 "of:
    #: reserved_mem: Add code to dynamically allocate reserved_mem array").
    DYNAMIC_ARRAY = "dynamic-array"
    #: 7.1+: the dynamic array, ``fdt_node`` dropped from struct reserved_mem and
    #: ``reserved_mem_ops`` with node_validate/node_fixup/node_init hooks.
    NODE_OPS = "node-ops"


class OpsLayout(enum.StrEnum):
    """What ``ReservedMemState.ops_layout`` says about ``struct reserved_mem_ops``."""

    #: ``device_init``/``device_release`` only (up to 7.0).
    DEVICE = "device"
    #: With the node_validate/node_fixup/node_init hooks (7.1+).
    NODE = "node"
    #: Not read: reserved_mem rebuilt from the kernel log (the sysfs/debugfs source).
    LOG = "log"


#: The three reserved_mem layouts, oldest first.
LAYOUTS = tuple(Layout)


@dataclass(frozen=True)
class LayoutRecord:
    """One generation: when it began, what tells it apart in a kernel, and what the
    snapshot records for it."""

    layout: Layout
    #: First kernel version (X, Y) with it.
    since: tuple[int, int]
    #: The change that introduced it.
    introduced_by: str
    #: What identifies it in the debug info, BTF or kallsyms (:func:`detect_layout`).
    evidence: str
    #: ``ReservedMemState.layout`` of a kernel of it: the array's shape.
    array: Layout
    #: ``ReservedMemState.ops_layout``: the shape of struct reserved_mem_ops.
    ops_layout: OpsLayout
    #: Whether struct reserved_mem has ``fdt_node``.
    has_fdt_node: bool
    #: Rules of later kernels in the same generation that the checks and preflight know.
    notes: tuple[str, ...] = ()


#: Every generation, oldest first.
LAYOUT_RECORDS: dict[Layout, LayoutRecord] = {
    r.layout: r
    for r in (
        LayoutRecord(
            Layout.STATIC_ARRAY,
            (3, 15),
            "drivers/of/of_reserved_mem.c (v3.15): struct reserved_mem "
            "reserved_mem[MAX_RESERVED_REGIONS]",
            "reserved_mem is an array; no reserved_mem_array symbol",
            Layout.STATIC_ARRAY,
            OpsLayout.DEVICE,
            True,
        ),
        LayoutRecord(
            Layout.DYNAMIC_ARRAY,
            (6, 12),
            'commit 00c9a452a235 "of: reserved_mem: Add code to dynamically allocate '
            'reserved_mem array"',
            "reserved_mem is a pointer and reserved_mem_array (the init-time array) exists",
            Layout.DYNAMIC_ARRAY,
            OpsLayout.DEVICE,
            True,
        ),
        LayoutRecord(
            Layout.NODE_OPS,
            (7, 1),
            "the 7.1 devicetree pull: RESERVEDMEM_OF_DECLARE takes a reserved_mem_ops with "
            "node_validate/node_fixup/node_init; fdt_node dropped from struct reserved_mem",
            "the dynamic array's evidence, and struct reserved_mem_ops has node_init",
            Layout.DYNAMIC_ARRAY,
            OpsLayout.NODE,
            False,
            (
                "7.2: with no valid entry total_reserved_mem_cnt is 0 and no array is "
                "allocated, so count 0 with reserved_mem still at the init array is "
                "legitimate (on 6.12-7.1 the same state after a failed allocation is a "
                "latent use-after-free)",
                "7.2: a failed alloc_reserved_mem_array() sets reserved_mem_count to 0",
                "7.2: only the first <base size> of a multi-entry reg is used",
            ),
        ),
    )
}


def detect_layout(*, dynamic_array: bool, node_hooks: bool) -> Layout:
    """
    The generation of a kernel from what its debug info, BTF or kallsyms show: a
    pointer ``reserved_mem`` with ``reserved_mem_array`` beside it is the dynamic
    array (commit 00c9a452a235, 6.12); ``node_init`` in struct reserved_mem_ops is
    7.1's node hooks. Each collector finds the two facts its own way; the rule is here.
    """
    if not dynamic_array:
        return Layout.STATIC_ARRAY
    return Layout.NODE_OPS if node_hooks else Layout.DYNAMIC_ARRAY


#: Kernel series names that stand for a layout (the factory's series).
LAYOUT_ALIASES = {
    "6.1": Layout.STATIC_ARRAY,
    "6.12": Layout.DYNAMIC_ARRAY,
    "7.x": Layout.NODE_OPS,
}
#: How a kernel version number maps to a layout, for help texts.
KERNEL_LAYOUT_HELP = (
    "a kernel version X.Y[.Z] (a uname -r release works too): up to 6.11 static-array "
    "(replayed with 6.1's code), 6.12 to 7.0 dynamic-array (6.12's), 7.1 and later node-ops "
    "(7.3's, with the 7.2 count rules), also written 7.x; or a layout name: " + ", ".join(LAYOUTS)
)

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:[-+~][\w.+~-]*)?")


def kernel_layout(name: str) -> Layout | None:
    """
    A layout name, series alias or kernel version number -> one of :data:`LAYOUTS`.

    ``X.Y[.Z]`` (with any ``-``/``+``/``~`` suffix, as in ``uname -r``) maps by the
    commits that changed drivers/of/of_reserved_mem.c: the dynamic array is v6.12
    (commit 00c9a452a235 "of: reserved_mem: Add code to dynamically allocate
    reserved_mem array"); 7.1 dropped ``fdt_node`` and gave ``reserved_mem_ops`` the
    node_validate/node_fixup/node_init hooks. Returns None for anything else, and
    for kernels before 3.15, which have no drivers/of/of_reserved_mem.c at all.
    """
    if name in LAYOUT_ALIASES:
        return LAYOUT_ALIASES[name]
    if name in LAYOUTS:
        return Layout(name)
    m = _VERSION.fullmatch(name.strip())
    if m is None:
        return None
    version = (int(m.group(1)), int(m.group(2)))
    found = None
    for record in LAYOUT_RECORDS.values():  # oldest first: the last that began by then
        if record.since <= version:
            found = record.layout
    return found
