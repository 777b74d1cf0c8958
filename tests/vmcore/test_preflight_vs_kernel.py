# SPDX-License-Identifier: GPL-2.0-or-later
"""
preflight's predictions against what the real kernels did: for every factory
dump, the DTB the guest booted with is preflighted with the layout of its kernel
series and compared with the checks on the dump itself. The kernel is named three
ways, each of which must give the real verdicts: the series alias, the upstream
version of the kernel package the dump booted (``7.3.4``) and its ``X.Y`` (``7.3``).
"""

from __future__ import annotations

import functools
import re

import pytest

from rmem_inspect import checks
from rmem_inspect.formats.of_table import open_table_image, read_reservedmem_table
from rmem_inspect.model import RmemHandler
from rmem_inspect.preflight import preflight
from tests.conftest import MATRIX, MATRIX_IDS
from tests.vmcore.conftest import dump_data

pytestmark = pytest.mark.vmcore

#: What a DTB (and the command line) alone decides: RMEM-NOMAP-MAPPED needs the page
#: tables, RMEM-CMA-MISSING and RMEM-NO-INIT the kernel's config, consumers the drivers.
CODES = (
    "RMEM-DROPPED",
    "RMEM-UNALLOCATED",
    "RMEM-UNTRACKED",
    "RMEM-OVERLAP",
    "RMEM-NOMAP-MISSING",
    "RMEM-NOT-RESERVED",
    "RMEM-OUTSIDE-RAM",
    "RMEM-DT-FORMAT",
    "RMEM-ARRAY-NOT-DYNAMIC",
    "RMEM-STATIC-ARRAY",
)
#: Kernel log lines of drivers/of/of_reserved_mem.c, drivers/of/fdt.c and the
#: reserved-memory drivers of kernel/dma (the second line of "OVERLAP DETECTED!").
LOG_MARKERS = ("OF: reserved mem:", "OF: fdt:", "Reserved memory:", " overlaps with ")


def kernel_names(series: str, packages: list[dict]) -> list[str]:
    """The series alias, and X.Y.Z and X.Y of the Debian kernel package's upstream version."""
    image = next(p for p in packages if p["name"].startswith(("linux-image", "linux-binary")))
    upstream = image["version"].split("-")[0]  # 7.3.4-1~bpo13+1 -> 7.3.4
    assert re.fullmatch(r"\d+\.\d+\.\d+", upstream), image
    return [series, upstream, upstream.rsplit(".", 1)[0]]


@functools.cache
def _handlers(vmlinux: str) -> list[RmemHandler]:
    return read_reservedmem_table(open_table_image(vmlinux))


@pytest.mark.parametrize(("series", "scenario"), MATRIX, ids=MATRIX_IDS)
@pytest.mark.parametrize("form", range(3), ids=("alias", "version", "major-minor"))
def test_preflight_predicts_the_kernel(series: str, scenario: str, form: int) -> None:
    data = dump_data(series, scenario)
    real = checks.run(data.snapshot)
    kernel = kernel_names(series, data.manifest.packages)[form]
    # the command line QEMU gave the kernel (its mem= cuts memory before the scan)
    cmd = data.manifest.qemu_command
    cmdline = cmd[cmd.index("-append") + 1]
    # the handlers this kernel was built with, read from its vmlinux (as --vmlinux does)
    result = preflight(
        data.manifest.path("dtb").read_bytes(),
        kernel,
        cmdline=cmdline,
        handlers=_handlers(str(data.manifest.path("vmlinux"))),
    )

    def pairs(report: checks.Report) -> set[tuple[str, str | None, str]]:
        return {(f.code, f.region, f.severity) for f in report.findings if f.code in CODES}

    assert pairs(result.report) == pairs(real)
    assert data.snapshot.reserved_mem is not None and result.snapshot.reserved_mem is not None
    predicted = {e.name: (e.base, e.size) for e in result.snapshot.reserved_mem.entries}
    actual = {e.name: (e.base, e.size) for e in data.snapshot.reserved_mem.entries}
    assert predicted == actual
    # Every reserved-memory line of the kernel log is predicted word for word.
    want = {line for line in data.log if any(m in line for m in LOG_MARKERS)}
    got = {line for line in result.log if any(m in line for m in LOG_MARKERS)}
    assert got == want
