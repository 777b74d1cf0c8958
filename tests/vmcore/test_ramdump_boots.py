# SPDX-License-Identifier: GPL-2.0-or-later
"""
Raw RAM dumps of real boots (``python -m vmcores.ramdump``): every arm64 scenario on
6.1, 6.12 and 7.x, and the 32-bit Arm and riscv64 boards, booted without ``-device
vmcoreinfo`` and saved as Qualcomm-named bank files (QMP ``pmemsave``), a ``load.cmm``
and QEMU's note-less ELF. For every boot, the report read from the bank files
(crash's FILE@PADDR syntax), from ``load.cmm`` and from the note-less ELF equals the
report of the ELF dump WITH VMCOREINFO (arm64: the factory's dump of the same kernel,
DTB, kaslr-seed and command line; arm/riscv64: the kdump-layout rewrite of this very
boot): the same kernel summary (init-array evidence included), the same regions and
the same (code, region, severity) findings — with the vmlinux, and on 6.12/7.x without
it (kallsyms and BTF). That the two arm64 boots laid the kernel out alike is not
assumed: the VMCOREINFO text this boot left in RAM equals the reference's note, and
the kernel logged the same reserved-memory lines. The copy with every VMCOREINFO text
in RAM zeroed: found from the vmlinux's image, the same report; without a vmlinux, one
line and exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rmem_inspect import checks
from rmem_inspect.collect.ramdump import open_banks
from rmem_inspect.inputs import Source, open_input
from rmem_inspect.output import render
from tests.vmcore.conftest import dump_data
from vmcores.arch import ARM_SCENARIOS
from vmcores.debian import SERIES
from vmcores.manifest import default_cache
from vmcores.ramdump import ARCHES
from vmcores.ramdump_set import RamdumpSet, load_ramdumps, vmcoreinfo_fields
from vmcores.scenarios import SCENARIOS

pytestmark = pytest.mark.vmcore

ROOT = Path(__file__).resolve().parents[2]
#: (arch, series, scenario) of every boot the factory dumps raw.
BOOTS = [("arm64", s, sc) for s in SERIES for sc in SCENARIOS] + [
    (a, "6.12", sc) for a in ARCHES for sc in ARM_SCENARIOS
]
#: The ways to hand the tool one boot's RAM: crash's FILE@PADDR list, the load.cmm,
#: the directory holding it, QEMU's note-less ELF.
FORMS = ("banks", "load.cmm", "elf")
#: Kernels built with CONFIG_KALLSYMS_ALL and BTF: readable without a vmlinux.
NO_VMLINUX_SERIES = ("6.12", "7.x")


#: Every boot read in full from each form (each read loads the kernel's debug info:
#: about 1 s), with the vmlinux, and on the kernels that allow it without.
CASES = [(*b, True, form) for b in BOOTS for form in FORMS] + [
    (*b, False, form)
    for b in BOOTS
    for form in FORMS
    if b[0] == "arm64" and b[1] in NO_VMLINUX_SERIES
]

_SETS: dict[tuple[str, str, str], RamdumpSet] | None = None
_REFERENCE: dict[tuple[str, str, str], dict[str, Any]] = {}


def _id(arch: str, series: str, scenario: str) -> str:
    return f"{series}-{scenario}" if arch == "arm64" else f"{arch}-{scenario}"


def ramdump_set(arch: str, series: str, scenario: str) -> RamdumpSet:
    """The factory's set for one boot; a missing one fails the test (never skips)."""
    global _SETS
    if _SETS is None:
        _SETS = {(r.arch, r.series, r.scenario): r for r in load_ramdumps()}
    rs = _SETS.get((arch, series, scenario))
    if rs is None:
        pytest.fail(f"no raw dump set for {arch} {series}/{scenario} in {default_cache()}: "
                    "run python -m vmcores.ramdump")  # fmt: skip
    return rs


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rmem_inspect", "report", "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def _json(report: checks.Report) -> dict[str, Any]:
    """The report as ``report --format json`` prints it."""
    out: dict[str, Any] = json.loads(render(report, "json"))
    return out


def read(vmcore: str, vmlinux: str | None) -> dict[str, Any]:
    """``report --format json`` on ``vmcore``, in this process (open_input, as the CLI);
    without ``vmlinux``, from the kernel's kallsyms and BTF."""
    src = Source(vmcore=vmcore, vmlinux=vmlinux, types="auto" if vmlinux else "btf")
    return _json(open_input(src).report())


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """What must be equal: the kernel summary (layout, counts, dynamic and init array
    evidence), every region as reported, the (code, region, severity) findings."""
    return {
        "kernel": report["kernel"],
        "regions": report["regions"],
        "findings": sorted({(f["code"], f["region"], f["severity"]) for f in report["findings"]}),
    }


def reference(rs: RamdumpSet) -> dict[str, Any]:
    """The report of the ELF dump with VMCOREINFO, with the vmlinux. arm64: the vmcore
    tier's own reading of the factory's dump (shared with test_findings)."""
    key = (rs.arch, rs.series, rs.scenario)
    if key not in _REFERENCE:
        if rs.arch == "arm64":
            data = dump_data(rs.series, rs.scenario)
            assert data.manifest.path("vmcore") == rs.path(rs.reference)
            report = _json(checks.run(data.snapshot))
        else:
            report = read(str(rs.path(rs.reference)), str(rs.path(rs.vmlinux)))
        assert report["source"]["kind"] == "vmcore"
        _REFERENCE[key] = comparable(report)
    return _REFERENCE[key]


