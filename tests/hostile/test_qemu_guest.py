# SPDX-License-Identifier: GPL-2.0-or-later
"""
One real guest boot for the inputs the factory does not make: the 6.12 kernel
with the baseline scenario plus 10,000 extra devicetree nodes, dumped twice over
QMP while stopped, as QEMU's kdump-compressed ``-z`` form (``kdump-zlib``, which
libkdumpfile cannot translate for arm64) and as an ELF vmcore.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rmem_inspect import checks
from rmem_inspect.formats.fdt import parse_fdt
from rmem_inspect.model import Snapshot
from tests.expected import expected_findings
from tests.hostile.conftest import (
    BULK_NODES,
    assert_one_line_error,
    bulk_dts,
    count_nodes,
    file_state,
    manifest_for,
    run_cli,
)
from vmcores.build import Guest
from vmcores.debian import Kernel
from vmcores.qmp import QMPClient

pytestmark = pytest.mark.vmcore

SERIES = "6.12"
SCENARIO = "baseline"


@dataclass
class GuestDumps:
    dtb: Path
    elf: Path
    kdump: Path
    vmlinux: Path


@pytest.fixture(scope="module")
def guest_dumps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuestDumps]:
    m = manifest_for(SERIES, SCENARIO)
    kernel_json = m.path("debug_root").parent / "kernel.json"  # written by fetch_kernel
    kernel = Kernel.from_json(json.loads(kernel_json.read_text()))
    work = tmp_path_factory.mktemp("guest")
    dts = work / "board.dts"
    dts.write_text(m.path("dts").read_text() + bulk_dts())
    dtb = work / "board.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", dtb, dts], check=True)
    guest = Guest(kernel, m.path("initramfs"), dtb, work)
    elf, kdump = work / "vmcore", work / "vmcore.kdump"
    t0 = time.monotonic()
    try:
        guest.start()
        guest.wait_ready(300)
        qmp = QMPClient(str(guest.qmp_path), timeout=300)
        try:
            qmp.execute("stop")
            qmp.execute(
                "dump-guest-memory",
                {"paging": False, "protocol": f"file:{kdump}", "format": "kdump-zlib"},
            )
            qmp.execute("dump-guest-memory", {"paging": False, "protocol": f"file:{elf}"})
        finally:
            qmp.close()
    finally:
        guest.stop()
    subprocess.run(["fallocate", "--dig-holes", str(elf)], check=False)
    print(f"guest boot and two dumps: {time.monotonic() - t0:.1f} s")
    yield GuestDumps(dtb=dtb, elf=elf, kdump=kdump, vmlinux=m.path("vmlinux"))
    elf.unlink(missing_ok=True)
    kdump.unlink(missing_ok=True)


def test_qemu_kdump_compressed(guest_dumps: GuestDumps) -> None:
    before = file_state(guest_dumps.kdump)
    res = run_cli("check", "--vmcore", guest_dumps.kdump, "--vmlinux", guest_dumps.vmlinux)
    assert_one_line_error(
        res, str(guest_dumps.kdump), "kdump-compressed", "QEMU", "libkdumpfile", "without -z"
    )
    assert file_state(guest_dumps.kdump) == before
    # And drgn itself indeed cannot open it (the claim in the message).
    import drgn

    prog = drgn.Program()
    with pytest.raises(Exception):  # noqa: B017 - libkdumpfile errors vary in type
        prog.set_core_dump(str(guest_dumps.kdump))


def test_ten_thousand_node_tree(guest_dumps: GuestDumps) -> None:
    expect_nodes = count_nodes(parse_fdt(guest_dumps.dtb.read_bytes()).root)
    assert expect_nodes > BULK_NODES
    t0 = time.monotonic()
    res = run_cli("snapshot", "--vmcore", guest_dumps.elf, "-o", "-")
    elapsed = time.monotonic() - t0
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    snap = json.loads(res.stdout)
    assert snap["missing"] == {}
    assert snap["dt"]["errors"] == [] and snap["fdt"]["errors"] == []
    assert elapsed < 120
    # The same verdicts as the factory's baseline dump: the extra nodes change nothing.
    report = checks.run(Snapshot.loads(res.stdout))
    pairs = {(f.code, f.region) for f in report.findings if f.severity != "info"}
    assert pairs == expected_findings(SCENARIO, SERIES)
    assert report.exit_status() == 0
    # Every node of the unflattened tree was walked (the count comes from the DTB).
    from rmem_inspect.collect.of_tree import read_of_tree
    from rmem_inspect.collect.program import open_vmcore

    prog = open_vmcore(str(guest_dumps.elf), str(guest_dumps.vmlinux))
    errors: list[str] = []
    root = read_of_tree(prog, errors)
    assert root is not None and errors == []
    # Compare the /bulk subtree exactly and the whole tree as a lower bound (the
    # kernel may add nodes of its own at boot).
    bulk = [c for c in root.children if c.name == "bulk"]
    assert len(bulk) == 1 and len(bulk[0].children) == BULK_NODES
    assert count_nodes(root) >= expect_nodes
