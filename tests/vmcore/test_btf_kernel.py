# SPDX-License-Identifier: GPL-2.0-or-later
"""
No vmlinux: every factory dump of the kernels whose kallsyms lists data symbols
(6.12 and 7.x) read with kallsyms + the kernel's BTF gives the same snapshot, so
the same regions, findings and kernel summary, as with the -dbg vmlinux; the
BTF layouts and the globals' addresses equal the DWARF ones; 6.1 (no
CONFIG_KALLSYMS_ALL) is refused in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import drgn
import pytest

from rmem_inspect import checks
from rmem_inspect.collect.kernel_btf import CACHE_KEY, DECLARATIONS, KernelSymbols
from rmem_inspect.collect.program import open_vmcore
from rmem_inspect.collect.snapshot import inspect
from rmem_inspect.errors import InputError
from tests.conftest import MATRIX
from tests.vmcore.conftest import DumpData, manifest_for

pytestmark = pytest.mark.vmcore

BTF_MATRIX = [(series, scenario) for series, scenario in MATRIX if series != "6.1"]
BTF_IDS = [f"{series}-{scenario}" for series, scenario in BTF_MATRIX]

#: The structs the collectors and the drgn helpers they call read.
STRUCTS = [
    "reserved_mem", "reserved_mem_ops", "rmem_assigned_device", "memblock", "memblock_type",
    "memblock_region", "device_node", "property", "cma", "device", "kobject", "kset",
    "list_head", "printk_ringbuffer", "prb_desc_ring", "prb_desc", "prb_data_ring",
    "printk_info", "dma_coherent_mem", "io_tlb_mem", "uts_namespace", "new_utsname", "page",
    "mem_section", "mm_struct",
]  # fmt: skip


def _without_source(snapshot_json: dict[str, Any]) -> dict[str, Any]:
    out = dict(snapshot_json)
    out.pop("source")
    return out


@pytest.mark.parametrize("data", BTF_MATRIX, ids=BTF_IDS, indirect=True)
def test_no_vmlinux_snapshot_equals_the_vmlinux_one(data: DumpData) -> None:
    prog = open_vmcore(str(data.manifest.path("vmcore")), types="btf")
    snap = inspect(prog, source={"kind": "vmcore"})
    assert snap.source["debug_info"] == "types from the kernel's BTF, symbols from kallsyms"
    # The two reserved_mem_count statics were told apart, and the report says how.
    evidence = " ".join(snap.source["symbol_evidence"])
    assert "reserved_mem_count: kallsyms has 2" in evidence and "of_fdt_crc32" in evidence
    assert _without_source(snap.to_json()) == _without_source(data.snapshot.to_json())
    mine, theirs = checks.run(snap), checks.run(data.snapshot)
    assert [(f.code, f.region, f.severity) for f in mine.findings] == [
        (f.code, f.region, f.severity) for f in theirs.findings
    ]
    assert mine.skipped == theirs.skipped == {}
    assert mine.exit_status() == theirs.exit_status()


def _layout(tp: drgn.Type) -> list[tuple[Any, ...]]:
    """Members of a struct (one level): name, offset, bit field size, member kind and size."""
    out = []
    for m in tp.members or ():
        mt = m.type
        while mt.kind == drgn.TypeKind.TYPEDEF:
            mt = mt.type
        size = drgn.sizeof(mt) if mt.kind != drgn.TypeKind.FUNCTION and mt.is_complete() else None
        out.append((m.name, m.bit_offset, m.bit_field_size, mt.kind, size))
    return out


@pytest.mark.parametrize("series", ["6.12", "7.x"])
def test_btf_layouts_and_addresses_equal_dwarf(series: str) -> None:
    m = manifest_for(series, "baseline")
    dwarf = open_vmcore(str(m.path("vmcore")), str(m.path("vmlinux")), types="dwarf")
    btf = open_vmcore(str(m.path("vmcore")), types="btf")
    info = btf.cache[CACHE_KEY]
    assert isinstance(info, KernelSymbols) and info.btf_types > 100_000
    for name in STRUCTS:
        a, b = dwarf.type(f"struct {name}"), btf.type(f"struct {name}")
        assert (a.size, _layout(a)) == (b.size, _layout(b)), name
    flags_a, flags_b = dwarf.type("enum memblock_flags"), btf.type("enum memblock_flags")
    assert [(e.name, e.value) for e in flags_a.enumerators or ()] == [
        (e.name, e.value) for e in flags_b.enumerators or ()
    ]
    for const in ("PG_reserved", "desc_committed", "desc_finalized", "MEMBLOCK_NOMAP"):
        assert dwarf.constant(const).value_() == btf.constant(const).value_(), const
    # Every declared global sits where DWARF says, with a type of the same size.
    for name, decl in DECLARATIONS.items():
        try:
            a_obj = dwarf.variable(name, os.path.basename(decl.file))
        except LookupError:
            continue  # not in this kernel
        b_obj = btf.variable(name, os.path.basename(decl.file))
        assert (b_obj.address_, drgn.sizeof(b_obj)) == (a_obj.address_, drgn.sizeof(a_obj)), name
    of_count = dwarf.variable("reserved_mem_count", "of_reserved_mem.c").address_
    assert info.chosen["reserved_mem_count"] == of_count
    assert btf["reserved_mem"].type_.kind == dwarf["reserved_mem"].type_.kind


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rmem_inspect", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_cli_without_a_vmlinux_says_where_types_came_from(tmp_path: Any) -> None:
    m = manifest_for("7.x", "alloc-fail")
    # an empty cache: the factory's vmlinux is not found, so auto takes kallsyms+BTF
    env = {"RMEM_INSPECT_CACHE": str(tmp_path), "RMEM_INSPECT_DEBUG_DIRS": ""}
    auto = _cli("report", "--vmcore", str(m.path("vmcore")), env=env)
    full = _cli("report", "--vmcore", str(m.path("vmcore")), "--vmlinux", str(m.path("vmlinux")))
    assert "types from the kernel's BTF, symbols from kallsyms" in auto.stdout
    assert "kallsyms" not in full.stdout.split("Regions")[0]
    assert auto.returncode == full.returncode == 1
    assert auto.stdout.split("Regions")[1] == full.stdout.split("Regions")[1]
    forced = _cli("check", "--vmcore", str(m.path("vmcore")), "--types", "dwarf", env=env)
    assert forced.returncode == 2 and forced.stderr.count("\n") == 1
    assert "no vmlinux with debug info found" in forced.stderr


@pytest.mark.parametrize("scenario", ["baseline", "overflow"])
def test_6_1_without_a_vmlinux_is_refused_in_one_line(scenario: str) -> None:
    m = manifest_for("6.1", scenario)
    with pytest.raises(InputError, match="lists no data symbols .* CONFIG_KALLSYMS_ALL"):
        open_vmcore(str(m.path("vmcore")), types="btf")
    p = _cli("check", "--vmcore", str(m.path("vmcore")), "--types", "btf")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "CONFIG_KALLSYMS_ALL" in p.stderr
    assert "a vmlinux with debug info is needed for this kernel" in p.stderr
