# SPDX-License-Identifier: GPL-2.0-or-later
"""The vmcore factory's dumps: each opens with drgn, matches its manifest and
vmlinux, and shows what the kernel actually did (vmcores/facts.py)."""

from __future__ import annotations

import hashlib
import re

import pytest

from rmem_inspect.formats.elf import read_elf
from tests.conftest import MATRIX, MATRIX_IDS
from tests.vmcore.conftest import DumpData, strip_timestamp
from vmcores.facts import facts_for
from vmcores.scenarios import SCENARIOS

pytestmark = pytest.mark.vmcore


@pytest.mark.parametrize("data", MATRIX, ids=MATRIX_IDS, indirect=True)
def test_manifest_matches_dump(data: DumpData) -> None:
    m = data.manifest
    # The kernel inside the dump is the one the manifest names ...
    assert data.release == m.kernel_release
    assert data.vmcoreinfo["OSRELEASE"] == m.kernel_release
    # ... and the vmlinux the manifest points at was built from the same tree.
    vmlinux = read_elf(str(m.path("vmlinux")), sections=True)
    assert vmlinux.build_id and data.vmcoreinfo["BUILD-ID"] == vmlinux.build_id
    assert vmlinux.has_dwarf and vmlinux.arch == "arm64"
    assert hashlib.sha256(m.path("dtb").read_bytes()).hexdigest() == m.dtb_sha256
    names = [p["name"] for p in m.packages]
    assert any(n.endswith("-dbg") for n in names), names
    assert all(len(p["sha256"]) == 64 for p in m.packages)
    # Dumps are full ELF images of the guest's 1 GiB, kept sparse on disk.
    assert m.vmcore_bytes >= 1 << 30
    assert m.path("vmcore").stat().st_blocks * 512 < m.vmcore_bytes // 4


@pytest.mark.parametrize("data", MATRIX, ids=MATRIX_IDS, indirect=True)
def test_kernel_log_facts(data: DumpData) -> None:
    facts = facts_for(data.manifest.scenario, data.manifest.series)
    assert facts, "every scenario has recorded facts for every series"
    saved = [strip_timestamp(x) for x in data.manifest.path("dmesg").read_text().splitlines()]
    for fact in facts:
        pat = re.compile(fact.pattern)
        in_dump = sum(1 for line in data.log if pat.search(line))
        in_saved = sum(1 for line in saved if pat.search(line))
        assert in_dump == fact.count, f"{fact.pattern!r} ({fact.why}) in the dump's printk buffer"
        assert in_saved == fact.count, f"{fact.pattern!r} in the saved dmesg.txt"


@pytest.mark.parametrize("data", MATRIX, ids=MATRIX_IDS, indirect=True)
def test_boot_fdt_is_the_scenario(data: DumpData) -> None:
    """The FDT inside the dump is the scenario the factory generated."""
    scenario = SCENARIOS[data.manifest.scenario]
    fdt = data.snapshot.fdt
    assert fdt is not None
    assert fdt.has_reserved_memory == scenario.reserved_memory_node
    got = [(r.name, r.reg, r.size, r.status, r.nomap, r.reusable) for r in fdt.regions]
    want = [
        (r.node_name, list(r.reg), r.size, r.status or "okay", r.nomap, r.reusable)
        for r in scenario.regions
    ]
    assert got == want
    # The unflattened tree agrees with the blob.
    assert data.snapshot.dt is not None
    assert [r.name for r in data.snapshot.dt.regions] == [r.name for r in fdt.regions]
    consumers = {c.path for c in data.snapshot.dt.consumers}
    assert consumers == {f"/{c.name}" for c in scenario.consumers}
