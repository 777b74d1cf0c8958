# SPDX-License-Identifier: GPL-2.0-or-later
"""
The kallsyms reader on real tables of each series (6.1, 6.12, 7.x: fixtures cut
from the factory dumps, tests/unit/kallsyms_fixtures.py), against the symbols
drgn's own kallsyms loader decoded from the same dumps: every symbol by index,
every name by the binary search over kallsyms_seqs_of_names, every address; and
the /proc/kallsyms reader on text written from the same symbols.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Callable

import pytest

from rmem_inspect.formats.kallsyms import (
    LAYOUTS,
    Kallsyms,
    KallsymsError,
    locate,
)
from rmem_inspect.formats.proc_kallsyms import ProcKallsyms
from tests.unit.kallsyms_fixtures import SERIES, Fixture, load

pytestmark = pytest.mark.unit


@pytest.fixture(params=list(SERIES), scope="module")
def fixture(request: pytest.FixtureRequest) -> Fixture:
    return load(request.param)


def _reader(fx: Fixture) -> Kallsyms:
    return Kallsyms(fx.read, fx.listed, fx.stext)


def test_layout_is_the_generations(fixture: Fixture) -> None:
    ks = _reader(fixture)
    assert ks.layout.name == fixture.layout
    assert ks.count == len(fixture.symbols)
    # the unlisted arrays were found where scripts/kallsyms.c put them
    placed = [ks.at[a] for a in ks.layout.order]
    assert placed == sorted(placed)


def test_every_symbol_by_index_equals_drgns(fixture: Fixture) -> None:
    ks = _reader(fixture)
    got = [(s.name, s.address, s.size) for s in ks]
    assert got == fixture.symbols


def test_every_name_by_binary_search(fixture: Fixture) -> None:
    ks = _reader(fixture)
    by_name = collections.defaultdict(list)
    for name, address, size in fixture.symbols:
        by_name[name].append((address, size))
    for name, want in by_name.items():
        assert sorted((s.address, s.size) for s in ks.lookup(name)) == sorted(want), name
    assert ks.lookup("no_such_symbol_in_any_kernel") == []
    # a lookup reads a few blocks of names, not the table
    read, names_size = _bytes_read(fixture, lambda ks: ks.lookup(fixture.symbols[-1][0]))
    assert 0 < read < names_size


def _bytes_read(fx: Fixture, search: Callable[[Kallsyms], object]) -> tuple[int, int]:
    """(bytes a fresh reader reads for ``search``, the size of kallsyms_names)."""
    read: list[int] = []

    def counting(address: int, size: int) -> bytes:
        read.append(size)
        return fx.read(address, size)

    fresh = Kallsyms(counting, fx.listed, fx.stext)
    read.clear()
    search(fresh)
    return sum(read), fresh.at["markers"] - fresh.at["names"]


def _prefixes(fx: Fixture) -> list[str]:
    """Prefixes to search: the OF tables' one (the handlers collector's), some names'
    first letters, a whole name, one that sorts after every name, one nothing has."""
    names = sorted({n for n, _a, _s in fx.symbols})
    return ["__of_table_", "__", names[0][:3], names[len(names) // 2][:5], names[-1],
            names[-1] + "~", "no_such_prefix_in_any_kernel"]  # fmt: skip


def test_names_by_prefix(fixture: Fixture) -> None:
    ks = _reader(fixture)
    for prefix in _prefixes(fixture):
        want = sorted(s for s in fixture.symbols if s[0].startswith(prefix))
        got = sorted((s.name, s.address, s.size) for s in ks.with_prefix(prefix))
        assert got == want, prefix
    # a prefix search reads a few blocks of names, not the table
    read, names_size = _bytes_read(fixture, lambda ks: ks.with_prefix("__of_table_"))
    assert 0 < read < names_size


def test_every_address(fixture: Fixture) -> None:
    ks = _reader(fixture)
    for name, address, size in fixture.symbols:
        hit = ks.at_address(address + size // 2)
        if size:
            assert hit is not None and (hit.name, hit.address) == (name, address)
    first = fixture.symbols[0][1]
    assert ks.at_address(first - 1) is None


def test_stext_must_match_vmcoreinfo(fixture: Fixture) -> None:
    with pytest.raises(KallsymsError, match="_stext"):
        Kallsyms(fixture.read, fixture.listed, fixture.stext + 4)


def test_arrays_out_of_order_are_refused(fixture: Fixture) -> None:
    listed = dict(fixture.listed)
    listed["names"], listed["token_table"] = listed["token_table"], listed["names"]
    with pytest.raises(KallsymsError, match="no order scripts/kallsyms.c writes"):
        Kallsyms(fixture.read, listed, fixture.stext)


def test_an_unknown_array_set_is_refused() -> None:
    listed = {"names": 0x1000, "num_syms": 0x800, "token_table": 0x2000, "token_index": 0x3000}
    with pytest.raises(KallsymsError):
        locate(listed, 10)
    assert {x.name for x in LAYOUTS} == {"6.1", "6.12", "7.x"}


def test_faulting_memory_is_one_error(fixture: Fixture) -> None:
    def read(address: int, size: int) -> bytes:
        if address == fixture.listed["token_index"]:
            raise OSError("page not in the dump")
        return fixture.read(address, size)

    with pytest.raises(KallsymsError, match="cannot read kallsyms at"):
        Kallsyms(read, fixture.listed, fixture.stext)


def test_a_token_without_its_nul_is_refused(fixture: Fixture) -> None:
    index_at = fixture.listed["token_index"] - fixture.base
    image = bytearray(fixture.image)
    size = fixture.listed["token_index"] - fixture.listed["token_table"]
    image[index_at : index_at + 2] = struct.pack("<H", size + 7)

    def read(address: int, n: int) -> bytes:
        return bytes(image[address - fixture.base : address - fixture.base + n])

    with pytest.raises(KallsymsError, match="token 0"):
        Kallsyms(read, fixture.listed, fixture.stext)


def _proc_text(fx: Fixture) -> bytes:
    lines = [f"{a:016x} T {n}\n" for n, a, _ in fx.symbols]
    lines.append(f"{fx.symbols[-1][1] + 0x1000:016x} t helper\t[some_module]\n")
    return "".join(lines).encode()


def test_proc_kallsyms(fixture: Fixture) -> None:
    pk = ProcKallsyms(_proc_text(fixture))
    by_name = collections.defaultdict(list)
    for name, address, size in fixture.symbols:
        by_name[name].append((address, size))
    for name, want in list(by_name.items())[:200]:
        assert [(s.address, s.size) for s in pk.lookup(name)] == want, name
    assert pk.lookup("helper") == []  # module symbols are left out, as drgn does
    for name, address, size in fixture.symbols[::7]:
        hit = pk.at_address(address + size // 2)
        if size:
            assert hit is not None and (hit.name, hit.address) == (name, address)
    assert [(s.name, s.address, s.size) for s in pk] == fixture.symbols


def test_proc_kallsyms_by_prefix(fixture: Fixture) -> None:
    pk = ProcKallsyms(_proc_text(fixture))
    for prefix in _prefixes(fixture):
        want = [s for s in fixture.symbols if s[0].startswith(prefix)]
        assert [(s.name, s.address, s.size) for s in pk.with_prefix(prefix)] == want, prefix
    assert pk.with_prefix("help") == []  # a module's symbol, left out as lookup() does


def test_proc_kallsyms_refuses_garbage() -> None:
    with pytest.raises(KallsymsError):
        ProcKallsyms(b"")
    pk = ProcKallsyms(b"ffff0000 T a\nnot a line at all\n")
    with pytest.raises(KallsymsError):
        pk.at_address(0xFFFF0000)
