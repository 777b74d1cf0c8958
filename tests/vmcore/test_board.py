# SPDX-License-Identifier: GPL-2.0-or-later
"""
The real-board scenarios on the three real kernels: what each finding rests on
agrees with the kernel's own log and memblock state, for the cases where the
kernel skips, refuses or accepts something on purpose.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rmem_inspect import checks
from rmem_inspect.collect.program import open_vmcore
from rmem_inspect.collect.snapshot import inspect
from rmem_inspect.formats.of_table import open_table_image, read_reservedmem_table
from rmem_inspect.kernel.handlers import declarations_from_config, parse_config
from rmem_inspect.model import RmemHandler
from rmem_inspect.preflight import preflight
from rmem_inspect.ranges import RangeSet
from tests.conftest import MATRIX, MATRIX_IDS
from tests.expected import SERIES
from tests.vmcore.conftest import DumpData, dump_data
from vmcores.manifest import default_cache
from vmcores.scenarios import BANKS, KASLR_OTHER_SEED, KASLR_SEED, MEMRESERVE, SCENARIOS

pytestmark = pytest.mark.vmcore


def _quoted(evidence: Any) -> list[str]:
    """Every kernel log line a finding quotes (its ``log`` lists, at any depth)."""
    out: list[str] = []
    if isinstance(evidence, dict):
        for k, v in evidence.items():
            if k == "log" and isinstance(v, list):
                out += [x for x in v if isinstance(x, str) and not x.startswith("(")]
            else:
                out += _quoted(v)
    elif isinstance(evidence, list):
        for v in evidence:
            out += _quoted(v)
    return out


@pytest.mark.parametrize("data", MATRIX, ids=MATRIX_IDS, indirect=True)
def test_every_quoted_log_line_is_in_the_log(data: DumpData) -> None:
    """Never quote a log line that is not in the log."""
    log = set(data.log)
    for f in checks.run(data.snapshot).findings:
        for line in _quoted(f.evidence):
            assert line in log, (f.code, f.region, line)
        for word in ("Failed to allocate memory for reserved_mem array", "not enough space"):
            if word in f.message:
                assert any(word in line for line in log), (f.code, f.message)


def _memory(data: DumpData) -> RangeSet:
    mb = data.snapshot.memblock
    assert mb is not None and mb.available
    return RangeSet.of_memblock(mb.memory)


@pytest.mark.parametrize("series", SERIES)
def test_nomap_outside_ram_is_accepted(series: str) -> None:
    d = dump_data(series, "nomap-outside-ram")
    memory = _memory(d)
    # The kernel tracks both no-map regions although neither is (all) RAM ...
    rm = d.snapshot.reserved_mem
    assert rm is not None
    tracked = {e.name: (e.base, e.size) for e in rm.entries}
    assert tracked["sram-fw@e000000"] == (0x0E000000, 1 << 20)
    assert not memory.overlaps(0x0E000000, 1 << 20)
    # ... and marks NOMAP only the half of boot-fw that is memory.
    mb = d.snapshot.memblock
    assert mb is not None
    nomap = RangeSet.of_memblock(mb.memory, mb.flag_values["MEMBLOCK_NOMAP"])
    assert nomap.pieces(0x3FF00000, 2 << 20) == [(0x40000000, 1 << 20)]
    report = checks.run(d.snapshot)
    assert report.exit_status() == 0
    outside = {f.region: f for f in report.findings if f.code == "RMEM-OUTSIDE-RAM"}
    assert set(outside) == {"sram-fw@e000000", "boot-fw@3ff00000"}
    assert "(1 MiB of 2 MiB)" in outside["boot-fw@3ff00000"].message
    assert "isn't memory" in outside["sram-fw@e000000"].evidence["rule"]


@pytest.mark.parametrize("series", SERIES)
def test_banks_hole(series: str) -> None:
    d = dump_data(series, "banks")
    memory = _memory(d)
    (b1, s1), (b2, s2) = BANKS
    assert memory.covers(b1, s1) and memory.covers(b2, s2)
    assert not memory.overlaps(b1 + s1, b2 - (b1 + s1))
    report = checks.run(d.snapshot)
    assert report.exit_status() == 0
    hole = [f for f in report.findings if f.code == "RMEM-OUTSIDE-RAM"]
    assert {f.region for f in hole} == {"hole-fw@62000000", "hole-buf@64000000"}
    for f in hole:
        # the evidence names the banks the kernel had
        assert f.evidence["memory"][0].startswith(f"{b1:#x}..")


@pytest.mark.parametrize("series", SERIES)
def test_mem_limit(series: str) -> None:
    d = dump_data(series, "mem-limit")
    assert d.snapshot.kernel.cmdline is not None and "mem=768M" in d.snapshot.kernel.cmdline
    memory = _memory(d)
    assert memory.ends[-1] == 0x70000000  # 768 MiB from 0x40000000
    report = checks.run(d.snapshot)
    for f in report.findings:
        if f.code == "RMEM-OUTSIDE-RAM":
            assert "mem=768M on the kernel command line cut memblock.memory at 0x70000000" in (
                f.message
            )
            assert f.evidence["log"] == ["Memory limited to 768MB"]
    # the pool whose window lies above the limit: the cause is the kernel's own line
    dropped = [f for f in report.findings if f.code in ("RMEM-DROPPED", "RMEM-UNALLOCATED")]
    assert dropped and all(f.region == "hi-pool" for f in dropped)
    assert all(
        any("failed to allocate memory for node 'hi-pool'" in x for x in f.evidence["log"])
        for f in dropped
    )


@pytest.mark.parametrize("series", SERIES)
def test_rejected_reserved_memory_node(series: str) -> None:
    d = dump_data(series, "rmem-cells")
    rm = d.snapshot.reserved_mem
    assert rm is not None and rm.count == 0 and rm.entries == []
    report = checks.run(d.snapshot)
    unsupported = [x for x in d.log if "unsupported node format, ignoring" in x]
    assert unsupported
    for f in report.findings:
        if f.code == "RMEM-DROPPED":
            assert f.evidence["cause"].startswith("the kernel ignored the whole /reserved-memory")
            assert "#address-cells 1 (root: 2)" in f.evidence["cause"]
            assert f.evidence["log"] and set(f.evidence["log"]) <= set(unsupported)
    codes = {f.code for f in report.findings}
    assert "RMEM-ARRAY-NOT-DYNAMIC" not in codes and "RMEM-TEMP-ARRAY-LIVE" not in codes
    if series == "7.x":
        # 7.x counts no region (total_reserved_mem_cnt = 0) and allocates no array:
        # reserved_mem stays at the init array, on purpose
        assert rm.capacity == 0 and rm.points_to_init_array is True
    elif series == "6.12":
        # 6.12 leaves total_reserved_mem_cnt at 64 and allocates that many
        assert rm.capacity == 64 and rm.points_to_init_array is False


@pytest.mark.parametrize("series", SERIES)
def test_highmem(series: str) -> None:
    d = dump_data(series, "highmem")
    rm = d.snapshot.reserved_mem
    assert rm is not None
    tracked = {e.name: (e.base, e.size) for e in rm.entries}
    assert tracked["hi-carveout@110000000"] == (0x110000000, 16 << 20)
    assert tracked["hi-fw@120000000"] == (0x120000000, 2 << 20)
    base, size = tracked["hi-pool"]
    assert 0x100000000 <= base and base + size <= 0x140000000 and base % (2 << 20) == 0
    assert [(a.name, a.base >= 1 << 32) for a in d.snapshot.cma or []] == [("linux,cma", True)]
    assert checks.run(d.snapshot).exit_status() == 0


def _verdicts(data: DumpData) -> tuple[set[tuple[str, str | None, str]], list[tuple]]:
    report = checks.run(data.snapshot)
    views = [(v.name, v.base, v.size, v.tracked, v.reserved, v.verdict) for v in report.regions]
    return {(f.code, f.region, f.severity) for f in report.findings}, views


@pytest.mark.parametrize("series", SERIES)
def test_kaslr_moves_the_kernel_not_the_verdicts(series: str) -> None:
    assert SCENARIOS["kaslr"].kaslr_seed == KASLR_OTHER_SEED != KASLR_SEED
    base, moved = dump_data(series, "baseline"), dump_data(series, "kaslr")
    assert base.vmcoreinfo["KERNELOFFSET"] != moved.vmcoreinfo["KERNELOFFSET"]
    # the linear map moves with the seed on 6.1 and 6.12, not on 7.x
    same_linear = base.vmcoreinfo["NUMBER(PHYS_OFFSET)"] == moved.vmcoreinfo["NUMBER(PHYS_OFFSET)"]
    assert same_linear == (series == "7.x")
    assert _verdicts(base) == _verdicts(moved)
    virt = {lm.region: lm.virt for lm in base.snapshot.linear_map or []}
    virt_moved = {lm.region: lm.virt for lm in moved.snapshot.linear_map or []}
    assert virt.keys() == virt_moved.keys() and virt
    assert (virt == virt_moved) == same_linear


@pytest.mark.parametrize("series", SERIES)
def test_memreserve(series: str) -> None:
    d = dump_data(series, "memreserve")
    fdt = d.snapshot.fdt
    assert fdt is not None and fdt.mem_reserve == list(MEMRESERVE)
    mb = d.snapshot.memblock
    assert mb is not None
    reserved = RangeSet.of_memblock(mb.reserved)
    assert all(reserved.covers(b, s) for b, s in MEMRESERVE)
    nomap = RangeSet.of_memblock(mb.memory, mb.flag_values["MEMBLOCK_NOMAP"])
    report = checks.run(d.snapshot)
    missing = [f for f in report.findings if f.code == "RMEM-NOMAP-MISSING"]
    if series == "6.1":
        # /memreserve/ is reserved before the scan: the no-map over it is refused
        assert not nomap.overlaps(0x5F000000, 1 << 20)
        (f,) = missing
        assert f.evidence["reserved_before"] == ["/memreserve/ 0x5f000000..0x5f0fffff (1 MiB)"]
        assert "by /memreserve/ 0x5f000000" in f.message
    else:
        # 6.12+ reserve /memreserve/ after the scan: the no-map goes through
        assert nomap.covers(0x5F000000, 1 << 20) and not missing
    # crashkernel= and cma= reserve memory beside reserved_mem: nothing to report
    assert "crashkernel=64M" in (d.snapshot.kernel.cmdline or "")
    assert [a.name for a in d.snapshot.cma or []] == ["reserved"]


def _kernel_config(data: DumpData, tmp: Path) -> str | None:
    """The .config Debian ships in the kernel's image package (boot/config-VER), if any."""
    for p in data.manifest.packages:
        if p["name"].endswith("-dbg"):
            continue  # the debug package holds the vmlinux, never the .config
        deb = default_cache() / "debs" / p["file"]
        listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True)
        for line in listing.stdout.splitlines():
            member = line.split()[-1]
            if re.search(r"/boot/config-[^/]+$", member):
                subprocess.run(
                    f"dpkg-deb --fsys-tarfile '{deb}' | tar -x -C '{tmp}' '{member}'",
                    shell=True,
                    check=True,
                )
                return str(tmp / member)
    return None


