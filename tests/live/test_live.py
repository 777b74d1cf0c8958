# SPDX-License-Identifier: GPL-2.0-or-later
"""
The live tier: rmem_inspect inside a real arm64 guest (Debian kernels 6.1, 6.12
and 7.3, trixie's python3-drgn 0.0.31) as root on /proc/kcore, the no-debug-info
fallback in the same guest, ``--qemu`` from the host on the running guest, and
the ELF dump of that same boot as the reference.

Findings are compared as (code, region, severity) sets; the reference is the
dump of the very boot that was inspected live, read on the host.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import drgn
import pytest

from tests.expected import expected_findings
from tests.live.conftest import guest_run
from vmcores.guest_userland import INITRD_LIMIT
from vmcores.manifest import load_manifests

pytestmark = pytest.mark.live

SERIES = tuple(os.environ.get("RMEM_LIVE_SERIES", "6.1,6.12,7.x").split(","))
SCENARIOS = tuple(os.environ.get("RMEM_LIVE_SCENARIOS", "overflow").split(","))
CASES = [(k, s) for k in SERIES for s in SCENARIOS]
IDS = [f"{k}-{s}" for k, s in CASES]

#: Codes whose evidence only kernel memory holds (CMA areas, ops, page tables,
#: the array itself): the fallback cannot establish them.
NEEDS_DEBUG_INFO = {
    "RMEM-CMA-MISSING",
    "RMEM-NOMAP-MAPPED",
    "RMEM-NO-INIT",
    "RMEM-NO-HANDLER",
    "RMEM-ARRAY-NOT-DYNAMIC",
    "RMEM-TEMP-ARRAY-LIVE",
    "RMEM-COUNT-CORRUPT",
}

Triple = tuple[str, str | None, str]


def triples(report: dict[str, Any], drop: set[str] = frozenset()) -> set[Triple]:  # type: ignore[assignment]
    return {
        (f["code"], f["region"], f["severity"]) for f in report["findings"] if f["code"] not in drop
    }


@pytest.mark.parametrize("series,scenario", CASES, ids=IDS)
def test_live_equals_dump(series: str, scenario: str) -> None:
    run = guest_run(series, scenario)
    assert "drgn" in run.runs, run.console[-3000:]
    assert run.runs["drgn"].stdout.startswith("0.0.31"), run.runs["drgn"].stdout
    live = run.runs["live"]
    assert live.rc in (0, 1), live.stderr
    assert run.dump.rc in (0, 1), run.dump.stderr
    lj, dj = live.json(), run.dump.json()
    assert lj["source"]["kind"] == "live"
    assert lj["kernel"]["release"] == run.release == dj["kernel"]["release"]
    assert triples(lj) == triples(dj)
    assert live.rc == run.dump.rc
    # The boot itself behaved as the kernel facts say this scenario does.
    errors = {(c, r) for c, r, s in triples(lj) if s in ("error", "warning")}
    assert errors == expected_findings(scenario, series)


@pytest.mark.parametrize("series,scenario", CASES, ids=IDS)
def test_board_drgn_reads_kallsyms(series: str, scenario: str) -> None:
    """The board's drgn 0.0.31 without a vmlinux: the running kernel's kallsyms, data
    symbols included (Debian's 6.12 and 7.3 have CONFIG_KALLSYMS_ALL, 6.1 has not). On a
    live 7.3 kernel this works with 0.0.31; with a vmlinux the whole check does (above)."""
    run = guest_run(series, scenario)
    r = run.runs["kallsyms"]
    if series == "6.1":
        assert r.rc != 0 and "memblock" in r.stderr, (r.stdout, r.stderr)
    else:
        assert r.rc == 0 and "Symbol(name='memblock'" in r.stdout, (r.stdout, r.stderr)


@pytest.mark.parametrize("series,scenario", CASES, ids=IDS)
def test_installed_deb_equals_dump(series: str, scenario: str) -> None:
    """The board install: the project's .deb (vmcores/deb.py) installed with dpkg against
    the guest's real python3-drgn and python3-tabulate, then the installed command."""
    run = guest_run(series, scenario)
    inst = run.runs["dpkg_install"]
    assert inst.rc == 0, (inst.stdout, inst.stderr)
    assert "Setting up rmem-inspect" in inst.stdout, inst.stdout
    assert inst.stderr == "", inst.stderr
    where = run.runs["installed_where"]
    assert where.stdout.startswith("/usr/lib/python3/dist-packages/rmem_inspect/"), where
    installed = run.runs["installed"]
    assert installed.rc == run.dump.rc, installed.stderr
    assert triples(installed.json()) == triples(run.dump.json())
    assert [c["code"] for c in installed.json()["causes"]] == [
        c["code"] for c in run.dump.json()["causes"]
    ]


@pytest.mark.parametrize("series,scenario", CASES, ids=IDS)
def test_userland_kept_off_the_carveouts(series: str, scenario: str) -> None:
    """The initramfs ends below 0x50000000 and no allocation failed that did not
    fail in the factory's 1 GiB boot of the same scenario."""
    run = guest_run(series, scenario)
    assert run.initrd_bytes < INITRD_LIMIT
    pat = re.compile(r"failed to allocate memory for node '([^']+)'")
    live_fail = set(pat.findall(run.console))
    ref = {(m.series, m.scenario): m for m in load_manifests()}.get((series, scenario))
    if ref is None:
        pytest.fail(f"no factory dump for {series}/{scenario}: run python -m vmcores.build")
    assert live_fail == set(pat.findall(Path(ref.path("dmesg")).read_text()))


@pytest.mark.parametrize("series,scenario", CASES, ids=IDS)
def test_fallback_without_debug_info(series: str, scenario: str) -> None:
    run = guest_run(series, scenario)
    fb = run.runs["fallback"]
    assert fb.rc in (0, 1), fb.stderr
    fj, dj = fb.json(), run.dump.json()
    assert fj["source"]["kind"] == "sysfs"
    drop = NEEDS_DEBUG_INFO | {"RMEM-SOURCE-MISSING"}
    assert triples(fj, drop) == triples(dj, drop)
    # Nothing it cannot establish, and it says what it skipped and why.
    assert not {c for c, _, _ in triples(fj)} & NEEDS_DEBUG_INFO
    assert fj["skipped"]["RMEM-CMA-MISSING"] == "CMA areas"
    assert fj["skipped"]["RMEM-NOMAP-MAPPED"] == "page tables"
    rebuilt = [
        f["message"]
        for f in fj["findings"]
        if f["code"] == "RMEM-SOURCE-MISSING" and "reserved_mem" in f["message"]
    ]
    assert rebuilt and "reconstructed from the kernel log" in rebuilt[0]
    assert fj["kernel"]["ops_layout"] == "log"
    assert fj["kernel"]["layout"] == dj["kernel"]["layout"]
    regions = {r["name"]: r for r in fj["regions"]}
    if series == "6.1" and scenario == "overflow":
        # The DT lists them and the log says the array was full.
        dropped = {r for c, r, _ in triples(fj) if c == "RMEM-DROPPED"}
        assert dropped == {r for c, r in expected_findings(scenario, series) if c == "RMEM-DROPPED"}
        assert all(regions[n]["verdict"] in ("dropped", "unallocated") for n in dropped)


@pytest.mark.parametrize("series,scenario", CASES, ids=IDS)
def test_live_without_vmlinux(series: str, scenario: str) -> None:
    """No vmlinux in the guest: /proc/kcore + /proc/kallsyms + /sys/kernel/btf/vmlinux
    give the findings of the dump of that boot; a kernel whose kallsyms lists no data
    symbols (6.1: no CONFIG_KALLSYMS_ALL) gets the sysfs fallback, which names that as
    the reason, and ``--types btf`` refuses it in one line."""
    run = guest_run(series, scenario)
    r, forced = run.runs["no_vmlinux"], run.runs["no_vmlinux_btf"]
    assert r.rc in (0, 1), r.stderr
    rj, dj = r.json(), run.dump.json()
    if "debug_info" in rj["source"]:
        assert rj["source"]["kind"] == "live"
        assert rj["source"]["debug_info"] == "types from the kernel's BTF, symbols from kallsyms"
        assert rj["source"]["btf"].startswith("/sys/kernel/btf/vmlinux")
        assert triples(rj) == triples(dj)
        assert r.rc == run.dump.rc
        assert forced.rc == r.rc and triples(forced.json()) == triples(dj)
    else:
        assert series == "6.1", rj["source"]
        assert rj["source"]["kind"] == "sysfs"
        assert "CONFIG_KALLSYMS_ALL" in rj["source"]["why_not_drgn"]
        drop = NEEDS_DEBUG_INFO | {"RMEM-SOURCE-MISSING"}
        assert triples(rj, drop) == triples(dj, drop)
        assert forced.rc == 2 and forced.stdout == ""
        lines = forced.stderr.splitlines()
        assert len(lines) == 1 and "lists no data symbols" in lines[0], forced.stderr


@pytest.mark.parametrize("series,scenario", CASES, ids=IDS)
def test_live_errors_are_one_line(series: str, scenario: str) -> None:
    run = guest_run(series, scenario)
    for name, text in (
        ("no_debug_info", "no vmlinux with debug info found for the running kernel"),
        ("not_root", "needs root"),
        ("not_root_fallback", "needs root"),
        ("no_kcore", "/proc/kcore is not readable"),
    ):
        r = run.runs[name]
        assert r.rc == 2, (name, r.stdout, r.stderr)
        assert r.stdout == ""
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("rmem-inspect: error: "), (name, r.stderr)
        assert text in lines[0], (name, lines[0])


@pytest.mark.parametrize("series,scenario", CASES, ids=IDS)
def test_qemu_qmp_equals_dump(series: str, scenario: str) -> None:
    if not hasattr(drgn.Program, "set_qemu_qmp"):
        pytest.skip(f"drgn {drgn.__version__} has no Program.set_qemu_qmp (needs 0.3.0+)")
    run = guest_run(series, scenario)
    assert run.qemu is not None
    assert run.qemu.rc in (0, 1), run.qemu.stderr
    qj = run.qemu.json()
    assert qj["source"]["kind"] == "qemu"
    assert triples(qj) == triples(run.dump.json())


def test_qemu_errors_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    sock = tmp_path / "q.sock"
    sock.touch()
    cases = [
        (["--qemu", str(tmp_path / "absent.sock"), "--vmlinux", "x"], "QMP socket not found"),
        (["--qemu", str(sock)], "--qemu needs --vmlinux"),
    ]
    if not hasattr(drgn.Program, "set_qemu_qmp"):
        cases = [(["--qemu", str(sock)], "cannot attach to QEMU over QMP")]
    for args, text in cases:
        p = subprocess.run(
            [sys.executable, "-m", "rmem_inspect", "check", *args],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert p.returncode == 2 and p.stdout == ""
        assert len(p.stderr.splitlines()) == 1 and text in p.stderr, p.stderr
