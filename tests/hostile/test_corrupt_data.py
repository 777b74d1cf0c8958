# SPDX-License-Identifier: GPL-2.0-or-later
"""
Corrupt kernel data: byte-patched copies of real dumps. Each patch is placed
from the debug info (symbol address -> physical via kimage_voffset -> file
offset via PT_LOAD) and must come out as a finding with evidence, never a crash.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.conftest import (
    DumpLayout,
    drop_pages,
    file_state,
    manifest_for,
    patch,
    run_cli,
    sparse_copy,
)

pytestmark = pytest.mark.vmcore

#: Not a canonical arm64 address: no page table can map it.
WILD = 0xDEAD4EAD00000000


@dataclass
class Symbols:
    """Where the patched variables live, read from the real dump's debug info."""

    vmcore: Path
    vmlinux: Path
    layout: DumpLayout
    addresses: dict[str, int]
    values: dict[str, int]
    offsets: dict[str, int]
    #: Physical addresses of the dynamic reserved_mem array and the root DT node.
    phys: dict[str, int]


def _symbols(series: str) -> Symbols:
    from drgn import offsetof
    from drgn.helpers.linux.mm import virt_to_phys

    from rmem_inspect.collect.program import open_vmcore

    m = manifest_for(series, "baseline")
    prog = open_vmcore(str(m.path("vmcore")), str(m.path("vmlinux")))
    addresses: dict[str, int] = {}
    values: dict[str, int] = {}
    for name, file in (
        ("reserved_mem", "of_reserved_mem.c"),
        ("reserved_mem_count", "of_reserved_mem.c"),
        ("reserved_mem_array", "of_reserved_mem.c"),
        ("total_reserved_mem_cnt", "of_reserved_mem.c"),
        ("memblock_memory", "memblock.c"),
        ("memblock", "memblock.c"),
    ):
        try:
            obj = prog.variable(name, file)
        except LookupError:
            continue
        addresses[name] = obj.address_
        if obj.type_.kind.name in ("INT", "POINTER"):
            values[name] = obj.value_()
    rm_type = prog.type("struct reserved_mem")
    offsets = {
        "reserved_mem.name": offsetof(rm_type, "name"),
        "memblock.reserved.cnt": offsetof(prog.type("struct memblock"), "reserved.cnt"),
        "memblock.reserved.max": offsetof(prog.type("struct memblock"), "reserved.max"),
    }
    of_root = prog["of_root"]
    values["of_root"] = of_root.value_()
    phys = {"of_root": virt_to_phys(of_root).value_()}
    rm = prog.variable("reserved_mem", "of_reserved_mem.c")
    if rm.type_.kind.name == "POINTER":
        phys["reserved_mem"] = virt_to_phys(rm).value_()
    del prog
    layout = DumpLayout(m.path("vmcore"))
    return Symbols(m.path("vmcore"), m.path("vmlinux"), layout, addresses, values, offsets, phys)


_SYMBOLS: dict[str, Symbols] = {}


def symbols(series: str) -> Symbols:
    if series not in _SYMBOLS:
        _SYMBOLS[series] = _symbols(series)
    return _SYMBOLS[series]


_REPORTS: dict[str, tuple[int, dict[str, Any]]] = {}


