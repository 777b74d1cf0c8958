# SPDX-License-Identifier: GPL-2.0-or-later
"""
32-bit Arm: Debian trixie's 6.12 armmp-lpae kernel booted under qemu-system-arm
with the factory's scenarios (vmcores/arch.py), read from kdump-layout ELF32
dumps. The expected findings are the 6.12 ones of tests/expected.py (derived from
drivers/of/of_reserved_mem.c, which is the same C code on every architecture) and
are checked against what this kernel logged.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rmem_inspect.collect.elf import read_elf
from tests.expected import expected_info, expected_triples
from vmcores.arch import ARM_SCENARIOS, ArchDump, build_arm

pytestmark = pytest.mark.vmcore

#: "OF: reserved mem: 0x...0x... (N KiB) map|nomap reusable|non-reusable NAME"
#: (fdt_init_reserved_mem_node(), drivers/of/of_reserved_mem.c): one per saved region.
SAVED = re.compile(r"OF: reserved mem: 0x[0-9a-f]+\.\.0x[0-9a-f]+ \(\d+ KiB\) \S+ \S+ (\S+)$")
ALLOC_FAILED = re.compile(r"failed to allocate memory for node '([^']+)'")
RESERVE_FAILED = re.compile(r"failed to reserve memory for node '([^']+)'")


@pytest.fixture(scope="module")
def arm_dumps() -> dict[str, ArchDump]:
    return {d.scenario: d for d in build_arm()}


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


@pytest.mark.parametrize("scenario", ARM_SCENARIOS)
def test_arm_exact_findings(arm_dumps: dict[str, ArchDump], scenario: str) -> None:
    d = arm_dumps[scenario]
    info = read_elf(d.vmcore)
    assert (info.bits, info.arch) == (32, "arm")
    report, rc = _report(d)
    assert report["kernel"]["arch"] == "arm"
    assert report["kernel"]["release"] == d.release
    found = {(f["code"], f["region"], f["severity"]) for f in report["findings"]}
    want = expected_triples(scenario, "6.12")
    assert {t for t in found if t[2] != "info"} == want
    assert {(c, r) for c, r, s in found if s == "info"} == expected_info(scenario, "6.12")
    assert rc == (1 if want else 0)

    # The findings rest on what this kernel logged.
    log = Path(d.dmesg).read_text().splitlines()
    saved = {m.group(1) for line in log if (m := SAVED.search(line))}
    assert report["kernel"]["count"] == len(saved)
    unallocated = {r for c, r, _s in found if c == "RMEM-UNALLOCATED"}
    assert unallocated == {m.group(1) for line in log if (m := ALLOC_FAILED.search(line))}
    refused = {m.group(1) for line in log if (m := RESERVE_FAILED.search(line))}
    assert refused == {r for c, r, _s in found if c == "RMEM-NOMAP-MISSING"}


def test_arm_init_array_evidence_is_known(arm_dumps: dict[str, ArchDump]) -> None:
    report, _rc = _report(arm_dumps["baseline"])
    init = report["kernel"]["init_array"]
    # free_initmem() gave the __initdata reserved_mem_array back: every page freed.
    assert init["in_init_section"] is True
    assert init["pages"] > 0
    assert init["pages_freed"] == init["pages"]


def test_arm_qemu_dump_is_refused_in_one_line(arm_dumps: dict[str, ArchDump]) -> None:
    d = arm_dumps["baseline"]
    assert read_elf(d.qemu_elf).vmcoreinfo is None  # armmp-lpae: no CONFIG_FW_CFG_SYSFS
    p = _check("--vmcore", d.qemu_elf, "--vmlinux", d.vmlinux)
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert "no VMCOREINFO note" in lines[0] and "kdump" in lines[0]