@pytest.mark.parametrize("series", SERIES)
def test_mt8192_names_the_kernel_it_lacks(series: str, tmp_path: Path) -> None:
    """mt8192-asurada's restricted-dma-pool on Debian's kernels: the kernel logged neither
    an init nor a failure for it, kept it tracked with ops NULL; every path names the
    missing option, read from the kernel's own handler table, and preflight predicts the
    same from the kernel's .config (where its package ships one) and from its vmlinux."""
    data = dump_data(series, "mt8192")
    assert not [x for x in data.log if "node wifi@c0000000" in x]  # no init, no failure
    reports = [checks.run(data.snapshot)]
    if series != "6.1":  # Debian's 6.1 has no KALLSYMS_ALL: no BTF path
        prog = open_vmcore(str(data.manifest.path("vmcore")), types="btf")
        reports.append(checks.run(inspect(prog)))
    dtb = data.manifest.path("dtb").read_bytes()
    vmlinux = open_table_image(str(data.manifest.path("vmlinux")))
    reports.append(preflight(dtb, series, handlers=read_reservedmem_table(vmlinux)).report)
    config = _kernel_config(data, tmp_path)
    if config is not None:
        options = parse_config(Path(config).read_text())
        assert "CONFIG_DMA_RESTRICTED_POOL" not in options  # "# ... is not set"
        decls = declarations_from_config(options)
        handlers = [RmemHandler(d.name, d.compatible) for d in decls]
        reports.append(preflight(dtb, series, handlers=handlers).report)
    assert len(reports) == 2 + (series != "6.1") + (config is not None)
    for report in reports:
        (f,) = [f for f in report.findings if f.severity != "info"]
        assert (f.code, f.region) == ("RMEM-NO-HANDLER", "wifi@c0000000")
        assert f.evidence["missing"] == ["CONFIG_DMA_RESTRICTED_POOL"]
        assert "CONFIG_DMA_RESTRICTED_POOL" in f.message and "kernel/dma/swiotlb.c" in f.message
