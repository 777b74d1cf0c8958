# SPDX-License-Identifier: GPL-2.0-or-later
"""
Real kdump captures read like the QEMU ELF dump of the same boot setup.

The factory (``vmcores/kdump.py``) boots each scenario with ``crashkernel=256M``,
panics it and lets the capture kernel write every format kdump produces from
that one capture. For every format built, the (code, region, severity) findings,
the regions and the kernel summary (init-array evidence included) must equal
those of the QEMU ELF dump of the same DT. A missing capture fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rmem_inspect import checks
from rmem_inspect.collect.program import open_vmcore
from rmem_inspect.collect.snapshot import inspect
from rmem_inspect.output.json_report import report_json
from tests.dumps import manifest_for, reencode_snappy
from vmcores.kdump import JOBS, KDUMP_SCENARIOS
from vmcores.manifest import DumpManifest, default_cache

pytestmark = pytest.mark.vmcore

SERIES = ("6.1", "6.12", "7.x")
PAIRS = [(s, sc) for s in SERIES for sc in KDUMP_SCENARIOS]
#: Debian trixie's makedumpfile 1.7.6 refuses the 6.12 and 7.x arm64 kernels (4K pages
#: with 52-bit VA); there kdump-tools keeps the plain copy of /proc/vmcore, and so do we.
MAKEDUMPFILE_REFUSES = {"6.12", "7.x"}
REFUSAL = "not supported"

#: What legitimately differs between a QEMU dump and a kdump capture of the same DT: only
#: ``source``, which names the file, its format, compression and dump level. Everything
#: else was seen equal on every capture: the boot log's region lines (the crashkernel=
#: boot adds its own lines, none about these regions), CMA areas and their usage (a
#: busybox guest allocates nothing from CMA before the panic), devices and consumers.
#: memblock's crashkernel reservation ("crashkernel reserved: 0x5f800000 - 0x6f800000" on
#: the 6.1 boots; arm64 reserves it after the reserved-memory scan) adds no region and
#: changes no finding: the tool reports regions the DT or reserved_mem name.
DIFFERING = ("source",)


def _report(vmcore: Path, vmlinux: Path) -> dict[str, Any]:
    prog = open_vmcore(str(vmcore), str(vmlinux))
    snap = inspect(prog, source={"kind": "vmcore", "vmcore": str(vmcore)})
    return report_json(checks.run(snap))


_QEMU: dict[tuple[str, str], dict[str, Any]] = {}


def _qemu_report(series: str, scenario: str) -> dict[str, Any]:
    if (series, scenario) not in _QEMU:
        m = manifest_for(series, scenario)
        _QEMU[series, scenario] = _report(m.path("vmcore"), m.path("vmlinux"))
    return _QEMU[series, scenario]


def _captures(series: str, scenario: str) -> tuple[Path, list[DumpManifest]]:
    release = manifest_for(series, scenario).kernel_release
    d = default_cache() / "kdump" / release / scenario
    found = [DumpManifest.load(p) for p in sorted(d.glob("*/manifest.json"))]
    if not found:
        pytest.fail(f"no kdump capture for {series}/{scenario} in {d}: run python -m vmcores.build")
    return d, found


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in report.items() if k not in DIFFERING}
    out["findings"] = sorted(
        (f["code"], f["region"] or "", f["severity"]) for f in report["findings"]
    )
    return out


@pytest.mark.parametrize(("series", "scenario"), PAIRS, ids=[f"{s}-{sc}" for s, sc in PAIRS])
def test_every_format_reads_like_the_qemu_dump(series: str, scenario: str) -> None:
    d, manifests = _captures(series, scenario)
    want = _comparable(_qemu_report(series, scenario))
    formats = {m.capture.split(":", 1)[1]: m for m in manifests}
    if series in MAKEDUMPFILE_REFUSES:
        # The field's situation on these kernels: makedumpfile refused, the copy is kept.
        assert set(formats) == {"vmcore-copy"}
        assert REFUSAL in (d / "kdump.log").read_text(errors="replace")
    else:
        assert set(formats) == {j.name for j in JOBS}
    files = [(name, m.path("vmcore"), m) for name, m in formats.items()]
    files += [(f"{n} flattened", m.path("flattened"), m) for n, m in formats.items()
              if "flattened" in m.paths]  # fmt: skip
    assert files
    for name, path, m in files:
        got = _report(path, m.path("vmlinux"))
        assert _comparable(got) == want, f"{series}/{scenario} {name} differs from the QEMU dump"
        src = got["source"]
        # ELF headers do not record makedumpfile's dump level: the report says None.
        assert src["dump_level"] == (m.dump_level if m.dump_format == "kdump" else None), name
        assert src["compression"] == m.compression, name
        assert src["format"].endswith("kdump-compressed" if m.dump_format == "kdump" else "ELF")


@pytest.mark.parametrize("series", SERIES)
def test_init_array_evidence_is_identical_across_dump_kinds(series: str) -> None:
    """kexec-tools maps the kernel image in its elfcorehdr, so a freed init array reads back
    from ELF kdump dumps; the verdict comes from the page tables, so it does not differ."""
    want = _qemu_report(series, "overflow")["kernel"].get("init_array")
    _d, manifests = _captures(series, "overflow")
    for m in manifests:
        got = _report(m.path("vmcore"), m.path("vmlinux"))["kernel"].get("init_array")
        assert got == want, m.capture
    if series != "6.1":
        assert want is not None and want["readable"] is False


def test_capture_records_what_it_ran() -> None:
    d, manifests = _captures("6.1", "overflow")
    stamp = json.loads((d / "capture.json").read_text())
    assert set(stamp["jobs"]) == {j.name for j in JOBS}
    for m in manifests:
        assert m.capture_tools and {p["name"] for p in m.capture_tools} >= {
            "kexec-tools",
            "makedumpfile",
        }
        (job,) = [j for j in JOBS if m.capture == f"kdump:{j.name}"]
        # what the dump's own header says, against what the job asked makedumpfile for
        assert (m.dump_format, m.compression, m.dump_level) == (
            job.format,
            job.compression,
            job.level,
        )


def test_batch_reads_kdump_dumps(tmp_path: Path) -> None:
    """batch treats compressed, flattened and ELF kdump dumps as dumps; each vmlinux is
    found by the build-id in the dump's own VMCOREINFO (kdump header or ELF note)."""
    from rmem_inspect.batch import run_batch
    from tests.expected import expected_findings

    _d, six_one = _captures("6.1", "overflow")
    by_job = {m.capture.split(":", 1)[1]: m for m in six_one}
    _d, six_twelve = _captures("6.12", "overflow")
    files = {
        "zlib.kdump": by_job["zlib-d31"].path("vmcore"),
        "zlib.flat": by_job["zlib-d31"].path("flattened"),
        "zstd.kdump": by_job["zstd-d31"].path("vmcore"),
        "copy-6.12.vmcore": six_twelve[0].path("vmcore"),
    }
    series = {"copy-6.12.vmcore": "6.12"}
    for name, src in files.items():
        (tmp_path / name).symlink_to(src)
    results, _seconds = run_batch(
        str(tmp_path), debug_dirs=[str(default_cache() / "kernels")], jobs=1, jsonl=None
    )
    assert sorted(Path(r.path).name for r in results) == sorted(files)
    for r in results:
        assert r.status == "ok", (r.path, r.error)
        assert r.build_id and r.vmlinux and Path(r.vmlinux).is_file()
        want = expected_findings("overflow", series.get(Path(r.path).name, "6.1"))
        assert {(c, n) for c, n in r.findings} == want, r.path


def test_snappy_pages_are_read(tmp_path: Path) -> None:
    """Debian's makedumpfile has no snappy, so a real uncompressed capture (-d 31) is
    re-encoded here with every page flagged DUMP_DH_COMPRESSED_SNAPPY (0x4) in its page
    descriptor and header status: drgn's libkdumpfile must decompress it, and the
    report must equal the QEMU dump's."""
    _d, manifests = _captures("6.1", "overflow")
    (m,) = [x for x in manifests if x.capture == "kdump:plain-d31"]
    snappy = reencode_snappy(m.path("vmcore"), tmp_path / "vmcore.snappy")
    got = _report(snappy, m.path("vmlinux"))
    assert got["source"]["compression"] == "snappy"
    assert _comparable(got) == _comparable(_qemu_report("6.1", "overflow"))
