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

__all__ = [
    "KERNEL_LAYOUT_HELP",
    "LAYOUTS",
    "LAYOUT_ALIASES",
    "Layout",
    "OpsLayout",
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


#: The three reserved_mem layouts, oldest first.
LAYOUTS = tuple(Layout)
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
    if version < (3, 15):
        return None
    if version <= (6, 11):
        return Layout.STATIC_ARRAY
    if version <= (7, 0):
        return Layout.DYNAMIC_ARRAY
    return Layout.NODE_OPS


class OpsLayout(enum.StrEnum):
    """What ``ReservedMemState.ops_layout`` says about ``struct reserved_mem_ops``."""

    #: ``device_init``/``device_release`` only (up to 7.0).
    DEVICE = "device"
    #: With the node_validate/node_fixup/node_init hooks (7.1+).
    NODE = "node"
    #: Not read: reserved_mem rebuilt from the kernel log (the sysfs/debugfs source).
    LOG = "log"
