# SPDX-License-Identifier: GPL-2.0-or-later
"""
preflight on DTBs compiled with dtc from the factory's scenarios, compared with
what the real kernels did: the golden snapshots were read from the factory's
dumps of 6.1, 6.12 and 7.x, so the verdicts and placements below come from the
kernels, not from this tool. Edge cases follow the kernel sources
(drivers/of/of_reserved_mem.c, drivers/of/fdt.c of each series).
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from rmem_inspect import checks
from rmem_inspect.errors import InputError
from rmem_inspect.model import ReservedMemState, Snapshot
from rmem_inspect.preflight import (
    PreflightResult,
    kernel_sort,
    mem_limit,
    memparse,
    preflight,
    resolve_layout,
)
from rmem_inspect.preflight.assumed_ram import RAM_CODES
from tests.conftest import MATRIX, MATRIX_IDS
from tests.expected import expected_findings
from vmcores.scenarios import DEFAULT_MEMORY, SCENARIOS, overlay_dts

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
#: The codes a DTB alone decides.
CODES = ("RMEM-DROPPED", "RMEM-UNALLOCATED", "RMEM-UNTRACKED", "RMEM-OVERLAP")

#: QEMU's virt machine as the factory boots it: 1 GiB of RAM at 0x40000000.
BASE_DTS = """/dts-v1/;
/ {
\t#address-cells = <2>;
\t#size-cells = <2>;
\tcompatible = "linux,dummy-virt";
\tmemory@40000000 {
\t\tdevice_type = "memory";
\t\treg = <0x0 0x40000000 0x0 0x40000000>;
\t};
\tchosen {
\t};
};
"""


def dtc(tmp_path: Path, dts: str) -> bytes:
    if shutil.which("dtc") is None:
        pytest.fail("dtc is needed (Debian: device-tree-compiler)")
    src = tmp_path / "board.dts"
    src.write_text(dts)
    out = tmp_path / "board.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(out), str(src)], check=True)
    return out.read_bytes()


def rmem_dts(body: str, cells: str = "#address-cells = <2>; #size-cells = <2>; ranges;") -> str:
    return BASE_DTS + f"/ {{ reserved-memory {{ {cells}\n{body} }}; }};\n"


def rm(result: PreflightResult) -> ReservedMemState:
    assert result.snapshot.reserved_mem is not None
    return result.snapshot.reserved_mem


def pairs(report: checks.Report) -> set[tuple[str, str | None]]:
    return {(f.code, f.region) for f in report.findings if f.code in CODES}


@pytest.mark.parametrize(("series", "scenario"), MATRIX, ids=MATRIX_IDS)
def test_preflight_matches_real_kernel(tmp_path: Path, series: str, scenario: str) -> None:
    real = Snapshot.loads((GOLDEN / f"{series}-{scenario}.json").read_text())
    dtb = dtc(tmp_path, BASE_DTS + overlay_dts(SCENARIOS[scenario]))
    # the command line the kernel booted with, as read from the dump (mem= matters)
    result = preflight(dtb, series, cmdline=real.kernel.cmdline)
    assert pairs(result.report) == pairs(checks.run(real))
    # Same entries in the same places (6.1's allocation order comes from its heapsort).
    assert real.reserved_mem is not None
    got = {e.name: (e.base, e.size) for e in rm(result).entries}
    want = {e.name: (e.base, e.size) for e in real.reserved_mem.entries}
    assert got == want
    assert rm(result).count == real.reserved_mem.count


def test_kernel_sort_sorts() -> None:
    rng = random.Random(6)
    for n in range(0, 80):
        items = [rng.randrange(10) for _ in range(n)]
        kernel_sort(items, lambda a, b: (a > b) - (a < b))
        assert items == sorted(items)


def test_layout_names() -> None:
    assert resolve_layout("6.1") == "static-array"
    assert resolve_layout("node-ops") == "node-ops"
    for version, layout in (
        ("3.15", "static-array"),
        ("5.4", "static-array"),
        ("5.15", "static-array"),
        ("6.6", "static-array"),
        ("6.11.11", "static-array"),
        ("6.1.0-37-cloud-arm64", "static-array"),
        ("6.12", "dynamic-array"),
        ("6.12.4", "dynamic-array"),
        ("6.12.43+deb13-cloud-arm64", "dynamic-array"),
        ("7.0", "dynamic-array"),
        ("7.0.9", "dynamic-array"),
        ("7.1", "node-ops"),
        ("7.3", "node-ops"),
        ("7.3.4+deb13-cloud-arm64", "node-ops"),
        ("8.2", "node-ops"),
    ):
        assert resolve_layout(version) == layout, version
    for bad in ("3.14", "2.6.32", "6", "7", "six", "6.x", "6.12.", "v6.12", "", "6.12 x"):
        with pytest.raises(InputError):
            resolve_layout(bad)
    with pytest.raises(InputError):
        preflight(b"not a dtb at all", "6.1")


def test_invalid_reg_length(tmp_path: Path) -> None:
    # reg of 3 cells with #address-cells + #size-cells = 4: 6.1 and 6.12 print "invalid reg
    # property" and skip the node; 7.x's of_flat_dt_get_addr_size_prop() returns NULL, so
    # the node counts as having no reg and, with a size, becomes a dynamic region.
    dtb = dtc(
        tmp_path,
        rmem_dts("odd: odd@51000000 { reg = <0 0x51000000 0x100000>; size = " "<0 0x100000>; };"),
    )
    for series in ("6.1", "6.12"):
        r = preflight(dtb, series)
        assert ("RMEM-DROPPED", "odd@51000000") in pairs(r.report)
        assert any("invalid reg property in 'odd@51000000'" in t for t in r.log)
    r = preflight(dtb, "7.x")
    assert not pairs(r.report)
    (e,) = rm(r).entries
    assert e.size == 0x100000 and e.base + e.size == 0x80000000  # top-down from the end of RAM


def test_invalid_alloc_ranges(tmp_path: Path) -> None:
    # 6.1/6.12 reject an alloc-ranges of the wrong length; 7.x ignores it and allocates anywhere.
    dtb = dtc(
        tmp_path,
        rmem_dts("p: pool { size = <0 0x100000>; alloc-ranges = <0 0x60000000 " "0x100000>; };"),
    )
    assert rm(preflight(dtb, "6.1")).entries[0].size == 0
    assert ("RMEM-DROPPED", "pool") in pairs(preflight(dtb, "6.12").report)
    assert not pairs(preflight(dtb, "7.x").report)


def test_unsupported_reserved_memory_format(tmp_path: Path) -> None:
    # #size-cells differs from the root's: every kernel ignores the whole node.
    dtb = dtc(
        tmp_path,
        rmem_dts(
            "v: vpu@50400000 { reg = <0 0x50400000 0x400000>; };",
            "#address-cells = <2>; #size-cells = <1>; ranges;",
        ),
    )
    for series in ("6.1", "6.12", "7.x"):
        r = preflight(dtb, series)
        codes = {(f.code, f.region) for f in r.report.findings}
        assert ("RMEM-DT-FORMAT", "/reserved-memory") in codes
        assert ("RMEM-DROPPED", "vpu@50400000") in codes
        assert rm(r).count == 0


def test_window_too_small_for_fixed_regions(tmp_path: Path) -> None:
    # The window has 16 MiB but a fixed region takes 12 MiB of it: 8 MiB cannot fit.
    dtb = dtc(
        tmp_path,
        rmem_dts(
            "fw: fw@58000000 { reg = <0 0x58000000 0 0xc00000>; };\n"
            "p: pool { size = <0 0x800000>; alloc-ranges = <0 0x58000000 0 0x1000000>; };"
        ),
    )
    for series in ("6.1", "6.12", "7.x"):
        r = preflight(dtb, series)
        assert ("RMEM-UNALLOCATED", "pool") in pairs(r.report)
        assert any("failed to allocate memory for node 'pool'" in t for t in r.log)


def test_cli_preflight(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rmem_inspect.commands import main

    dtb = tmp_path / "overflow.dtb"
    dtb.write_bytes(dtc(tmp_path, BASE_DTS + overlay_dts(SCENARIOS["overflow"])))
    # 6.1 drops five of the 69 regions (tests/expected.py, from its boot log): exit 1.
    assert main(["preflight", str(dtb), "--kernel", "6.1", "--format", "json"]) == 1
    js = json.loads(capsys.readouterr().out)
    dropped = {f["region"] for f in js["findings"] if f["code"] == "RMEM-DROPPED"}
    assert dropped == {r for c, r in expected_findings("overflow", "6.1") if c == "RMEM-DROPPED"}
    assert js["kernel"]["layout"] == "static-array"
    # 6.12 tracks them all.
    assert main(["preflight", str(dtb), "--kernel", "dynamic-array", "--log"]) == 0
    out = capsys.readouterr().out
    assert "predicted kernel log" in out and "linux,cma" in out
    # A version number picks the layout: 6.6 is a static-array kernel.
    assert main(["preflight", str(dtb), "--kernel", "6.6", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["kernel"]["layout"] == "static-array"
    assert main(["preflight", str(dtb), "--kernel", "6.x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown kernel '6.x'" in err and "6.12 to 7.0" in err
    assert main(["preflight", str(tmp_path / "missing.dtb"), "--kernel", "6.1"]) == 2
    # --config and --vmlinux that are not what they say: one line, exit status 2
    assert main(["preflight", str(dtb), "-k", "6.12", "--config", str(dtb)]) == 2
    assert "not a kernel .config" in capsys.readouterr().err
    assert main(["preflight", str(dtb), "-k", "6.12", "--vmlinux", str(dtb)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a usable vmlinux" in err
    # a .config without CONFIG_DMA_RESTRICTED_POOL: a restricted pool has no handler
    config = tmp_path / "config"
    config.write_text(
        "CONFIG_OF_RESERVED_MEM=y\nCONFIG_DMA_CMA=y\nCONFIG_DMA_DECLARE_COHERENT=y\n"
        "# CONFIG_DMA_RESTRICTED_POOL is not set\n"
    )
    wifi = tmp_path / "wifi.dtb"
    wifi.write_bytes(
        dtc(
            tmp_path,
            rmem_dts(
                'w@50000000 { compatible = "restricted-dma-pool"; '
                "reg = <0 0x50000000 0 0x400000>; };"
            ),
        )
    )
    assert main(["preflight", str(wifi), "-k", "6.12", "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["preflight", str(wifi), "-k", "6.12", "--config", str(config), "-f", "json"]) == 1
    (f,) = json.loads(capsys.readouterr().out)["findings"]
    assert f["code"] == "RMEM-NO-HANDLER" and f["evidence"]["missing"] == [
        "CONFIG_DMA_RESTRICTED_POOL"
    ]


def test_memory_banks(tmp_path: Path) -> None:
    # A DTB whose memory node the boot loader fills in: without --memory, RAM is assumed
    # from the node's base (here 0) and the header says so; with it, the pool lands at
    # the top of the given bank.
    dts = rmem_dts("p: pool { size = <0 0x100000>; };").replace(
        "reg = <0x0 0x40000000 0x0 0x40000000>;", "reg = <0 0 0 0>;"
    )
    dtb = dtc(tmp_path, dts)
    guessed = preflight(dtb, "6.12")
    assert str(guessed.snapshot.source["memory"]).startswith("RAM assumed 0x0..")
    assert "--memory" in str(guessed.snapshot.source["memory"])
    assert [e.size for e in rm(guessed).entries] == [0x100000]
    # no memory node at all: from the lowest carve-out
    bare = rmem_dts("fw@50000000 { reg = <0 0x50000000 0 0x100000>; no-map; };").replace(
        "reg = <0x0 0x40000000 0x0 0x40000000>;", ""
    )
    res = preflight(dtc(tmp_path, bare.replace("memory@40000000", "soc")), "7.x")
    assert str(res.snapshot.source["memory"]).startswith("RAM assumed 0x50000000..")
    assert not res.report.findings
    r = preflight(dtb, "6.12", memory=[(0x80000000, 0x10000000)])
    assert [(e.base, e.size) for e in rm(r).entries] == [(0x8FF00000, 0x100000)]


def test_memparse_and_mem_limit_follow_the_kernel() -> None:
    assert memparse("768M") == 768 << 20 and memparse("0x1000") == 0x1000
    assert memparse("2g") == 2 << 30 and memparse("010") == 8  # octal, as simple_strtoull
    assert mem_limit("console=ttyAMA0") is None
    # early_mem() runs for every mem=: the last one wins, rounded down to a page
    assert mem_limit("mem=1G quiet mem=5000") == 4096
    with pytest.raises(InputError):
        memparse("lots")


def test_bootargs_mem_limit_and_usable_ranges(tmp_path: Path) -> None:
    """mem= in /chosen/bootargs and linux,usable-memory-range cut memory before the
    scan, as setup_machine_fdt() and arm64_memblock_init() do."""
    sc = SCENARIOS["mem-limit"]
    dts = BASE_DTS + overlay_dts(sc) + '/ { chosen { bootargs = "console=ttyAMA0 mem=768M"; }; };\n'
    res = preflight(dtc(tmp_path, dts), "7.x")
    assert "Memory limited to 768MB" in res.log
    mb = res.snapshot.memblock
    assert mb is not None and max(r.base + r.size for r in mb.memory) == 0x70000000
    got = {(f.code, f.region) for f in res.report.findings if f.severity != "info"}
    assert got == {("RMEM-DROPPED", "hi-pool"), ("RMEM-UNALLOCATED", "hi-pool")}
    # an explicit command line wins over bootargs
    res = preflight(dtc(tmp_path, dts), "7.x", cmdline="console=ttyAMA0")
    assert not [f for f in res.report.findings if f.severity != "info"]
    banks = preflight(dtc(tmp_path, BASE_DTS + overlay_dts(SCENARIOS["banks"])), "6.12")
    mb = banks.snapshot.memblock
    assert mb is not None
    assert [(r.base, r.size) for r in mb.memory if not r.flags] == [
        (0x40000000, 0x20000000),
        (0x68000000, 0x08000000),
        (0x70200000, 0x0FE00000),
    ]


def test_one_replay_per_layout_and_its_rules_decide() -> None:
    """Each layout has exactly one replay class (a new layout: the layouts record plus
    one module in rmem_inspect/preflight/), and preflight() runs the registered one."""
    from rmem_inspect.kernel.layouts import Layout
    from rmem_inspect.preflight.replay import REPLAYS

    assert set(REPLAYS) == set(Layout)
    for layout, cls in REPLAYS.items():
        assert cls.LAYOUT is layout


def test_a_replay_rule_changes_what_is_predicted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules are class attributes the shared steps read: 7.1+ prints a DMA pool's
    size in KiB (rmem_dma_setup()), 6.12 in MiB; a 6.12 replay told otherwise says KiB."""
    from rmem_inspect.kernel.layouts import Layout
    from rmem_inspect.preflight.dynamic_array import DynamicArrayReplay
    from rmem_inspect.preflight.replay import REPLAYS

    dtb = dtc(
        tmp_path,
        rmem_dts(
            'pool@50000000 { compatible = "shared-dma-pool"; '
            "reg = <0x0 0x50000000 0x0 0x200000>; };"
        ),
    )
    line = "created DMA memory pool at 0x0000000050000000, size "
    assert any(line + "2 MiB" in t for t in preflight(dtb, "6.12").log)
    assert any(line + "2048 KiB" in t for t in preflight(dtb, "7.3").log)

    class KibReplay(DynamicArrayReplay):
        DMA_POOL_SIZE_KIB = True

    monkeypatch.setitem(REPLAYS, Layout.DYNAMIC_ARRAY, KibReplay)
    assert any(line + "2048 KiB" in t for t in preflight(dtb, "6.12").log)


