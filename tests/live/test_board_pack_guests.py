# SPDX-License-Identifier: GPL-2.0-or-later
"""
Board packs from real arm64 guests (Debian 6.1, 6.12, 7.3): the collector of
``rmem-inspect collect-script`` runs at boot under busybox ``sh``, its archive
leaves on a virtio disk, and on the host ``report --board-pack`` gives the
same report as the sysfs fallback (``report --live --no-debug-info``) run in
that same boot. Boards that lack things (no BTF, kptr_restrict=2 that cannot be
lowered, no debugfs on a busybox-only board without Python) get a pack that says
what it lacked and a report that lists the checks skipped and why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from rmem_inspect.formats.pack import parse_pack
from tests.live.board_guest import BoardRun, cleanup, host, run_board_guest

pytestmark = pytest.mark.live

SERIES = tuple(os.environ.get("RMEM_LIVE_SERIES", "6.1,6.12,7.x").split(","))
SCENARIO = "overflow"
#: What differs by design between two inputs of the same boot: where it was read and
#: by which tool invocation.
PER_INPUT = ("source", "tool")

#: The kcore rounds' scenarios: overflow's 69 regions (the dynamic array read whole), and
#: alloc-fail, whose drgn report has findings to compare (overflow's has none on 6.12+).
KCORE_SCENARIOS = tuple(os.environ.get("RMEM_KCORE_SCENARIOS", "overflow,alloc-fail").split(","))

_RUNS: dict[tuple[str, str, str], BoardRun] = {}


@pytest.fixture(scope="module", autouse=True)
def _remove_work_dirs() -> Iterator[None]:
    yield
    for run in _RUNS.values():
        cleanup(run)


def board(series: str, kind: str, scenario: str = SCENARIO) -> BoardRun:
    key = (series, kind, scenario)
    if key not in _RUNS:
        _RUNS[key] = run_board_guest(series, scenario, kind)
    return _RUNS[key]


def pack_report(run: BoardRun, slot: int) -> dict[str, Any]:
    assert slot in run.packs, run.console[-3000:]
    rc, err = run.status[slot]
    assert rc == 0, err
    r = host("report", "--board-pack", str(run.packs[slot]), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def missing(run: BoardRun, slot: int) -> dict[str, str]:
    """The pack's rmem/missing, less what this kernel was built without: /sys/kernel/mm/cma
    exists only with CONFIG_CMA_SYSFS (mm/cma_sysfs.c), whose cma_sysfs_init kallsyms lists
    (init text included) when it is built in."""
    pack = parse_pack(run.packs[slot].read_bytes())
    text = pack.text("rmem/missing") or ""
    out = dict(line.split("\t", 1) for line in text.splitlines())
    names = {line.split()[2] for line in (pack.text("proc/kallsyms") or "").splitlines()}
    assert pack.is_dir("sys/kernel/mm/cma") == ("cma_sysfs_init" in names)
    if "cma_sysfs_init" not in names:
        assert out.pop("/sys/kernel/mm/cma").startswith("not present")
    return out


def same_boot(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in a.items() if k not in PER_INPUT and b.get(k) != v}


@pytest.mark.parametrize("series", SERIES)
def test_pack_equals_fallback_of_same_boot(series: str) -> None:
    run = board(series, "python")
    assert run.after[0] == {"debugfs": "0", "kptr": "1", "staged": "0"}, run.after
    assert run.fallback is not None, run.console[-3000:]
    live = json.loads(run.fallback)
    assert live["source"]["kind"] == "sysfs"
    pack = pack_report(run, 0)
    assert pack["source"]["kind"] == "board-pack"
    assert pack["kernel"]["release"] == run.release
    # Everything but where it was read from: kernel summary, regions, findings with their
    # messages and evidence, causes, skipped checks.
    assert same_boot(pack, live) == {}
    assert pack["regions"] and pack["findings"]
    # the board exposed every source this pack format carries, /proc/kcore included
    assert missing(run, 0) == {}


@pytest.mark.parametrize("series", SERIES)
def test_pack_without_btf(series: str) -> None:
    run = board(series, "python")
    lacked = missing(run, 1)
    assert list(lacked) == ["/sys/kernel/btf/vmlinux"], lacked
    report = pack_report(run, 1)
    assert lacked.items() <= report["source"]["unreadable"].items()
    # the fallback reads no BTF: the same report as the full pack of this boot
    assert same_boot(report, pack_report(run, 0)) == {}


@pytest.mark.parametrize("series", SERIES)
def test_pack_kptr_restrict_locked(series: str) -> None:
    """kptr_restrict=2 behind a read-only sysctl: kallsyms has names only, which is all
    the fallback needs (the layout's functions), and the sysctl is left as it was."""
    run = board(series, "python")
    assert run.after[2]["kptr"] == "2"
    lacked = missing(run, 2)
    assert set(lacked) == {"/proc/sys/kernel/kptr_restrict", "/proc/kallsyms"}, lacked
    assert "could not be lowered" in lacked["/proc/sys/kernel/kptr_restrict"]
    assert "addresses hidden" in lacked["/proc/kallsyms"]
    names = parse_pack(run.packs[2].read_bytes()).text("proc/kallsyms") or ""
    assert names and all(line.startswith("0000000000000000 ") for line in names.splitlines())
    assert same_boot(pack_report(run, 2), pack_report(run, 0)) == {}


@pytest.mark.parametrize("series", SERIES)
def test_busybox_board_without_debugfs(series: str) -> None:
    """No Python and ``debugfs=off``: the pack says there is no debugfs, the report skips
    the memblock checks and says so; the rest equals the full pack of the Python guest
    (same kernel, scenario and KASLR seed)."""
    run = board(series, "busybox")
    assert "debugfs=off" in run.append
    assert run.after[0] == {"debugfs": "0", "kptr": "1", "staged": "0"}, run.after
    lacked = missing(run, 0)
    # debugfs=off: debugfs_init() (fs/debugfs/inode.c) returns -EPERM before
    # sysfs_create_mount_point(kernel_kobj, "debug"): there is no /sys/kernel/debug
    assert list(lacked) == ["/sys/kernel/debug/memblock"], lacked
    assert lacked["/sys/kernel/debug/memblock"].startswith("no debugfs")
    report = pack_report(run, 0)
    assert lacked.items() <= report["source"]["unreadable"].items()
    needs_memblock = {
        code
        for codes, source in report["skipped"].items()
        if source == "memblock"
        for code in codes.split(", ")
    }
    assert "RMEM-UNTRACKED" in needs_memblock
    full = pack_report(board(series, "python"), 0)
    assert [r["name"] for r in report["regions"]] == [r["name"] for r in full["regions"]]

    def triples(rep: dict[str, Any]) -> set[tuple[str, str | None, str]]:
        return {(f["code"], f["region"], f["severity"]) for f in rep["findings"]}

    extra = triples(report) - triples(full)
    assert {c for c, _r, _s in extra} <= {"RMEM-SOURCE-MISSING"}, extra
    lost = triples(full) - triples(report)
    assert {c for c, _r, _s in lost} <= needs_memblock, lost


@pytest.mark.parametrize("series", SERIES)
def test_android_shell_and_toybox(series: str) -> None:
    """The same script under mksh (Android's /system/bin/sh) with only toybox's commands
    on PATH, in the same boot: the same sources read, the same report."""
    run = board(series, "busybox")
    assert run.after[1] == {"debugfs": "0", "kptr": "1", "staged": "0"}, run.after
    assert missing(run, 1) == missing(run, 0)
    names = [set(parse_pack(run.packs[i].read_bytes()).files) for i in (0, 1)]
    assert names[0] == names[1]
    assert same_boot(pack_report(run, 1), pack_report(run, 0)) == {}


def has_data_symbols(run: BoardRun) -> bool:
    """Whether the kernel's kallsyms lists data symbols (CONFIG_KALLSYMS_ALL): Debian's 6.1
    cloud kernel does not, so it has no addresses to cut /proc/kcore at."""
    text = parse_pack(run.packs[0].read_bytes()).text("proc/kallsyms") or ""
    return any(line.endswith(" memblock") for line in text.splitlines())


def kcore_packs(run: BoardRun) -> list[str]:
    """Every round's pack, after checking each round's script and planner ran clean and the
    planner ended by saying nothing was left to cut."""
    assert run.plans, run.console[-3000:]
    last = max(run.plans)
    rc, said = run.plans[last]
    assert rc == 1 and f"no round {last + 1} to run" in said, run.plans
    assert all(run.plans[n][0] == 0 for n in run.plans if n != last), run.plans
    assert sorted(run.packs) == list(range(last)), (run.packs, run.plans)
    for n in run.packs:
        assert run.status[n][0] == 0, run.status[n]
        if n:  # the later rounds cut every piece they were given
            assert (parse_pack(run.packs[n].read_bytes()).text("rmem/missing") or "") == ""
    return [str(run.packs[n]) for n in sorted(run.packs)]


@pytest.mark.parametrize("scenario", KCORE_SCENARIOS)
@pytest.mark.parametrize("series", SERIES)
def test_kcore_rounds_equal_drgn_live(series: str, scenario: str) -> None:
    """Round 1 (the collector) then the later rounds under busybox ``sh``, each planned in
    the guest by ``collect-script --from`` (this tool's planner, with the guest's drgn
    0.0.31: the board has no host to ask mid-boot); on the host the report of all the packs
    equals ``report --live --vmlinux`` (DWARF) of that same boot, but for the devices'
    lists (devices_kset), which the rounds do not follow: their walk is listed as missing."""
    from rmem_inspect.collect.kcore_read import LIST_WALKS

    first = board(series, "kcore")
    if not has_data_symbols(first):
        pytest.skip(f"{first.release} has no CONFIG_KALLSYMS_ALL (test_kcore_without_data_symbols)")
    run = board(series, "kcore", scenario)
    packs = kcore_packs(run)
    assert run.fallback is not None, run.console[-3000:]
    live = json.loads(run.fallback)
    assert live["source"]["kind"] == "live" and "debug_info" not in live["source"], live["source"]
    r = host("report", "--board-pack", ",".join(packs), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    pack = json.loads(r.stdout)
    assert pack["source"]["debug_info"].startswith("types from the kernel's BTF"), pack["source"]
    assert "kcore" not in pack["source"], pack["source"]
    print(f"{series} {scenario}: {len(packs)} packs (round 1, {len(packs) - 1} kcore rounds)")
    for key in ("kernel", "regions", "cma", "assigned_devices", "devices", "skipped"):
        assert pack[key] == live[key], key
    walks = [
        f
        for f in pack["findings"]
        if f["code"] == "RMEM-SOURCE-MISSING" and f["evidence"]["source"] in LIST_WALKS
    ]
    assert [f["evidence"]["source"] for f in walks] in ([], ["devices/cma (partial)"]), walks
    # every other finding, with its message and evidence, as the drgn live report has it
    assert [f for f in pack["findings"] if f not in walks] == live["findings"]
    assert pack["regions"]
    if scenario != "overflow":
        assert live["findings"]


@pytest.mark.parametrize("series", SERIES)
def test_kcore_rounds_missing_one(series: str) -> None:
    """Packs without their last round: the report is the fallback's, and says which round
    to run (no finding made from half-followed pointers)."""
    run = board(series, "kcore")
    if not has_data_symbols(run):
        pytest.skip(f"{run.release} has no CONFIG_KALLSYMS_ALL (test_kcore_without_data_symbols)")
    packs = kcore_packs(run)
    r = host("report", "--board-pack", ",".join(packs[:-1]), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    short = json.loads(r.stdout)
    assert f"run round {len(packs)} " in short["source"]["kcore"], short["source"]
    # everything but the source is round 1's report (the fallback's) of this boot
    first = host("report", "--board-pack", packs[0], "--format", "json")
    assert same_boot(short, json.loads(first.stdout)) == {}


@pytest.mark.parametrize("series", SERIES)
def test_kcore_without_data_symbols(series: str) -> None:
    """A kernel whose kallsyms lists functions only: the planner says so in one line (exit
    2), no round is cut, and the report of the pack is the fallback's."""
    run = board(series, "kcore")
    if has_data_symbols(run):
        pytest.skip(f"{run.release} has CONFIG_KALLSYMS_ALL (test_kcore_rounds_equal_drgn_live)")
    rc, said = run.plans[1]
    assert rc == 2 and "built without CONFIG_KALLSYMS_ALL" in said, run.plans
    assert list(run.packs) == [0]
    r = host("report", "--board-pack", str(run.packs[0]), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    assert json.loads(r.stdout)["source"]["kind"] == "board-pack"
    again = host("collect-script", "--from", str(run.packs[0]))
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert "CONFIG_KALLSYMS_ALL" in again.stderr
