# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks on real golden snapshots altered the way corrupt kernels or odd
devicetrees would alter them: each code's predicate fires, with evidence, and
nothing else changes."""

from __future__ import annotations

import copy
from dataclasses import asdict

import pytest

from bench.synthetic import grow
from rmem_inspect import checks
from rmem_inspect.checks.context import Context, dt_ranges
from rmem_inspect.checks.findings import RegionView
from rmem_inspect.checks.views import build_views
from rmem_inspect.model import CmaArea, DtRegion, MemblockRegion, RmemHandler, Snapshot
from tests.conftest import MATRIX, MATRIX_IDS
from tests.unit.test_golden import load

pytestmark = pytest.mark.unit


def codes(snap: Snapshot, severities: tuple[str, ...] = ("error", "warning")) -> set:
    return {(f.code, f.region) for f in checks.run(snap).findings if f.severity in severities}


def test_clean_baseline_is_clean() -> None:
    assert codes(load("6.12", "baseline")) == set()


def test_count_beyond_capacity_is_corrupt() -> None:
    snap = load("6.12", "baseline")
    assert snap.reserved_mem is not None
    snap.reserved_mem.count = 1_000_000
    f = [x for x in checks.run(snap).findings if x.code == "RMEM-COUNT-CORRUPT"]
    assert len(f) == 1 and "1000000" in f[0].message and f[0].severity == "error"


def test_entries_not_in_the_dump_are_not_corruption() -> None:
    """Reads of data the dump does not hold (collect/not_dumped.py marked them) give
    RMEM-ARRAY-NOT-DUMPED; an absurd count beside them is still corruption."""
    from rmem_inspect.collect.not_dumped import absent_address

    snap = load("6.12", "baseline")
    rm = snap.reserved_mem
    assert rm is not None
    err = "could not find physical memory segment: 0x7dfffed8"
    assert absent_address(err) == ("phys", 0x7DFFFED8)
    assert absent_address("address is not mapped: 0xdead0000") is None
    for e in rm.entries:
        e.name, e.error = None, err
    rm.not_in_dump = "phys 0x7dfffed8 is in no bank file"
    found = codes(snap)
    assert ("RMEM-ARRAY-NOT-DUMPED", None) in found
    assert ("RMEM-COUNT-CORRUPT", None) not in found
    assert not any(code == "RMEM-DROPPED" for code, _region in found)
    rm.count = 1_000_000
    found = codes(snap)
    assert ("RMEM-COUNT-CORRUPT", None) in found
    assert ("RMEM-ARRAY-NOT-DUMPED", None) not in found


def test_unreadable_entry_is_corrupt() -> None:
    snap = load("7.x", "baseline")
    assert snap.reserved_mem is not None
    e = snap.reserved_mem.entries[1]
    e.name, e.error = None, "address is not mapped: 0xdead0000"
    found = codes(snap)
    assert ("RMEM-COUNT-CORRUPT", None) in found
    # The entry's region is no longer matched, but an array that did not read proves
    # nothing about it: no "dropped" verdict, and its verdict is unknown, never a silent ok.
    assert not any(code == "RMEM-DROPPED" for code, _region in found)
    views = {v.name: v for v in checks.run(snap).regions}
    assert views["vpu@50400000"].verdict == "unknown"


def test_pointer_still_on_init_array() -> None:
    snap = load("6.12", "overflow")
    rm = snap.reserved_mem
    assert rm is not None and rm.init_array_address is not None
    rm.points_to_init_array = True
    rm.array_address = rm.init_array_address
    found = codes(snap)
    assert ("RMEM-ARRAY-NOT-DYNAMIC", None) in found
    assert ("RMEM-TEMP-ARRAY-LIVE", None) in found


def test_init_array_not_freed() -> None:
    snap = load("6.12", "baseline")
    rm = snap.reserved_mem
    assert rm is not None
    rm.init_array_pages_freed = 0
    assert ("RMEM-TEMP-ARRAY-LIVE", None) in codes(snap)


def test_wild_dynamic_array_pointer() -> None:
    snap = load("7.x", "overflow")
    assert snap.reserved_mem is not None
    snap.reserved_mem.array_phys = 0x7FFF_0000_0000
    assert ("RMEM-COUNT-CORRUPT", None) in codes(snap)


def test_dynamic_region_outside_alloc_ranges_and_misaligned() -> None:
    snap = load("6.12", "baseline")
    assert snap.reserved_mem is not None and snap.fdt is not None
    e = next(x for x in snap.reserved_mem.entries if x.name == "dsp-pool")
    e.base = 0x7000_1000  # outside 0x60000000..0x6fffffff and not 4 MiB aligned
    found = codes(snap)
    assert ("RMEM-ALLOC-RANGE", "dsp-pool") in found
    assert ("RMEM-ALIGNMENT", "dsp-pool") in found


def test_size_mismatch() -> None:
    snap = load("6.1", "baseline")
    assert snap.reserved_mem is not None
    e = next(x for x in snap.reserved_mem.entries if x.name == "vpu@50400000")
    e.size //= 2
    assert ("RMEM-SIZE-MISMATCH", "vpu@50400000") in codes(snap)


def test_tracked_elsewhere_than_the_devicetree_says() -> None:
    snap = load("6.12", "baseline")
    assert snap.reserved_mem is not None
    e = next(x for x in snap.reserved_mem.entries if x.name == "vpu@50400000")
    e.base += 0x100000  # same size; its last MiB is now outside memblock.reserved
    assert codes(snap) == {
        ("RMEM-SIZE-MISMATCH", "vpu@50400000"),
        ("RMEM-NOT-RESERVED", "vpu@50400000"),
    }


def test_mapped_generic_pool_without_ops_is_not_initialised() -> None:
    """The same as below on a region without no-map (checked on another path)."""
    snap = load("6.12", "baseline")
    assert snap.reserved_mem is not None and snap.fdt is not None
    r = next(x for x in snap.fdt.regions if x.name == "vpu@50400000")
    r.compatible = ["restricted-dma-pool"]
    # Debian's 6.12 has no restricted-dma-pool handler: named as such, not as a failure
    assert codes(snap) == {("RMEM-NO-HANDLER", "vpu@50400000")}
    # a kernel that has the handler (kernel/dma/swiotlb.c) and left ops NULL: it failed
    assert snap.kernel.rmem_handlers is not None
    snap.kernel.rmem_handlers.append(
        RmemHandler("dma", "restricted-dma-pool", "rmem_swiotlb_setup")
    )
    assert codes(snap) == {("RMEM-NO-INIT", "vpu@50400000")}


def test_not_reserved_when_memblock_lost_the_range() -> None:
    snap = load("6.12", "baseline")
    assert snap.memblock is not None
    snap.memblock.reserved = [
        r for r in snap.memblock.reserved if not (r.base <= 0x50400000 < r.base + r.size)
    ]
    assert ("RMEM-NOT-RESERVED", "vpu@50400000") in codes(snap)


def test_memblock_freed_skips_memblock_checks() -> None:
    snap = load("6.1", "multi-reg")
    assert snap.memblock is not None
    snap.memblock.available = False
    snap.memblock.note = "freed"
    report = checks.run(snap)
    found = {(f.code, f.region) for f in report.findings}
    assert ("RMEM-MEMBLOCK-UNAVAILABLE", None) in found
    assert not any(c == "RMEM-UNTRACKED" for c, _ in found)
    assert any("RMEM-UNTRACKED" in k for k in report.skipped)


def test_generic_compatible_without_ops_is_not_initialised() -> None:
    snap = load("6.12", "baseline")
    assert snap.reserved_mem is not None
    e = next(x for x in snap.reserved_mem.entries if x.name == "coherent@51000000")
    e.ops = None
    assert ("RMEM-NO-INIT", "coherent@51000000") in codes(snap)


def test_reusable_pool_without_cma_area() -> None:
    snap = load("6.12", "baseline")
    snap.cma = [CmaArea(name="reserved", base=0x7AC00000, size=64 << 20, is_default=True)]
    assert ("RMEM-CMA-MISSING", "linux,cma") in codes(snap)


def test_reserved_memory_format_rejected_by_kernel() -> None:
    snap = load("7.x", "baseline")
    assert snap.fdt is not None
    snap.fdt.reserved_memory_size_cells = 1
    assert ("RMEM-DT-FORMAT", "/reserved-memory") in codes(snap)


def test_dangling_memory_region_phandle() -> None:
    snap = load("6.12", "consumers")
    assert snap.dt is not None
    con = snap.dt.consumers[0]
    con.targets[0] = None
    assert ("RMEM-CONSUMER-ORPHAN", None) in codes(snap)


def test_live_tree_diverged_from_boot_fdt() -> None:
    snap = load("6.12", "baseline")
    assert snap.dt is not None
    snap.dt.regions.append(DtRegion(path="/reserved-memory/new@60000000", name="new@60000000",
                                    index=99, reg=[(0x60000000, 0x1000)]))  # fmt: skip
    assert ("RMEM-DT-DIVERGED", None) in codes(snap, ("info",))


def test_overlap_sweep_finds_every_pair_once() -> None:
    snap = load("6.12", "baseline")
    assert snap.fdt is not None and snap.memblock is not None
    base = snap.fdt.regions[0]
    for i in range(3):  # three regions stacked on one range: 3 + 1 pairs with firmware
        r = copy.deepcopy(base)
        r.name = r.path = f"stack{i}@50000000"
        snap.fdt.regions.append(r)
    overlaps = [f for f in checks.run(snap).findings if f.code == "RMEM-OVERLAP"]
    pairs = {frozenset((f.region, f.evidence["other"])) for f in overlaps}
    assert len(overlaps) == len(pairs) == 6


def test_memblock_flags_come_from_debug_info() -> None:
    snap = load("6.12", "nomap-conflict")
    assert snap.memblock is not None
    assert snap.memblock.flag_values["MEMBLOCK_NOMAP"] == 4
    assert any("MEMBLOCK_NOMAP" in r.flag_names for r in snap.memblock.memory)
    # A kernel whose NOMAP bit differs: the checks read the value, not a constant.
    for r in snap.memblock.memory:
        if r.flags & 4:
            r.flags = 0x40
    snap.memblock.flag_values["MEMBLOCK_NOMAP"] = 0x40
    assert ("RMEM-NOMAP-MISSING", "fw-shared@52100000") in codes(snap)
    assert ("RMEM-NOMAP-MISSING", "firmware@50000000") not in codes(snap)


def test_checks_scale_n_log_n() -> None:
    """10k regions and 10k memblock entries: the sweep stays linear-ish (no timing asserts;
    bench/ measures time). Here: every overlap is found and nothing is quadratic in output."""
    snap = load("6.12", "no-reserved-memory")
    assert snap.fdt is not None and snap.memblock is not None
    snap.fdt.has_reserved_memory = True
    snap.fdt.reserved_memory_address_cells = snap.fdt.root_address_cells
    snap.fdt.reserved_memory_size_cells = snap.fdt.root_size_cells
    snap.fdt.reserved_memory_has_ranges = True
    for i in range(10_000):
        b = 0x1_0000_0000 + i * 0x2000
        snap.fdt.regions.append(DtRegion(path=f"/reserved-memory/r{i}", name=f"r{i}@{b:x}",
                                         index=i, reg=[(b, 0x1000)]))  # fmt: skip
        snap.memblock.reserved.append(MemblockRegion(base=b, size=0x1000))
    report = checks.run(snap)
    dropped = [f for f in report.findings if f.code == "RMEM-DROPPED"]
    assert len(dropped) == 10_000
    assert not [f for f in report.findings if f.code == "RMEM-OVERLAP"]


def _views_one_by_one(c: Context) -> list[dict[str, object]]:
    """The reference for build_views(): a view per devicetree range, then each
    reserved_mem entry applied one at a time, then memblock coverage, then the log."""
    views: dict[str, RegionView] = {}
    for r, kind, available, ranges in c.regions:
        for name, b, s in ranges or ((r.name, None, r.size),):
            views[name] = RegionView(
                name, b, s, kind, r.nomap, r.reusable, list(r.compatible), r.status,
                sources=["dt"], verdict="ok" if available else "disabled", dt_index=r.index,
            )  # fmt: skip
    for e in c.entries:
        if e.name is None:
            continue
        v = views.get(e.name)
        if v is None:
            v = views[e.name] = RegionView(e.name, e.base, e.size, "unknown")
        v.tracked, v.rmem_index = True, e.index
        v.sources.append("reserved_mem")
        if (v.base is None or v.kind == "dynamic") and not (c.derived and e.base == 0):
            v.base, v.size = e.base, e.size
    for v in views.values():
        if c.memblock_ok and v.base is not None and v.size:
            v.reserved = c.covered.covers(v.base, v.size)
            if c.covered.overlaps(v.base, v.size):
                v.sources.append("memblock")
        v.log = c.log.by_region.get(v.name, [])[:6]
    return [asdict(v) for v in views.values()]


def _variants(snap: Snapshot) -> list[Snapshot]:
    """The snapshot, and copies whose reserved_mem repeats names, names a reg entry's
    view (name[1]) or is rebuilt from the log with unplaced entries."""
    out = [snap]
    rm = snap.reserved_mem
    if rm is None or not rm.entries:
        return out
    dup = copy.deepcopy(snap)
    assert dup.reserved_mem is not None
    entries = dup.reserved_mem.entries
    for e in list(entries[:3]):
        again = copy.copy(e)
        again.index, again.base = len(entries), e.base + 0x10000
        entries.append(again)
    if dup.fdt is not None:  # a node with neither reg nor size, on two entries
        dup.fdt.regions.append(DtRegion("/reserved-memory/odd", "odd", 99))
        for k in (1, 2):
            odd = copy.copy(entries[0])
            odd.name, odd.index, odd.base = "odd", len(entries), 0x7000_0000 * k
            entries.append(odd)
    sub = copy.copy(entries[0])
    sub.name, sub.index = f"{entries[0].name}[1]", len(entries)
    entries.append(sub)
    out.append(dup)
    log = copy.deepcopy(dup)
    assert log.reserved_mem is not None
    log.reserved_mem.ops_layout = "log"
    for e in log.reserved_mem.entries[::2]:
        e.base = 0
    out.append(log)
    return out


@pytest.mark.parametrize(("series", "scenario"), MATRIX, ids=MATRIX_IDS)
def test_region_views_are_the_entries_applied_one_by_one(series: str, scenario: str) -> None:
    """build_views() makes each view in one pass; applying the entries one at a time
    (the reference above) must give the same views, names repeated or not."""
    snaps = [load(series, scenario)]
    if series != "6.1":  # grow() adds regions the way a dynamic array holds them
        snaps.append(grow(snaps[0], 40, 40, 7).snapshot)
    for snap in [v for s in snaps for v in _variants(s)]:
        c = Context(snap)
        assert [asdict(v) for v in build_views(c).values()] == _views_one_by_one(c)


def test_an_entry_name_twice_takes_the_last_entry() -> None:
    snap = load("6.12", "baseline")
    assert snap.reserved_mem is not None
    e = next(x for x in snap.reserved_mem.entries if x.name == "dsp-pool")
    again = copy.copy(e)
    again.index, again.base = len(snap.reserved_mem.entries), e.base + 0x100000
    snap.reserved_mem.entries.append(again)
    snap.reserved_mem.count = len(snap.reserved_mem.entries)
    view = next(v for v in checks.run(snap).regions if v.name == "dsp-pool")
    assert (view.rmem_index, view.base, view.tracked) == (again.index, again.base, True)
    assert view.sources.count("reserved_mem") == 2


@pytest.mark.parametrize(("series", "scenario"), MATRIX, ids=MATRIX_IDS)
def test_region_rows_agree_with_the_model(series: str, scenario: str) -> None:
    """Context inlines DtRegion.kind and .available: the rows must say what they say."""
    snap = load(series, scenario)
    assert snap.fdt is not None
    snap.fdt.regions += [
        DtRegion("/reserved-memory/a", "a", 90, status="ok", size=0x1000),
        DtRegion("/reserved-memory/b", "b", 91, status="fail"),
        DtRegion("/reserved-memory/c", "c", 92, status="disabled", reg=[(0x1000, 0x1000)] * 3),
    ]
    rows = Context(snap).regions
    assert [(r, kind, ok) for r, kind, ok, _ in rows] == [
        (r, r.kind, r.available) for r in snap.fdt.regions
    ]
    assert [ranges for *_, ranges in rows] == [dt_ranges(r) for r in snap.fdt.regions]


# --------------------------------------------------------------------------
# What the kernel skips, refuses or accepts on purpose


def test_nomap_region_outside_ram_is_accepted_not_reported() -> None:
    """early_init_dt_reserve_memory(): a no-map range that is not memory is neither
    reserved nor marked, on purpose; only its RAM part must be NOMAP."""
    snap = load("6.12", "baseline")
    assert snap.memblock is not None and snap.reserved_mem is not None
    fw = next(e for e in snap.reserved_mem.entries if e.name == "firmware@50000000")
    nomap = snap.memblock.flag_values["MEMBLOCK_NOMAP"]
    # cut RAM so that the firmware's first half is no longer memory, and drop the
    # NOMAP flag there, as a kernel that never saw memory there leaves it
    snap.memblock.memory = [
        r for r in snap.memblock.memory if not (r.flags & nomap and r.base == fw.base)
    ]
    for r in snap.memblock.memory:
        if r.base <= fw.base < r.base + r.size:
            raise AssertionError("firmware still inside a memory region")
    half = fw.size // 2
    snap.memblock.memory.append(MemblockRegion(fw.base + half, half, nomap, ["MEMBLOCK_NOMAP"]))
    snap.memblock.memory.sort(key=lambda r: r.base)
    report = checks.run(snap)
    assert {(f.code, f.region) for f in report.findings if f.severity != "info"} == set()
    (info,) = [f for f in report.findings if f.code == "RMEM-OUTSIDE-RAM"]
    assert info.region == "firmware@50000000" and "(1 MiB of 2 MiB)" in info.message
    # the part that is RAM must still be NOMAP: clear it and the error is back
    for r in snap.memblock.memory:
        if r.base == fw.base + half:
            r.flags, r.flag_names = 0, ["MEMBLOCK_NONE"]
    assert ("RMEM-NOMAP-MISSING", "firmware@50000000") in codes(snap)


def test_mapped_region_outside_ram_is_reserved_and_said_so() -> None:
    snap = load("7.x", "mem-limit")
    report = checks.run(snap)
    outside = {f.region: f for f in report.findings if f.code == "RMEM-OUTSIDE-RAM"}
    assert "memblock_reserve() records it" in outside["ramlog@7a000000"].message
    # without the command line, the kernel's own "Memory limited" line says the same
    snap.kernel.cmdline = None
    f = next(x for x in checks.run(snap).findings if x.region == "ramlog@7a000000")
    assert "'Memory limited to 768MB' (kernel log)" in f.message
    # and with neither, no cause is invented
    assert snap.log is not None
    snap.log = [x for x in snap.log if not x.text.startswith("Memory limited")]
    f = next(x for x in checks.run(snap).findings if x.region == "ramlog@7a000000")
    assert "mem=" not in f.message and "Memory limited" not in f.message


@pytest.mark.parametrize("series", ["6.1", "6.12", "7.x"])
def test_rejected_node_drops_name_the_node_not_a_full_array(series: str) -> None:
    snap = load(series, "rmem-cells")
    for f in checks.run(snap).findings:
        if f.code in ("RMEM-DROPPED", "RMEM-UNALLOCATED"):
            assert "ignored the whole /reserved-memory node" in f.message
            assert "full" not in f.message and "no kernel log line" not in f.message


def test_init_array_kept_when_nothing_was_counted() -> None:
    """alloc_reserved_mem_array() allocates nothing when total_reserved_mem_cnt is 0."""
    snap = load("7.x", "rmem-cells")
    rm = snap.reserved_mem
    assert rm is not None and rm.capacity == 0 and rm.points_to_init_array
    assert "RMEM-ARRAY-NOT-DYNAMIC" not in {f.code for f in checks.run(snap).findings}
    # the same pointer after the kernel counted regions is a failed allocation; with no
    # log line to say so, the finding says that rather than quote a line that is not there
    rm.capacity = 3
    (f,) = [x for x in checks.run(snap).findings if x.code == "RMEM-ARRAY-NOT-DYNAMIC"]
    assert "has no 'Failed to allocate memory for reserved_mem array' line" in f.message
    assert "log" not in f.evidence


def test_nomap_refused_over_memreserve_names_it() -> None:
    snap = load("6.1", "memreserve")
    (f,) = [x for x in checks.run(snap).findings if x.code == "RMEM-NOMAP-MISSING"]
    assert f.evidence["reserved_before"] == ["/memreserve/ 0x5f000000..0x5f0fffff (1 MiB)"]
    # the refusal from the log is the cause; without that line, no cause is claimed
    assert snap.log is not None
    snap.log = [x for x in snap.log if "failed to reserve" not in x.text]
    (f,) = [x for x in checks.run(snap).findings if x.code == "RMEM-NOMAP-MISSING"]
    assert "cause" not in f.evidence and "-EBUSY" not in f.message


@pytest.mark.parametrize("series", ["6.1", "6.12", "7.x"])
def test_cma_default_gives_way_to_cma_cmdline(series: str) -> None:
    """kernel/dma/contiguous.c: linux,cma-default yields to cma= on purpose."""
    snap = load(series, "cma-cmdline")
    report = checks.run(snap)
    assert report.exit_status() == 0
    (f,) = [x for x in report.findings if x.region == "linux,cma"]
    assert f.code == "RMEM-CMA-CMDLINE" and f.severity == "info"
    assert f.evidence["tracked"] == (series != "7.x")
    views = {v.name: v for v in report.regions}
    assert views["linux,cma"].verdict == "skipped"
    # without the kernel's line, the command line alone is not enough when a log exists
    assert snap.log is not None
    snap.log = [x for x in snap.log if "bypass" not in x.text and "Skipping dt" not in x.text]
    codes_now = {x.code for x in checks.run(snap).findings if x.region == "linux,cma"}
    assert "RMEM-CMA-CMDLINE" not in codes_now and codes_now
    # with no log at all, the kernel's predicate on the command line decides
    snap.log = None
    codes_now = {x.code for x in checks.run(snap).findings if x.region == "linux,cma"}
    assert codes_now == {"RMEM-CMA-CMDLINE"}
