# SPDX-License-Identifier: GPL-2.0-or-later
"""
Beyond arm64: Debian trixie's 6.12 armmp-lpae kernel under qemu-system-arm (ELF32
dumps) and its 6.12 riscv64 kernel under qemu-system-riscv64 (OpenSBI, no
CONFIG_CMA, no drgn translation), booted with the factory's scenarios
(vmcores/arch.py) and read from kdump-layout dumps. The expected findings are the
6.12 ones of tests/expected.py (derived from drivers/of/of_reserved_mem.c, the same
C code on every architecture; riscv's carveouts sit 1 GiB higher, in its RAM), plus,
for every node this kernel logged "compatible matching fail" for, what that failure
means, and every expectation is checked against what the kernel logged.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rmem_inspect.formats.elf import read_elf
from tests.expected import expected_info, expected_triples
from vmcores.arch import ARM_SCENARIOS, BOARDS, ArchDump, build_arm, relocate_name
from vmcores.scenarios import SCENARIOS

pytestmark = pytest.mark.vmcore

#: "OF: reserved mem: 0x...0x... (N KiB) map|nomap reusable|non-reusable NAME"
#: (fdt_init_reserved_mem_node(), drivers/of/of_reserved_mem.c): one per saved region.
SAVED = re.compile(r"OF: reserved mem: 0x[0-9a-f]+\.\.0x[0-9a-f]+ \(\d+ KiB\) \S+ \S+ (\S+)$")
ALLOC_FAILED = re.compile(r"failed to allocate memory for node '([^']+)'")
RESERVE_FAILED = re.compile(r"failed to reserve memory for node '([^']+)'")
MATCH_FAILED = re.compile(r"OF: reserved mem: node (\S+) compatible matching fail$")
ARCHES = ("arm", "riscv64")
CASES = [(a, s) for a in ARCHES for s in ARM_SCENARIOS]


@pytest.fixture(scope="module")
def arch_dumps() -> dict[tuple[str, str], ArchDump]:
    return {(d.arch, d.scenario): d for a in ARCHES for d in build_arm(arch=a)}


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rmem_inspect", "check", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _report(d: ArchDump) -> tuple[dict, int]:
    p = _check("--vmcore", d.vmcore, "--format", "json")
    assert p.returncode in (0, 1), p.stderr
    assert p.stderr == ""
    return json.loads(p.stdout), p.returncode


@pytest.mark.parametrize(("arch", "scenario"), CASES, ids=[f"{a}-{s}" for a, s in CASES])
def test_exact_findings(
    arch_dumps: dict[tuple[str, str], ArchDump], arch: str, scenario: str
) -> None:
    d = arch_dumps[arch, scenario]
    info = read_elf(d.vmcore)
    assert (info.bits, info.arch) == ((32, "arm") if arch == "arm" else (64, "riscv"))
    report, rc = _report(d)
    assert report["kernel"]["arch"] == arch
    assert report["kernel"]["release"] == d.release
    delta = BOARDS[arch].ram_base - 0x40000000
    log = Path(d.dmesg).read_text().splitlines()
    match_failed = {m.group(1) for line in log if (m := MATCH_FAILED.search(line))}
    want = {(c, relocate_name(r, delta), sev) for c, r, sev in expected_triples(scenario, "6.12")}
    for name in match_failed:
        # __reserved_mem_init_node(): the only shared-dma-pool handler this kernel has
        # (kernel/dma/coherent.c) refuses reusable nodes and the CMA one is not built
        # (no CONFIG_DMA_CMA): ops stay NULL and, the node not being no-map,
        # fdt_init_reserved_mem_node() memblock_phys_free()s it; a reusable
        # shared-dma-pool so left has no CMA area.
        want |= {
            ("RMEM-NO-HANDLER", name, "warning"),
            ("RMEM-NOT-RESERVED", name, "error"),
            ("RMEM-CMA-MISSING", name, "error"),
        }
    found = {(f["code"], f["region"], f["severity"]) for f in report["findings"]}
    assert {t for t in found if t[2] != "info"} == want
    info_want = {(c, relocate_name(r, delta)) for c, r in expected_info(scenario, "6.12")}
    assert {(c, r) for c, r, s in found if s == "info"} == info_want
    assert rc == (1 if want else 0)

    # The findings rest on what this kernel logged.
    saved = {m.group(1) for line in log if (m := SAVED.search(line))}
    assert report["kernel"]["count"] == len(saved | match_failed)
    unallocated = {r for c, r, _s in found if c == "RMEM-UNALLOCATED"}
    assert unallocated == {m.group(1) for line in log if (m := ALLOC_FAILED.search(line))}
    refused = {m.group(1) for line in log if (m := RESERVE_FAILED.search(line))}
    assert refused == {r for c, r, _s in found if c == "RMEM-NOMAP-MISSING"}
    if arch == "riscv64":
        # Debian's riscv64 kernel: no CONFIG_CMA, named as the root cause
        cma = {r.name for r in SCENARIOS[scenario].regions if r.reusable}
        assert match_failed == cma
        for f in report["findings"]:
            if f["code"] in ("RMEM-CMA-MISSING", "RMEM-NO-HANDLER"):
                # the missing handler, named in the message and the evidence, read
                # from the kernel's own __reservedmem_of_table
                assert "CONFIG_DMA_CMA" in f["message"]
                assert f["evidence"]["missing"] == ["CONFIG_DMA_CMA"]
                assert "cma" not in {h.split(":")[0] for h in f["evidence"]["handlers"]}
                assert "kernel/dma/coherent.c" in f["message"]
        assert "mmode_resv0@80000000" in saved  # OpenSBI's own carveout, tracked
        assert "walk of swapper_pg_dir" in report["source"]["translation"]
    else:
        assert not match_failed and "translation" not in report["source"]


@pytest.mark.parametrize("arch", ARCHES)
def test_init_array_evidence_is_known(
    arch_dumps: dict[tuple[str, str], ArchDump], arch: str
) -> None:
    report, _rc = _report(arch_dumps[arch, "baseline"])
    init = report["kernel"]["init_array"]
    # free_initmem() gave the __initdata reserved_mem_array back: every page freed.
    assert init["in_init_section"] is True
    assert init["pages"] > 0
    assert init["pages_freed"] == init["pages"]


@pytest.mark.parametrize("arch", ARCHES)
def test_qemu_dump_is_read_as_raw_ram(
    arch_dumps: dict[tuple[str, str], ArchDump], arch: str
) -> None:
    """armmp-lpae has no CONFIG_FW_CFG_SYSFS and bookworm's QEMU 7.2 refuses -device
    vmcoreinfo on riscv virt: QEMU's own dumps carry no VMCOREINFO and physical
    addresses only. They are read as raw RAM (the kernel's VMCOREINFO page found in
    them) and give the findings of the kdump-layout dump of the same boot."""
    d = arch_dumps[arch, "baseline"]
    assert read_elf(d.qemu_elf).vmcoreinfo is None
    p = _check("--vmcore", d.qemu_elf, "--vmlinux", d.vmlinux, "--format", "json")
    assert p.returncode in (0, 1) and p.stderr == "", p.stderr
    raw = json.loads(p.stdout)
    assert raw["source"]["kind"] == "ramdump", raw["source"]
    assert raw["source"]["kernel_found"].startswith("VMCOREINFO page at phys")
    ref, _ = _report(d)
    triples = sorted((f["code"], f["region"], f["severity"]) for f in raw["findings"])
    assert triples == sorted((f["code"], f["region"], f["severity"]) for f in ref["findings"])


def test_unsupported_architecture_is_refused_in_one_line(
    arch_dumps: dict[tuple[str, str], ArchDump], tmp_path: Path
) -> None:
    """A real vmlinux of another architecture given as both inputs' machine: the
    riscv64 dump relabelled EM_LOONGARCH (258) with the same vmlinux relabelled."""
    d = arch_dumps["riscv64", "baseline"]
    dump, vmlinux = tmp_path / "vmcore", tmp_path / "vmlinux"
    for src, dst in ((d.vmcore, dump), (d.vmlinux, vmlinux)):
        subprocess.run(["cp", "--sparse=always", src, str(dst)], check=True)
        with open(dst, "r+b") as f:
            f.seek(18)
            assert f.read(2) == (243).to_bytes(2, "little")
            f.seek(18)
            f.write((258).to_bytes(2, "little"))
    p = _check("--vmcore", str(dump), "--vmlinux", str(vmlinux))
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "loongarch dump" in lines[0] and "riscv64" in lines[0]


def test_arm_1g_fdt_window_is_read_through_the_page_tables() -> None:
    """1 GiB at 0x40000000 with the 3G/1G split: kexec-tools' program headers put the
    top of RAM at linear addresses that wrap onto the FDT window (0xff800000);
    collect/arm_fdt.py reads the window through drgn's page-table walk instead."""
    (d,) = build_arm(("baseline",), arch="arm-1g")
    info = read_elf(d.vmcore)
    assert info.bits == 32 and info.described_size > 1 << 30
    report, rc = _report(d)
    assert rc == 0 and report["findings"] == []
    log = Path(d.dmesg).read_text().splitlines()
    assert report["kernel"]["count"] == len({m.group(1) for x in log if (m := SAVED.search(x))})
