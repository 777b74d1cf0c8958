# SPDX-License-Identifier: GPL-2.0-or-later
"""
Kernel constants
----------------

Values the kernel compiles in that this tool needs to read or replay it, each with
the source that defines it, for every generation the tool supports (6.1, 6.12, 7.x).
"""

from __future__ import annotations

import enum

__all__ = [
    "MAX_RESERVED_REGIONS",
    "MemblockFlags",
]

#: Length of the static ``reserved_mem`` array (<= 6.11) and of the init-time
#: ``reserved_mem_array`` (6.12+): drivers/of/of_reserved_mem.c, 64 from 6.1 to 7.3.
MAX_RESERVED_REGIONS = 64


class MemblockFlags(enum.IntFlag):
    """``enum memblock_flags`` (include/linux/memblock.h). The values never moved: 6.1
    has NONE..DRIVER_MANAGED; 6.12 adds RSRV_NOINIT; 7.3 adds RSRV_KERN, KHO_SCRATCH
    and RSRV_HUGETLB. The collectors read the enum from the debug info or BTF when
    they can; these are the fallback and preflight's values."""

    MEMBLOCK_NONE = 0x0
    MEMBLOCK_HOTPLUG = 0x1
    MEMBLOCK_MIRROR = 0x2
    MEMBLOCK_NOMAP = 0x4
    MEMBLOCK_DRIVER_MANAGED = 0x8
    MEMBLOCK_RSRV_NOINIT = 0x10
    MEMBLOCK_RSRV_KERN = 0x20
    MEMBLOCK_KHO_SCRATCH = 0x40
    MEMBLOCK_RSRV_HUGETLB = 0x80
