# SPDX-License-Identifier: GPL-2.0-or-later
"""
Bad input from the user, built from the factory's real dumps: each gives exit
status 2 and one line that names what is wrong and what to do, never a
traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rmem_inspect.formats.elf import read_elf
from tests.hostile.conftest import (
    DumpLayout,
    assert_one_line_error,
    manifest_for,
    patch,
    run_cli,
    sparse_copy,
)

pytestmark = pytest.mark.vmcore

EM_X86_64 = 62


@pytest.fixture(scope="module")
def base() -> tuple[Path, Path]:
    m = manifest_for("6.1", "baseline")
    return m.path("vmcore"), m.path("vmlinux")


def test_dump_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-vmcore"
    assert_one_line_error(run_cli("check", "--vmcore", missing), "dump not found", str(missing))


def test_dump_is_a_directory(tmp_path: Path) -> None:
    # a directory is a raw RAM dump when it holds a load.cmm or dump_info.txt
    assert_one_line_error(
        run_cli("check", "--vmcore", tmp_path), "neither a load.cmm nor a dump_info.txt",
        str(tmp_path),
    )  # fmt: skip


@pytest.mark.parametrize("size", [0, 100, 4096, 64 << 20])
def test_truncated_dump(base: tuple[Path, Path], tmp_path: Path, size: int) -> None:
    vmcore, vmlinux = base
    cut = tmp_path / "vmcore"
    # A truncated copy: what an interrupted scp or a full disk leaves behind.
    with open(vmcore, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(min(size, 1 << 20)))
        dst.truncate(size)
    full = DumpLayout(vmcore)
    described = max(s.offset + s.filesz for s in full.segments)
    line = assert_one_line_error(run_cli("check", "--vmcore", cut, "--vmlinux", vmlinux), str(cut))
    if size == 0:
        assert "not an ELF file" in line
    else:
        assert "truncated" in line
    if size >= 4096:
        # Headers intact: the sizes are named, and what to do.
        assert str(size) in line and str(described) in line and "again" in line


def test_random_bytes(tmp_path: Path) -> None:
    junk = tmp_path / "random.bin"
    junk.write_bytes(os.urandom(1 << 16))
    assert_one_line_error(run_cli("check", "--vmcore", junk), "not an ELF file", str(junk))


def test_vmlinux_given_as_dump(base: tuple[Path, Path]) -> None:
    _vmcore, vmlinux = base
    etype = read_elf(str(vmlinux)).type  # ET_EXEC or ET_DYN (a relocatable kernel)
    assert etype in (2, 3)
    assert_one_line_error(
        run_cli("check", "--vmcore", vmlinux), "not a core dump", f"e_type {etype}", "--vmlinux"
    )


def test_vmcoreinfo_removed(base: tuple[Path, Path], tmp_path: Path) -> None:
    vmcore, vmlinux = base
    copy = sparse_copy(vmcore, tmp_path / "vmcore")
    layout = DumpLayout(copy)
    off = layout.vmcoreinfo_note_name_offset()
    assert patch(copy, off, b"XMCOREINFO") == b"VMCOREINFO"
    assert read_elf(str(copy)).vmcoreinfo is None
    # An ELF core without the note is raw RAM (its PT_LOADs at their physical
    # addresses): the kernel's VMCOREINFO page is found in it instead.
    res = run_cli("check", "--format", "json", "--vmcore", copy, "--vmlinux", vmlinux)
    assert res.returncode in (0, 1), res.stderr
    src = json.loads(res.stdout)["source"]
    assert src["kind"] == "ramdump" and src["format"] == "ELF without VMCOREINFO", src
    assert src["kernel_found"].startswith("VMCOREINFO page at phys"), src
    # With that page gone too, nothing identifies the kernel without a vmlinux.
    page = int(src["kernel_found"].split("phys ")[1].split()[0], 16)
    patch(copy, layout.phys_to_offset(page), bytes(4096))
    assert_one_line_error(run_cli("check", "--vmcore", copy), "no VMCOREINFO page", "--vmlinux")


def test_dump_of_another_architecture(base: tuple[Path, Path], tmp_path: Path) -> None:
    vmcore, _vmlinux = base
    copy = sparse_copy(vmcore, tmp_path / "vmcore")
    # e_machine is at offset 18 of the ELF header: the dump now claims x86_64.
    assert patch(copy, 18, struct.pack("<H", EM_X86_64)) == struct.pack("<H", 183)
    # Without --vmlinux the arm64 vmlinux is found by build-id, then refused.
    assert_one_line_error(
        run_cli("check", "--vmcore", copy), "architecture mismatch", "x86_64", "arm64"
    )


def test_vmlinux_missing(base: tuple[Path, Path], tmp_path: Path) -> None:
    vmcore, _vmlinux = base
    missing = tmp_path / "vmlinux"
    assert_one_line_error(
        run_cli("check", "--vmcore", vmcore, "--vmlinux", missing),
        "vmlinux not found",
        str(missing),
    )


def test_vmlinux_not_found_anywhere(base: tuple[Path, Path], tmp_path: Path) -> None:
    vmcore, _vmlinux = base
    info = read_elf(str(vmcore))
    assert info.vmcoreinfo is not None
    env = {"RMEM_INSPECT_CACHE": str(tmp_path), "RMEM_INSPECT_DEBUG_DIRS": str(tmp_path)}
    assert_one_line_error(
        run_cli("check", "--vmcore", vmcore, env=env),
        "no vmlinux with debug info found",
        info.vmcoreinfo["OSRELEASE"],
        info.vmcoreinfo["BUILD-ID"],
        "--vmlinux",
        # and why the kernel's own kallsyms and BTF cannot stand in (6.1)
        "CONFIG_KALLSYMS_ALL",
    )


def _hide_debug_sections(vmlinux: Path) -> int:
    """Rename every .debug_* section of a copy to .nodbg_* in the section-name table: the
    DWARF is then invisible to any ELF reader, as after strip --strip-debug (binutils
    cannot read Debian's arm64 vmlinux here and llvm-objcopy rejects its .rela.dyn)."""
    with open(vmlinux, "r+b") as f:
        ehdr = f.read(64)
        shoff = struct.unpack_from("<Q", ehdr, 40)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ehdr, 58)
        f.seek(shoff + shstrndx * shentsize)
        sh = f.read(shentsize)
        stroff, strsize = struct.unpack_from("<QQ", sh, 24)
        f.seek(stroff)
        strtab = bytearray(f.read(strsize))
        renamed = 0
        for i in range(shnum):
            f.seek(shoff + i * shentsize)
            name_off = struct.unpack_from("<I", f.read(4))[0]
            if strtab[name_off : name_off + 7] == b".debug_":
                strtab[name_off : name_off + 7] = b".nodbg_"
                renamed += 1
        f.seek(stroff)
        f.write(strtab)
    return renamed


