# SPDX-License-Identifier: GPL-2.0-or-later
"""The /proc/kcore pieces of a real 6.12 boot in tests/unit/kcore612 (see its README)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KcoreFixture", "kcore_fixture"]

DIR = Path(__file__).resolve().parent / "kcore612"


@dataclass(frozen=True)
class KcoreFixture:
    head: bytes
    kallsyms: str
    release: str
    #: vaddr -> the page the board's dd cut there
    cuts: dict[int, bytes]

    def symbol(self, name: str) -> int:
        for line in self.kallsyms.splitlines():
            address, _t, sym = line.split()
            if sym == name:
                return int(address, 16)
        raise KeyError(name)


@functools.cache
def kcore_fixture() -> KcoreFixture:
    cuts = {
        int(p.name, 16): p.read_bytes()
        for p in DIR.iterdir()
        if len(p.name) == 16 and all(c in "0123456789abcdef" for c in p.name)
    }
    return KcoreFixture(
        head=(DIR / "kcore.head").read_bytes(),
        kallsyms=(DIR / "kallsyms").read_text(),
        release=(DIR / "uname").read_text().split()[0],
        cuts=cuts,
    )