def patched_report(
    case: str,
    tmp_path_factory: pytest.TempPathFactory,
    sym: Symbols,
    patches: Sequence[tuple[int, bytes, bytes | None]],
    holes: list[tuple[int, int]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Copy the dump, apply (va of a kernel-image variable, new bytes, expected old bytes)
    and take ``holes`` (physical ranges) out of its PT_LOADs, run ``report --format json``
    on the copy; return (exit status, report). Cached per case for the module."""
    if case in _REPORTS:
        return _REPORTS[case]
    copy = sparse_copy(sym.vmcore, tmp_path_factory.mktemp(case) / "vmcore")
    for va, data, expect_old in patches:
        old = patch(copy, sym.layout.image_va_to_offset(va), data)
        if expect_old is not None:
            assert old == expect_old, (hex(va), old.hex(), expect_old.hex())
    if holes:
        drop_pages(copy, DumpLayout(copy), holes)
    before = file_state(copy)
    res = run_cli("report", "--vmcore", copy, "--vmlinux", sym.vmlinux, "--format", "json")
    assert file_state(copy) == before
    assert "Traceback" not in res.stderr, res.stderr
    assert res.stderr == ""
    copy.unlink()
    _REPORTS[case] = (res.returncode, json.loads(res.stdout))
    return _REPORTS[case]


def findings(report: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["code"] == code]


def run_case(case: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any]]:
    """Build one corrupt dump of the corpus and report on it."""
    q = struct.pack
    if case == "count-above-capacity":
        sym = symbols("6.1")
        count = sym.values["reserved_mem_count"]
        p = [(sym.addresses["reserved_mem_count"], q("<i", 1000), q("<i", count))]
        return patched_report(case, tmp_path_factory, sym, p)
    if case == "count-negative":
        sym = symbols("6.12")
        count = sym.values["reserved_mem_count"]
        p = [(sym.addresses["reserved_mem_count"], q("<i", -7), q("<i", count))]
        return patched_report(case, tmp_path_factory, sym, p)
    if case in ("pointer-wild", "pointer-init-array"):
        sym = symbols("6.12")
        to = WILD if case == "pointer-wild" else sym.addresses["reserved_mem_array"]
        old = q("<Q", sym.values["reserved_mem"])
        p = [(sym.addresses["reserved_mem"], q("<Q", to), old)]
        return patched_report(case, tmp_path_factory, sym, p)
    if case == "name-unreadable":
        sym = symbols("6.1")
        va = sym.addresses["reserved_mem"] + sym.offsets["reserved_mem.name"]
        return patched_report(case, tmp_path_factory, sym, [(va, q("<Q", WILD), None)])
    if case == "memblock-discarded":
        sym = symbols("6.1")
        old = q("<Q", sym.values["memblock_memory"])
        p = [(sym.addresses["memblock_memory"], q("<Q", 0), old)]
        return patched_report(case, tmp_path_factory, sym, p)
    if case == "memblock-count":
        sym = symbols("6.12")
        va = sym.addresses["memblock"] + sym.offsets["memblock.reserved.cnt"]
        return patched_report(case, tmp_path_factory, sym, [(va, q("<Q", 0x7FFFFFFFFFFF), None)])
    if case == "pages-missing":
        sym = symbols("6.12")
        holes = [(p & ~(PAGE - 1), (p & ~(PAGE - 1)) + PAGE) for p in sym.phys.values()]
        return patched_report(case, tmp_path_factory, sym, [], holes)
    raise AssertionError(case)


PAGE = 4096


def test_static_count_above_capacity(tmp_path_factory: pytest.TempPathFactory) -> None:
    status, report = run_case("count-above-capacity", tmp_path_factory)
    assert status == 1
    assert report["kernel"]["count"] == 1000 and report["kernel"]["capacity"] == 64
    (f,) = findings(report, "RMEM-COUNT-CORRUPT")
    assert f["severity"] == "error"
    assert "reserved_mem_count 1000 is outside 0..64" in f["evidence"]["errors"]
    assert f["evidence"]["count"] == 1000 and f["evidence"]["capacity"] == 64
    # The loop over the kernel's count was capped at the array's 64 entries.
    assert "capped" in f["message"]
    assert not findings(report, "RMEM-DROPPED")


def test_negative_count(tmp_path_factory: pytest.TempPathFactory) -> None:
    status, report = run_case("count-negative", tmp_path_factory)
    cap = symbols("6.12").values["total_reserved_mem_cnt"]
    assert status == 1
    assert report["kernel"]["count"] == -7
    (f,) = findings(report, "RMEM-COUNT-CORRUPT")
    assert f"reserved_mem_count -7 is outside 0..{cap}" in f["evidence"]["errors"]
    # Nothing is read from a negative count.
    assert not any(r["tracked"] for r in report["regions"])


def test_reserved_mem_pointer_wild(tmp_path_factory: pytest.TempPathFactory) -> None:
    status, report = run_case("pointer-wild", tmp_path_factory)
    assert status == 1
    corrupt = findings(report, "RMEM-COUNT-CORRUPT")
    # Two findings: the entries do not read, and the pointer is outside memblock.reserved.
    (f,) = [x for x in corrupt if "errors" in x["evidence"]]
    assert any("the pointer is wild" in x["message"] for x in corrupt)
    count = symbols("6.12").values["reserved_mem_count"]
    assert f["evidence"]["array"] == f"{WILD:#x}"
    assert f"{count} entries unreadable" in f["evidence"]["errors"]
    assert len(f["evidence"]["unreadable"]) == count
    assert f["evidence"]["unreadable"][0].startswith(f"[0] at {WILD:#x}")


def test_reserved_mem_pointer_into_freed_init_array(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    status, report = run_case("pointer-init-array", tmp_path_factory)
    init = symbols("6.12").addresses["reserved_mem_array"]
    assert status == 1
    codes = {f["code"] for f in report["findings"]}
    assert {"RMEM-ARRAY-NOT-DYNAMIC", "RMEM-TEMP-ARRAY-LIVE", "RMEM-COUNT-CORRUPT"} <= codes
    live = findings(report, "RMEM-TEMP-ARRAY-LIVE")
    assert all(x["evidence"]["init_array"] == f"{init:#x}" for x in live)
    # arm64 unmaps the init section after boot: the entries fault.
    assert all(x["evidence"]["init_array_readable"] is False for x in live)
    (corrupt,) = findings(report, "RMEM-COUNT-CORRUPT")
    assert corrupt["evidence"]["unreadable"][0].startswith(f"[0] at {init:#x}")


def test_region_name_unreadable(tmp_path_factory: pytest.TempPathFactory) -> None:
    status, report = run_case("name-unreadable", tmp_path_factory)
    entry0 = symbols("6.1").addresses["reserved_mem"]  # the static array itself
    assert status == 1
    (f,) = findings(report, "RMEM-COUNT-CORRUPT")
    assert "1 entries unreadable" in f["evidence"]["errors"]
    assert f["evidence"]["unreadable"] == [f"[0] at {entry0:#x}: name pointer {WILD:#x} unreadable"]


def test_memblock_discarded(tmp_path_factory: pytest.TempPathFactory) -> None:
    # memblock_discard() (kernels without CONFIG_ARCH_KEEP_MEMBLOCK) frees the arrays and
    # sets memblock_memory to NULL: that is what this patch reproduces on arm64.
    status, report = run_case("memblock-discarded", tmp_path_factory)
    assert status == 1
    (f,) = findings(report, "RMEM-MEMBLOCK-UNAVAILABLE")
    assert "memblock_memory is NULL" in f["message"]
    # No memblock-based verdict comes from arrays that cannot be trusted.
    codes = {x["code"] for x in report["findings"]}
    assert not codes & {"RMEM-NOT-RESERVED", "RMEM-NOMAP-MISSING", "RMEM-UNTRACKED"}
    assert all(r.get("reserved") is None for r in report["regions"])


def test_memblock_count_above_max(tmp_path_factory: pytest.TempPathFactory) -> None:
    status, report = run_case("memblock-count", tmp_path_factory)
    assert status == 1
    (f,) = findings(report, "RMEM-MEMBLOCK-UNAVAILABLE")
    assert f"cnt {0x7FFFFFFFFFFF} exceeds max" in f["message"]
    codes = {x["code"] for x in report["findings"]}
    assert not codes & {"RMEM-NOT-RESERVED", "RMEM-NOMAP-MISSING", "RMEM-UNTRACKED"}


def test_pages_missing(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The pages holding the dynamic reserved_mem array and the root devicetree node are
    absent from the dump (see docs/hostile-input.md: emulated, no arm64 makedumpfile)."""
    status, report = run_case("pages-missing", tmp_path_factory)
    sym = symbols("6.12")
    assert status == 1
    # absent pages are data the dump does not hold, not corruption
    assert not findings(report, "RMEM-COUNT-CORRUPT")
    (f,) = findings(report, "RMEM-ARRAY-NOT-DUMPED")
    count = sym.values["reserved_mem_count"]
    assert f"{count} of {count} reserved_mem entries are not in the dump" in f["message"]
    assert "is in no memory segment of the dump" in f["message"]
    assert all("could not find physical memory segment" in u for u in f["evidence"]["unreadable"])
    (missing,) = [
        x for x in findings(report, "RMEM-SOURCE-MISSING") if x["evidence"]["source"] == "of_root"
    ]
    assert f"node at {sym.values['of_root']:#x} unreadable" in missing["message"]
    # The boot FDT (elsewhere in memory) still reads: the DT regions are all known.
    assert {r["name"] for r in report["regions"]} >= {"firmware@50000000", "linux,cma"}


CORRUPT_ARRAY = [
    "count-negative",
    "pointer-wild",
    "pointer-init-array",
    "name-unreadable",
]


@pytest.mark.parametrize("case", CORRUPT_ARRAY + ["pages-missing"])
def test_no_verdicts_from_a_corrupt_array(
    case: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A reserved_mem that did not read must not turn into "dropped", "never allocated",
    "untracked" or "orphan" verdicts about regions: that would be a lie."""
    status, report = run_case(case, tmp_path_factory)
    assert status == 1
    codes = {f["code"] for f in report["findings"]}
    assert "RMEM-COUNT-CORRUPT" in codes or (
        case == "pages-missing" and "RMEM-ARRAY-NOT-DUMPED" in codes
    )
    lies = {"RMEM-DROPPED", "RMEM-UNALLOCATED", "RMEM-UNTRACKED", "RMEM-CMA-MISSING"}
    assert not codes & (lies | {"RMEM-CONSUMER-ORPHAN"}), sorted(codes)
