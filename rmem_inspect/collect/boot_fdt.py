# SPDX-License-Identifier: GPL-2.0-or-later
"""
boot_fdt
--------

The flattened devicetree the kernel booted with (``initial_boot_params``),
read from kernel memory and parsed with our own FDT reader. Reserved-memory
region names in ``reserved_mem`` point into this blob, and it is what the
early scan saw, before any overlay.
"""

from __future__ import annotations

from drgn import FaultError, Program

from rmem_inspect.formats.devicetree import decode_tree
from rmem_inspect.formats.fdt import FdtError, header_total_size, parse_fdt
from rmem_inspect.model import DtInfo

__all__ = ["MAX_FDT_BYTES", "read_boot_fdt"]

MAX_FDT_BYTES = 64 << 20


def read_boot_fdt(prog: Program, errors: list[str]) -> DtInfo | None:
    """Decode the boot FDT; None (with a reason in ``errors``) if unavailable."""
    try:
        address = prog["initial_boot_params"].value_()
    except (LookupError, FaultError) as e:
        errors.append(f"initial_boot_params unreadable: {e}")
        return None
    if not address:
        errors.append("initial_boot_params is NULL")
        return None
    try:
        total = header_total_size(prog.read(address, 40), max_size=MAX_FDT_BYTES)
        blob = prog.read(address, total)
        parsed = parse_fdt(blob)
    except FaultError as e:
        errors.append(f"boot FDT at {address:#x} unreadable: {e}")
        return None
    except FdtError as e:
        errors.append(f"boot FDT at {address:#x} is corrupt: {e}")
        return None
    info = decode_tree(parsed.root, "fdt")
    info.address = address
    info.total_size = total
    info.mem_reserve = list(parsed.mem_reserve)
    return info
