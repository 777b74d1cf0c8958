# SPDX-License-Identifier: GPL-2.0-or-later
"""
The BTF index and its per-build-id cache: lookups through the index's packed
keys give what the section scans give; a serialised index is refused when
truncated, damaged or of another blob; the cache file is used only for its
build-id and blob, rewritten when foreign or truncated, not touched with caching
off, and the directory stays bounded. Hypothesis: any bytes given as an index
are refused with IndexMismatch or give the same lookups.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.collect import btf_cache
from rmem_inspect.formats.btf import Btf
from rmem_inspect.formats.btf_index import (
    IndexMismatch,
    blob_key,
    complete,
    pack_index,
    unpack_index,
)
from tests.unit.btf_blobs import sample_blob

pytestmark = pytest.mark.unit

NAMES = ["reserved_mem", "list_head", "memblock_flags", "u64", "phys_addr_t", "int", "char",
         "long unsigned int", "rmem_init", "u", "big", "double", "bits", "reserved_mem_ops",
         "nothing_of_that_name"]  # fmt: skip
ENUMERATORS = ["MEMBLOCK_NONE", "MEMBLOCK_NOMAP", "BIG_NEG", "BIG_HUGE", "NOT_AN_ENUMERATOR"]
SPACES = ["struct", "union", "enum", "typedef", "int", "float", "func"]


def _answers(btf: Btf) -> list[object]:
    out: list[object] = [btf.find(ns, n) for ns in SPACES for n in NAMES]
    out += [btf.find_enumerator(n) for n in ENUMERATORS]
    return out


@pytest.mark.parametrize("order", ["<", ">"])
def test_index_lookups_equal_the_scans(order: str) -> None:
    blob = sample_blob(order)
    scanned = Btf(blob)
    indexed = Btf(blob)
    complete(indexed.index, indexed.types_section, order)
    assert _answers(indexed) == _answers(scanned)
    assert any(_answers(scanned))  # the sample has these names


def test_serialised_index_round_trips_and_is_checked() -> None:
    blob = sample_blob()
    btf = Btf(blob)
    complete(btf.index, btf.types_section, "<")
    _answers(btf)  # the strings looked up travel with the index
    data = pack_index(btf.index, blob_key(blob))
    again = Btf(blob, index=unpack_index(data, blob_key(blob)))
    assert again.index.strings == btf.index.strings and again.index.strings
    assert _answers(again) == _answers(Btf(blob))
    with pytest.raises(IndexMismatch, match="truncated"):
        unpack_index(data[:-9], blob_key(blob))
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x40
    with pytest.raises(IndexMismatch, match="damaged"):
        unpack_index(bytes(damaged), blob_key(blob))
    other = sample_blob(">")
    with pytest.raises(IndexMismatch, match="another BTF blob"):
        unpack_index(data, blob_key(other))


@settings(max_examples=200, deadline=2000, derandomize=True)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=4000))
def test_garbage_index_is_refused(junk: bytes, cut: int) -> None:
    blob = sample_blob()
    btf = Btf(blob)
    complete(btf.index, btf.types_section, "<")
    _answers(btf)
    data = pack_index(btf.index, blob_key(blob))
    for candidate in (junk, data[:cut] + junk, junk + data[cut:]):
        try:
            index = unpack_index(candidate, blob_key(blob))
        except IndexMismatch:
            continue
        assert _answers(Btf(blob, index=index)) == _answers(Btf(blob))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "rmem-inspect" / "btf-index"


BUILD_ID = "ab" * 20


def test_cache_is_written_then_used(cache: Path) -> None:
    blob = sample_blob()
    btf, how = btf_cache.load_btf(blob, BUILD_ID)
    assert how.startswith("BTF index: built, cached in")
    first = _answers(btf)
    del btf  # written when done with
    btf_cache.flush()
    assert (cache / f"{BUILD_ID}.idx").exists()
    again, how = btf_cache.load_btf(blob, BUILD_ID)
    assert how.startswith("BTF index: cached for build-id")
    assert again.index.strings  # the names asked before: not searched again
    assert _answers(again) == first == _answers(Btf(blob))


def _load(blob: bytes, build_id: str) -> str:
    btf, how = btf_cache.load_btf(blob, build_id)
    _answers(btf)
    del btf
    btf_cache.flush()
    return how


def test_foreign_and_truncated_cache_files_are_ignored(cache: Path) -> None:
    blob = sample_blob()
    _load(blob, BUILD_ID)
    path = cache / f"{BUILD_ID}.idx"
    other = "cd" * 20
    os.replace(path, cache / f"{other}.idx")  # a file under the wrong build-id
    how = _load(blob, other)
    assert how.startswith("BTF index: built")
    data = path.read_bytes() if path.exists() else (cache / f"{other}.idx").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    how = _load(blob, BUILD_ID)
    assert how.startswith("BTF index: built, cached")
    how = _load(blob, BUILD_ID)
    assert how.startswith("BTF index: cached")
    # the same build-id with another blob (a corrupt dump, say): not used
    how = _load(sample_blob(">"), BUILD_ID)
    assert how.startswith("BTF index: built")


def test_no_cache_writes_nothing(cache: Path) -> None:
    token = btf_cache.ENABLED.set(False)
    try:
        _, how = btf_cache.load_btf(sample_blob(), BUILD_ID)
    finally:
        btf_cache.ENABLED.reset(token)
    assert how == "BTF index: built (cache off)" and not cache.exists()


def test_odd_build_ids_are_not_paths(cache: Path) -> None:
    _, how = btf_cache.load_btf(sample_blob(), "../../etc/passwd")
    assert not cache.exists() and how.startswith("BTF index: built")


def test_cache_directory_is_bounded(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(btf_cache, "MAX_FILES", 3)
    blob = sample_blob()
    for i in range(6):
        _load(blob, f"{i:040x}")
    assert len(list(cache.glob("*.idx"))) == 3