def test_vmlinux_without_debug_info(base: tuple[Path, Path], tmp_path: Path) -> None:
    vmcore, vmlinux = base
    stripped = sparse_copy(vmlinux, tmp_path / "vmlinux")
    assert _hide_debug_sections(stripped) >= 5
    vm = read_elf(str(stripped), sections=True)
    assert not vm.has_dwarf and vm.build_id == read_elf(str(vmlinux), sections=True).build_id
    assert_one_line_error(
        run_cli("check", "--vmcore", vmcore, "--vmlinux", stripped),
        "no debug info",
        "-dbg package",
    )


def test_vmlinux_of_another_series(base: tuple[Path, Path]) -> None:
    vmcore, vmlinux = base
    other = manifest_for("6.12", "baseline").path("vmlinux")
    want = read_elf(str(vmcore)).vmcoreinfo
    assert want is not None
    have = read_elf(str(other), sections=True).build_id
    assert have and have != want["BUILD-ID"]
    assert_one_line_error(
        run_cli("check", "--vmcore", vmcore, "--vmlinux", other),
        have,
        want["BUILD-ID"],
        "another build",
    )


def test_bad_snapshot_file(tmp_path: Path) -> None:
    bad = tmp_path / "board.json"
    bad.write_text('{"schema": 1, "kernel": {"release": 5}}')
    assert_one_line_error(run_cli("check", "--snapshot", bad), "not a valid snapshot", str(bad))
    bad.write_bytes(os.urandom(256))
    assert_one_line_error(run_cli("check", "--snapshot", bad), "not a valid snapshot")
    assert_one_line_error(
        run_cli("check", "--snapshot", tmp_path / "none.json"), "cannot read snapshot"
    )


def _nobody_python(workdir: Path) -> tuple[str, dict[str, str]]:
    """An interpreter plus PYTHONPATH with which uid 65534 can import drgn and the tool.

    When the test interpreter lives under a directory nobody can read (pyenv in
    /root), drgn and tabulate are copied next to a system python of the same
    version: the real packages, just readable.
    """
    probe = [sys.executable, "-c", "import drgn, tabulate"]
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run(nobody + probe, capture_output=True, cwd="/").returncode == 0:
        return sys.executable, {}
    import importlib.metadata as md

    site = workdir / "site"
    site.mkdir()
    for dist in ("drgn", "tabulate"):
        files = md.files(dist) or []
        tops = {f.parts[0] for f in files if f.parts[0] != ".." and len(f.parts) >= 1}
        for top in tops:
            src = Path(str(md.distribution(dist).locate_file(top)))
            if src.is_dir():
                shutil.copytree(src, site / top)
            elif src.exists():
                shutil.copy(src, site / top)
    shutil.copytree(Path(__file__).resolve().parents[2] / "rmem_inspect", site / "rmem_inspect")
    for p in [workdir, *workdir.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for cand in (f"/usr/bin/{ver}", f"/usr/local/bin/{ver}"):
        ok = subprocess.run(
            nobody + [cand, "-c", "import drgn, tabulate"],
            capture_output=True,
            env={"PYTHONPATH": str(site)},
            cwd="/",
        )
        if ok.returncode == 0:
            return cand, {"PYTHONPATH": str(site)}
    pytest.fail(f"no {ver} usable by uid 65534 to run the CLI without root")


def test_live_without_root() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="rmem-hostile-nobody-"))
    try:
        workdir.chmod(0o755)
        python, env = _nobody_python(workdir)
        p = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            + [python, "-m", "rmem_inspect", "report", "--live"],
            capture_output=True,
            text=True,
            env={**os.environ, **env} if env else None,
            cwd="/",
            timeout=120,
        )
        from tests.hostile.conftest import CliResult

        res = CliResult(["report", "--live"], p.returncode, p.stdout, p.stderr)
        assert_one_line_error(res, "needs root", "sudo")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
