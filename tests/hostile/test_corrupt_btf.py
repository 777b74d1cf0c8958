# SPDX-License-Identifier: GPL-2.0-or-later
"""
Corrupt BTF in a real 6.12 dump, read without a vmlinux (``--types btf``): a blob
that fails the reader's checks is one line and exit 2; a record that is only
found bad when the collectors need its type becomes a missing source in the
report, with the reader's sentence (never a traceback, never "the kernel has no
reserved_mem").
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from rmem_inspect.formats.btf import Btf
from tests.dumps import manifest_for
from tests.hostile.conftest import (
    DumpLayout,
    assert_one_line_error,
    file_state,
    patch,
    run_cli,
    sparse_copy,
)

pytestmark = pytest.mark.vmcore


def _btf_in_dump() -> tuple[Path, DumpLayout, int, Btf]:
    from rmem_inspect.collect.program import open_vmcore

    m = manifest_for("6.12", "baseline")
    prog = open_vmcore(str(m.path("vmcore")), types="btf")
    start = prog.symbol("__start_BTF").address
    stop = prog.symbol("__stop_BTF").address
    btf = Btf(prog.read(start, stop - start))
    del prog
    return m.path("vmcore"), DumpLayout(m.path("vmcore")), start, btf


def test_bad_magic_and_absurd_section_are_one_line(tmp_path: Path) -> None:
    vmcore, layout, start, _ = _btf_in_dump()
    copy = sparse_copy(vmcore, tmp_path / "vmcore")
    at = layout.image_va_to_offset(start)
    assert patch(copy, at, b"\x00\x00") == struct.pack("<H", 0xEB9F)
    before = file_state(copy)
    assert_one_line_error(
        run_cli("check", "--vmcore", copy, "--types", "btf"),
        "is not valid: not BTF: magic 0x0000, expected 0xeb9f",
        "pass --vmlinux",
    )
    assert file_state(copy) == before
    patch(copy, at, struct.pack("<H", 0xEB9F))
    patch(copy, at + 12, struct.pack("<I", 0xFFFFFFF0))  # type_len
    assert_one_line_error(
        run_cli("check", "--vmcore", copy, "--types", "btf"),
        "BTF type section",
        "runs past the blob",
    )


def test_a_bad_record_is_a_missing_source_not_a_crash(tmp_path: Path) -> None:
    vmcore, layout, start, btf = _btf_in_dump()
    [rm] = [t for t in btf.find("struct", "reserved_mem") if btf.type(t).kind == 4]
    # struct reserved_mem's first member (name): its type id now points past the last type
    member0 = start + 24 + btf.record_offset(rm) + 12
    copy = sparse_copy(vmcore, tmp_path / "vmcore")
    patch(copy, layout.image_va_to_offset(member0) + 4, struct.pack("<I", btf.count + 1000))
    res = run_cli("report", "--vmcore", copy, "--types", "btf", "--format", "json")
    assert "Traceback" not in res.stderr and res.stderr == "", res.stderr
    report = json.loads(res.stdout)
    assert "CONFIG_OF_RESERVED_MEM" not in json.dumps(report)
    # as for any source that cannot be read: a finding that says why, the checks it
    # stops listed as skipped (the exit status follows the findings' severities)
    [missing] = [f for f in report["findings"] if f["code"] == "RMEM-SOURCE-MISSING"]
    assert missing["evidence"]["source"] == "reserved_mem"
    assert f"member 0 has type {btf.count + 1000}" in missing["message"]
    assert "BtfError" in missing["message"]
    [(codes, why)] = [(k, v) for k, v in report["skipped"].items() if "RMEM-DROPPED" in k]
    assert why == "reserved_mem"
    assert {"RMEM-COUNT-CORRUPT", "RMEM-STATIC-ARRAY", "RMEM-NO-INIT"} <= set(codes.split(", "))
    assert res.returncode in (0, 1)
