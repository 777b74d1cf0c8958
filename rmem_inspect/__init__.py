# SPDX-License-Identifier: GPL-2.0-or-later
"""
rmem_inspect
------------

Cross-check a Linux kernel's devicetree reserved-memory carveouts against what
the kernel actually tracks (``reserved_mem``), reserves (memblock) and hands to
devices (CMA, coherent pools), from a crash dump or a live kernel.
"""

__version__ = "0.1.0"
