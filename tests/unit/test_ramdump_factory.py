# SPDX-License-Identifier: GPL-2.0-or-later
"""The raw-dump factory's bank layouts and load.cmm (vmcores/ramdump_set.py), read back
by the tool's own parser (rmem_inspect/formats/ramdump.py)."""

from __future__ import annotations

import pytest

from rmem_inspect.formats.ramdump import parse_load_cmm
from vmcores.ramdump_set import bank_layout, load_cmm

pytestmark = pytest.mark.unit

#: (RAM base, RAM size) of the factory's boards: arm64 1 and 4 GiB, arm 768 MiB, riscv64.
BOARDS = [(0x40000000, 1 << 30), (0x40000000, 4 << 30), (0x40000000, 768 << 20),
          (0x80000000, 1 << 30)]  # fmt: skip


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize(("base", "size"), BOARDS)
def test_bank_layout(base: int, size: int, index: int) -> None:
    banks = bank_layout(base, size, index)
    assert len(banks) == (3 if size > 1 << 30 else 2)
    # contiguous, the whole of RAM, page-aligned cuts that are no power of two
    assert banks[0].base == base and banks[-1].base + banks[-1].size == base + size
    for a, b in zip(banks, banks[1:], strict=False):
        assert a.base + a.size == b.base
        assert b.base % 4096 == 0 and (b.base - base) & (b.base - base - 1)
    assert all(b.size & (b.size - 1) for b in banks)
    assert len({b.file for b in banks}) == len(banks)
    assert all(b.file.startswith("DDRCS") and b.file.endswith(".BIN") for b in banks)
    if index % 2:  # through the kernel image, 2 MiB (+ 32 KiB on arm) into RAM
        assert base + 0x208000 < banks[1].base < base + (26 << 20)


@pytest.mark.parametrize(("base", "size"), BOARDS)
def test_load_cmm_reads_back(base: int, size: int) -> None:
    banks = bank_layout(base, size, 1)
    specs = parse_load_cmm(load_cmm(banks, "a test board"))
    assert [(s.path, s.paddr) for s in specs] == [(b.file, b.base) for b in banks]
