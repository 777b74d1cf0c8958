# SPDX-License-Identifier: GPL-2.0-or-later
"""
The kallsyms reader against drgn's own kallsyms loader on the real dump of each
series: every symbol (name, address, size) in address order, every name of a
sample found by the binary search over kallsyms_seqs_of_names, the symbol at
addresses across the kernel, the symbols of a name prefix (the OF tables'); and
the committed unit-test fixtures (tests/unit/kallsyms_fixtures.py) are what cutting
the dumps gives today.
"""

from __future__ import annotations

import random

import drgn
import pytest
from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms

from rmem_inspect.collect.kallsyms_finder import install_kallsyms, symbols_with_prefix
from tests.dumps import manifest_for
from tests.unit.kallsyms_fixtures import SERIES, Fixture, cut, load

pytestmark = pytest.mark.vmcore


@pytest.mark.parametrize("series", list(SERIES))
def test_fixture_is_the_dumps_cut(series: str) -> None:
    manifest_for(series, SERIES[series][1])  # a missing dump fails, with the way to build it
    assert Fixture(cut(series)).__dict__ == load(series).__dict__


@pytest.mark.parametrize("series", list(SERIES))
def test_every_symbol_equals_drgns_loader(series: str) -> None:
    m = manifest_for(series, "baseline")
    prog = drgn.Program()
    prog.set_core_dump(str(m.path("vmcore")))
    note = install_kallsyms(prog)
    assert "seqs_of_names" in note
    theirs = load_vmlinux_kallsyms(prog)
    every = theirs(prog, None, None, False)
    ours = prog.symbols()
    assert [(s.name, s.address, s.size, s.binding, s.kind) for s in ours] == [
        (s.name, s.address, s.size, s.binding, s.kind) for s in every
    ]
    rng = random.Random(25)
    for s in rng.sample(every, 300):
        want = sorted((t.address, t.size) for t in theirs(prog, s.name, None, False))
        assert sorted((t.address, t.size) for t in prog.symbols(s.name)) == want, s.name
    lo, hi = every[0].address, every[-1].address
    for _ in range(2000):
        address = rng.randrange(lo, hi)
        want_one = theirs(prog, None, address, True)
        try:
            got = prog.symbol(address)
        except LookupError:
            assert not want_one, hex(address)
            continue
        assert want_one and (got.name, got.address) == (want_one[0].name, want_one[0].address)


@pytest.mark.parametrize("series", [s for s in SERIES if s != "6.1"])
def test_names_by_prefix_equal_drgns_loader(series: str) -> None:
    """The prefix search (collect/rmem_handlers.py: the ``__of_table_`` symbols) finds
    exactly what filtering drgn's full list finds, on the whole table of a real dump
    (6.1 lists no data symbols: no ``__of_table_`` to find)."""
    m = manifest_for(series, "baseline")
    prog = drgn.Program()
    prog.set_core_dump(str(m.path("vmcore")))
    install_kallsyms(prog)
    every = load_vmlinux_kallsyms(prog)(prog, None, None, False)
    rng = random.Random(26)
    prefixes = ["__of_table_", "__reservedmem_of", "rmem_", "__", "zzz_none"]
    prefixes += [s.name[:4] for s in rng.sample(every, 20)]
    for prefix in prefixes:
        want = sorted((s.name, s.address, s.size) for s in every if s.name.startswith(prefix))
        got = sorted((s.name, s.address, s.size) for s in symbols_with_prefix(prog, prefix))
        assert got == want, prefix
    assert any(s.name == "__of_table_cma" for s in symbols_with_prefix(prog, "__of_table_"))