@pytest.mark.parametrize(("series", "scenario"), MATRIX, ids=MATRIX_IDS)
def test_assumed_ram_keeps_the_kernels_verdicts(tmp_path: Path, series: str, scenario: str) -> None:
    """Every factory board with its memory size left to the boot loader (reg size 0, as
    most upstream board DTBs have): answered on assumed RAM, said in the header, and the
    verdicts that do not rest on RAM are those the real kernel gave."""
    real = Snapshot.loads((GOLDEN / f"{series}-{scenario}.json").read_text())
    board = dataclasses.replace(SCENARIOS[scenario], memory=DEFAULT_MEMORY)
    dts = BASE_DTS.replace(
        "reg = <0x0 0x40000000 0x0 0x40000000>", "reg = <0x0 0x40000000 0x0 0x0>"
    )
    result = preflight(
        dtc(tmp_path, dts + overlay_dts(board)),
        series,
        cmdline=real.kernel.cmdline,
        handlers=real.kernel.rmem_handlers,
    )
    assert str(result.snapshot.source["memory"]).startswith("RAM assumed 0x40000000..")

    def beside_ram(findings: list[checks.Finding]) -> set[tuple[str, str | None]]:
        return {
            (f.code, f.region) for f in findings if f.code not in RAM_CODES and f.severity != "info"
        }

    kernel = checks.run(real).findings
    assert beside_ram(result.report.findings) == beside_ram(kernel)
    # what is not marked as resting on the assumption (drops for the array, the dynamic
    # limit, a property) is what the kernel did
    unmarked = {
        (f.code, f.region)
        for f in result.report.findings
        if "assumed_memory" not in f.evidence and f.severity != "info"
    }
    assert unmarked <= {(f.code, f.region) for f in kernel if f.severity != "info"}
    for f in result.report.findings:
        if "assumed_memory" in f.evidence:
            assert f.code in RAM_CODES and "rests on the RAM assumed" in f.message