def form_arg(rs: RamdumpSet, form: str, wiped: bool = False) -> str:
    """The --vmcore argument for one way of reading the set."""
    d = rs.path(rs.wiped) if wiped else Path(rs.directory)
    if form == "banks":
        return ",".join(f"{d / b['file']}@{b['base']:#x}" for b in rs.banks)
    if form == "load.cmm":
        return str(d / "load.cmm")
    return str(rs.path(rs.qemu_elf))


@pytest.mark.parametrize("boot", BOOTS, ids=[_id(*b) for b in BOOTS])
def test_set_is_one_boot_laid_out_as_the_reference(boot: tuple[str, str, str]) -> None:
    """Banks and note-less ELF of one stopped guest; the reference is laid out alike."""
    rs = ramdump_set(*boot)
    assert len(rs.banks) in (2, 3)
    for b in rs.banks:
        assert b["size"] & (b["size"] - 1), f"{b['file']}: a power-of-two size"
        assert rs.files[b["file"]]["bytes"] == b["size"]
        # sparse: pages of zeros take no room
        assert rs.files[b["file"]]["allocated"] < b["size"]
    cmm = rs.path(rs.load_cmm).read_text().splitlines()
    assert [ln for ln in cmm if not ln.startswith(";")] == [
        f"d.load.binary {b['file']} {b['base']:#x} /noclear" for b in rs.banks
    ]
    # The VMCOREINFO page this boot left in RAM is the reference's note, line for line
    # (KERNELOFFSET, PHYS_OFFSET, kimage_voffset, swapper_pg_dir...).
    assert rs.vmcoreinfo_differs == []
    assert rs.vmcoreinfo_at[0] % 4096 == 0
    assert rs.rmem_log_equal
    bank = next(b for b in rs.banks if b["base"] <= rs.vmcoreinfo_at[0] < b["base"] + b["size"])
    with open(rs.path(bank["file"]), "rb") as f:
        f.seek(rs.vmcoreinfo_at[0] - bank["base"])
        text = f.read(4096).split(b"\0", 1)[0].decode()
    assert vmcoreinfo_fields(text)["OSRELEASE"] == rs.release
    with open(rs.path(f"{rs.wiped}/{bank['file']}"), "rb") as f:
        for start, end in rs.wiped_ranges:
            if bank["base"] <= start < bank["base"] + bank["size"]:
                f.seek(start - bank["base"])
                assert f.read(end - start) == bytes(end - start)


@pytest.mark.parametrize("boot", BOOTS, ids=[_id(*b) for b in BOOTS])
def test_bank_spellings_agree(boot: tuple[str, str, str]) -> None:
    """FILE@PADDR, load.cmm and the directory open to the same files at the same bases;
    the note-less ELF covers the same RAM."""
    rs = ramdump_set(*boot)
    opened = []
    for spec in (form_arg(rs, "banks"), form_arg(rs, "load.cmm"), rs.directory):
        ram = open_banks(spec)
        try:
            opened.append(
                [(os.path.realpath(b.path), b.paddr, b.size, b.offset) for b in ram.banks]
            )
        finally:
            ram.close()
    want = [(str(rs.path(b["file"])), b["base"], b["size"], 0) for b in rs.banks]
    assert opened == [want] * 3
    ram = open_banks(form_arg(rs, "elf"))
    try:
        assert ram.format == "ELF without VMCOREINFO"
        covered = [(b.paddr, b.end) for b in ram.banks]
    finally:
        ram.close()
    start, end = rs.banks[0]["base"], rs.banks[-1]["base"] + rs.banks[-1]["size"]
    assert (start, end) in covered
    # anything else QEMU dumps is outside RAM (riscv64 virt: its boot ROM at 0x1000)
    assert all(e <= start or s >= end for s, e in covered if (s, e) != (start, end))


@pytest.mark.parametrize(
    ("arch", "series", "scenario", "vmlinux", "form"),
    CASES,
    ids=[f"{_id(a, s, sc)}-{'vmlinux' if v else 'btf'}-{f}" for a, s, sc, v, f in CASES],
)
def test_raw_report_equals_reference(
    arch: str, series: str, scenario: str, vmlinux: bool, form: str
) -> None:
    rs = ramdump_set(arch, series, scenario)
    report = read(form_arg(rs, form), str(rs.path(rs.vmlinux)) if vmlinux else None)
    src = report["source"]
    assert src["kind"] == "ramdump", src
    # found from the VMCOREINFO page, not told
    assert f"{rs.vmcoreinfo_at[0]:#x}" in src["kernel_found"], src
    assert comparable(report) == reference(rs)


@pytest.mark.parametrize("boot", BOOTS, ids=[_id(*b) for b in BOOTS])
def test_wiped_vmcoreinfo(boot: tuple[str, str, str]) -> None:
    """No VMCOREINFO left in RAM: without a vmlinux there is nothing to go on, one line
    and exit 2; with it, the vmlinux's image is found instead and the report is the
    reference's (every boot: among them cuts at 3/7 of RAM and through the kernel image,
    the other kaslr-seed, the 4 GiB board with three banks, 32-bit Arm and riscv64)."""
    rs = ramdump_set(*boot)
    p = _cli("--vmcore", form_arg(rs, "banks", wiped=True), "--types", "btf")
    assert p.returncode == 2, p.stdout[-500:]
    assert p.stdout == "" and len(p.stderr.splitlines()) == 1, p.stderr
    assert "Traceback" not in p.stderr
    report = read(form_arg(rs, "load.cmm", wiped=True), str(rs.path(rs.vmlinux)))
    assert "VMCOREINFO" not in report["source"]["kernel_found"], report["source"]
    assert comparable(report) == reference(rs)
