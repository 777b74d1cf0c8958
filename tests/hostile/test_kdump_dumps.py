# SPDX-License-Identifier: GPL-2.0-or-later
"""
Damaged and filtered kdump-compressed dumps, made from the factory's real kdump
captures (``vmcores/kdump.py``): a cut copy is one clear line, and a dump whose
dump level left out the pages a verdict needs says which pages, never "ok".

The page exclusion edits a copy the way makedumpfile would have written it had
its dump level dropped those pages: the page's bit in the second bitmap is
cleared and its page descriptor removed (descriptors follow the bitmaps, one per
kept page in pfn order). The headers are parsed here with ``struct`` from
makedumpfile's diskdump_mod.h layout, independently of rmem_inspect.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from tests.hostile.conftest import (
    DumpLayout,
    assert_one_line_error,
    file_state,
    manifest_for,
    patch,
    run_cli,
    sparse_copy,
)
from vmcores.manifest import DumpManifest, default_cache

pytestmark = pytest.mark.vmcore

PAGE_DESC = 24
#: disk_dump_header (64-bit): status, block_size, sub_hdr_size, bitmap_blocks at 424.
HEADER_FIELDS = 424


def _capture(job: str) -> DumpManifest:
    release = manifest_for("6.1", "overflow").kernel_release
    path = default_cache() / "kdump" / release / "overflow" / job / "manifest.json"
    if not path.exists():
        pytest.fail(f"no kdump capture {path}: run python -m vmcores.build")
    return DumpManifest.load(path)


def _exclude(path: Path, pfns: list[int]) -> None:
    with open(path, "r+b") as f:
        head = f.read(HEADER_FIELDS + 16)
        _status, bs, sub, blocks = struct.unpack_from("<IiiI", head, HEADER_FIELDS)
        bitmap = bs * (1 + sub)
        half = bs * blocks // 2
        f.seek(bitmap + half)
        bits = bytearray(f.read(half))
        total = int.from_bytes(bits, "little").bit_count()
        pd_off = bitmap + 2 * half
        f.seek(pd_off)
        descs = bytearray(f.read(total * PAGE_DESC))
        for pfn in sorted(pfns, reverse=True):
            assert bits[pfn >> 3] & (1 << (pfn & 7)), f"pfn {pfn:#x} is not in the dump"
            index = int.from_bytes(bits, "little") & ((1 << pfn) - 1)
            k = index.bit_count()
            del descs[k * PAGE_DESC : (k + 1) * PAGE_DESC]
            descs += bytes(PAGE_DESC)
            bits[pfn >> 3] &= ~(1 << (pfn & 7)) & 0xFF
        f.seek(bitmap + half)
        f.write(bits)
        f.seek(pd_off)
        f.write(descs)


def _reserved_mem_pfns(m: DumpManifest) -> list[int]:
    """The physical pages of the 6.1 static ``reserved_mem`` array, from the QEMU dump."""
    from drgn import sizeof
    from drgn.helpers.linux.mm import follow_phys

    from rmem_inspect.collect.program import open_vmcore

    q = manifest_for("6.1", "overflow")
    prog = open_vmcore(str(q.path("vmcore")), str(q.path("vmlinux")))
    rm = prog.variable("reserved_mem", "of_reserved_mem.c")
    init_mm = prog["init_mm"].address_of_()
    first, last = rm.address_, rm.address_ + sizeof(rm) - 1
    pfns = {follow_phys(init_mm, a).value_() >> 12 for a in (first, last)}
    return sorted(pfns)


@pytest.mark.parametrize("size", [4096, 8192, 1 << 20, "half"])
def test_truncated_compressed(tmp_path: Path, size: int | str) -> None:
    m = _capture("zlib-d31")
    src = m.path("vmcore")
    full = src.stat().st_size
    cut_at = full // 2 if size == "half" else int(size)
    cut = tmp_path / "vmcore"
    with open(src, "rb") as a, open(cut, "wb") as b:
        b.write(a.read(cut_at))
    line = assert_one_line_error(
        run_cli("check", "--vmcore", cut, "--vmlinux", m.path("vmlinux")), str(cut), "truncated"
    )
    assert str(cut_at) in line and "again" in line


def test_flattened_cut_short(tmp_path: Path) -> None:
    m = _capture("zlib-d31")
    src = m.path("flattened")
    cut = tmp_path / "vmcore.flat"
    with open(src, "rb") as a, open(cut, "wb") as b:
        b.write(a.read(src.stat().st_size // 2))
    assert_one_line_error(
        run_cli("check", "--vmcore", cut, "--vmlinux", m.path("vmlinux")), str(cut), "flattened"
    )


def test_flattened_elf_is_reassembled_aside(tmp_path: Path) -> None:
    """makedumpfile -E -F output is reassembled into a temporary file, never in place."""
    m = _capture("elf-d31")
    flat = tmp_path / "vmcore.flat"
    # Re-flatten the reassembled ELF dump: one record per 1 MiB, as makedumpfile writes.
    with open(m.path("vmcore"), "rb") as a, open(flat, "wb") as b:
        b.write(b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1))
        b.write(bytes(4096 - 32))
        off = 0
        while chunk := a.read(1 << 20):
            if chunk.count(0) != len(chunk):
                b.write(struct.pack(">qq", off, len(chunk)) + chunk)
            off += len(chunk)
        b.write(struct.pack(">qq", -1, -1))
    before = file_state(flat)
    res = run_cli("report", "--vmcore", flat, "--vmlinux", m.path("vmlinux"), "--format", "json")
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert file_state(flat) == before
    assert json.loads(res.stdout)["source"]["format"] == "flattened ELF"
    assert not list(tmp_path.glob("rmem-inspect-*"))


def test_excluded_pages_are_named(tmp_path: Path) -> None:
    m = _capture("zlib-d31")
    pfns = _reserved_mem_pfns(m)
    copy = tmp_path / "vmcore"
    shutil.copyfile(m.path("vmcore"), copy)
    _exclude(copy, pfns)
    res = run_cli("report", "--vmcore", copy, "--vmlinux", m.path("vmlinux"), "--format", "json")
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    (f,) = [
        x
        for x in report["findings"]
        if x["code"] == "RMEM-SOURCE-MISSING" and x["evidence"].get("source") == "dump pages"
    ]
    for pfn in pfns:
        assert f"pfn {pfn:#x}" in f["message"]
    assert "excluded" in f["message"] and "dump level 31" in f["message"]
    assert "reserved_mem" in f["message"]
    # The array itself did not read: it is reported, not turned into "ok", and as data
    # the dump does not hold, not as corruption.
    assert report["summary"]["error"] + report["summary"]["warning"] > 0
    codes = {x["code"] for x in report["findings"]}
    assert "RMEM-COUNT-CORRUPT" not in codes, sorted(codes)
    (absent,) = [x for x in report["findings"] if x["code"] == "RMEM-ARRAY-NOT-DUMPED"]
    assert "not in the dump" in absent["message"]
    for pfn in pfns:
        assert f"pfn {pfn:#x}" in absent["message"]


def test_garbage_kernel_text_segment(tmp_path: Path) -> None:
    """kexec-tools without ``_text`` in /proc/kallsyms writes a kernel-text PT_LOAD of
    garbage: /proc/vmcore then claims ~16 EiB. Made here from a real /proc/vmcore copy by
    giving the PT_LOAD at vaddr ``_text`` (the kernel image) such a size."""
    m = _capture("vmcore-copy")
    copy = sparse_copy(m.path("vmcore"), tmp_path / "vmcore")
    layout = DumpLayout(copy)
    (text,) = [s for s in layout.segments if s.vaddr >= 0xFFFF000000000000 and s.vaddr
               and s.vaddr - layout.kimage_voffset == s.paddr]  # fmt: skip
    # Elf64_Phdr: p_filesz at +32, p_memsz at +40.
    garbage = struct.pack("<QQ", 0xFFFFFFFFFFFF0000 - text.offset, 0xFFFFFFFFFFFF0000)
    patch(copy, text.header_offset + 32, garbage)
    line = assert_one_line_error(
        run_cli("check", "--vmcore", copy, "--vmlinux", m.path("vmlinux")), str(copy), "_text"
    )
    assert "kexec" in line and "CONFIG_KALLSYMS_ALL" in line


def test_undecodable_pages(tmp_path: Path) -> None:
    """Page data libkdumpfile cannot decompress is one line naming the compression."""
    from tests.dumps import reencode_snappy

    m = _capture("plain-d31")
    bad = reencode_snappy(m.path("vmcore"), tmp_path / "vmcore", damage=True)
    assert_one_line_error(
        run_cli("check", "--vmcore", bad, "--vmlinux", m.path("vmlinux")),
        str(bad),
        "cannot decompress the snappy pages",
        "damaged",
    )
