# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fixtures of the vmcore tier: the factory's real dumps, opened once each.

A missing dump fails the test (it does not skip): the tier's point is that every
(series, scenario) pair is checked on a real kernel. Build them with
``python -m vmcores.build``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from rmem_inspect.model import Snapshot
from tests.dumps import manifest_for
from vmcores.manifest import DumpManifest


@dataclass
class DumpData:
    manifest: DumpManifest
    #: init_uts_ns.name.release read from the dump.
    release: str
    #: VMCOREINFO of the dump as drgn reads it.
    vmcoreinfo: dict[str, str]
    #: Every printk record's text, one line each, from the dump.
    log: list[str]
    snapshot: Snapshot
    #: (text, ts_nsec) of every printk record: drgn's get_printk_records(), and
    #: rmem_inspect's own reader of the ring (collect/kmsg.py).
    records: list[tuple[bytes, int]]
    lockless_records: list[tuple[bytes, int]] | None


_CACHE: dict[tuple[str, str], DumpData] = {}


def dump_data(series: str, scenario: str) -> DumpData:
    """Open the dump once per session; keep only what tests need (not the Program)."""
    key = (series, scenario)
    if key not in _CACHE:
        from drgn.helpers.linux.printk import get_printk_records

        from rmem_inspect.collect.kmsg import lockless_records
        from rmem_inspect.collect.program import open_vmcore
        from rmem_inspect.collect.snapshot import inspect

        m = manifest_for(series, scenario)
        prog = open_vmcore(str(m.path("vmcore")), str(m.path("vmlinux")))
        info = prog["VMCOREINFO"].string_().decode()
        vmcoreinfo = dict(line.split("=", 1) for line in info.splitlines() if "=" in line)
        records = get_printk_records(prog)
        log = [line for rec in records for line in rec.text.decode(errors="replace").splitlines()]
        _CACHE[key] = DumpData(
            manifest=m,
            release=prog["init_uts_ns"].name.release.string_().decode(),
            vmcoreinfo=vmcoreinfo,
            log=log,
            snapshot=inspect(prog, source={"kind": "vmcore", "vmcore": str(m.path("vmcore"))}),
            records=[(rec.text, rec.timestamp) for rec in records],
            lockless_records=lockless_records(prog),
        )
        del prog
    return _CACHE[key]


def strip_timestamp(line: str) -> str:
    return re.sub(r"^\[\s*\d+\.\d+\] ", "", line)


@pytest.fixture
def data(request: Any) -> DumpData:
    series, scenario = request.param
    return dump_data(series, scenario)
