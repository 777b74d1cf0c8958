# SPDX-License-Identifier: GPL-2.0-or-later
"""
Raw RAM dumps made from the factory's real dumps: the RAM of a QEMU ELF dump (its
PT_LOAD data) cut into bank files at boundaries that are not powers of two, as a
bootloader's download mode or a JTAG probe saves them. The report from the banks
equals the report of the ELF dump with VMCOREINFO of the same boot; broken sets
(truncated, missing, overlapping, misplaced, another boot's, garbage scripts) give
one line and exit 2, or a finding that names the data not in the dump.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

from tests.hostile.conftest import CliResult, assert_one_line_error, manifest_for, run_cli

pytestmark = pytest.mark.vmcore

#: Bank boundaries (offsets into RAM): not powers of two, as chip selects of odd size.
CUTS = (0x1D300000, 0x2F6A0000)


def _load_segment(vmcore: Path) -> tuple[int, int, int]:
    """(file offset, physical address, size) of the dump's one PT_LOAD (QEMU virt RAM)."""
    with open(vmcore, "rb") as f:
        head = f.read(64)
        (phoff,) = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    loads = [
        struct.unpack_from("<IIQQQQ", ph, i * phentsize)
        for i in range(phnum)
        if struct.unpack_from("<I", ph, i * phentsize)[0] == 1
    ]
    assert len(loads) == 1, loads
    _t, _f, off, _va, pa, size = loads[0]
    return off, pa, size


def _cut(vmcore: Path, out: Path, start: int, size: int, name: str) -> Path:
    """``size`` bytes of RAM from RAM offset ``start``, copied sparse."""
    off, _pa, _size = _load_segment(vmcore)
    dst = out / name
    subprocess.run(
        ["dd", f"if={vmcore}", f"of={dst}", "bs=1M", "iflag=skip_bytes,count_bytes",
         f"skip={off + start}", f"count={size}", "conv=sparse", "status=none"],
        check=True,
    )  # fmt: skip
    return dst


def make_banks(vmcore: Path, out: Path, cuts: tuple[int, ...] = CUTS) -> list[tuple[Path, int]]:
    """The dump's RAM as bank files DDRCS<i>_0.BIN, with a load.cmm beside them."""
    out.mkdir(parents=True, exist_ok=True)
    _off, pa, size = _load_segment(vmcore)
    edges = [0, *cuts, size]
    banks = []
    for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False)):
        banks.append((_cut(vmcore, out, a, b - a, f"DDRCS{i}_0.BIN"), pa + a))
    (out / "load.cmm").write_text(
        "; RAM dump of one boot\n"
        + "".join(f"d.load.binary {p.name} {base:#x} /noclear\n" for p, base in banks)
    )
    return banks


def bank_list(banks: list[tuple[Path, int]]) -> str:
    return ",".join(f"{p}@{base:#x}" for p, base in banks)


def comparable(res: CliResult) -> dict[str, object]:
    """What must be equal between two reports of one boot."""
    assert res.returncode in (0, 1), res.stderr
    d = json.loads(res.stdout)
    return {
        "regions": d["regions"],
        "findings": sorted((f["code"], f["region"], f["severity"]) for f in d["findings"]),
        "kernel": d["kernel"],
    }


@pytest.fixture(scope="module")
def banks612(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[Path, int]]]:
    m = manifest_for("6.12", "baseline")
    return m.path("vmcore"), make_banks(m.path("vmcore"), tmp_path_factory.mktemp("ram612"))


def test_banks_cmm_and_directory_equal_the_elf_dump(banks612) -> None:
    vmcore, banks = banks612
    m = manifest_for("6.12", "baseline")
    vmlinux = str(m.path("vmlinux"))
    ref = comparable(
        run_cli("report", "--format", "json", "--vmcore", vmcore, "--vmlinux", vmlinux)
    )
    for spec in (bank_list(banks), banks[0][0].parent / "load.cmm", banks[0][0].parent):
        res = run_cli("report", "--format", "json", "--vmcore", spec, "--vmlinux", vmlinux)
        assert comparable(res) == ref, spec
        src = json.loads(res.stdout)["source"]
        assert src["kind"] == "ramdump"
        assert src["kernel_found"].startswith("VMCOREINFO page at phys 0x")
        assert "BUILD-ID matches the vmlinux" in src["kernel_found"]
        for path, base in banks:
            assert f"{base:#x}" in src["banks"] and path.name in src["banks"]


def test_without_vmlinux_equals_the_elf_dump(banks612) -> None:
    vmcore, banks = banks612
    ref = comparable(run_cli("report", "--format", "json", "--vmcore", vmcore, "--types", "btf"))
    res = run_cli("report", "--format", "json", "--vmcore", bank_list(banks), "--types", "btf")
    assert comparable(res) == ref


def test_wiped_vmcoreinfo_page_vmlinux_finds_the_image(banks612, tmp_path: Path) -> None:
    vmcore, banks = banks612
    m = manifest_for("6.12", "baseline")
    vmlinux = str(m.path("vmlinux"))
    good = run_cli("report", "--format", "json", "--vmcore", bank_list(banks), "--vmlinux", vmlinux)
    src = json.loads(good.stdout)["source"]
    page = int(src["kernel_found"].split("phys ")[1].split()[0], 16)
    wiped = []
    for path, base in banks:
        copy = tmp_path / path.name
        subprocess.run(["cp", "--sparse=always", str(path), str(copy)], check=True)
        if base <= page < base + path.stat().st_size:
            with open(copy, "r+b") as f:
                f.seek(page - base)
                f.write(bytes(4096))
        wiped.append((copy, base))
    res = run_cli("report", "--format", "json", "--vmcore", bank_list(wiped), "--vmlinux", vmlinux)
    assert comparable(res) == comparable(good)
    found = json.loads(res.stdout)["source"]
    assert found["kernel_found"].startswith("kernel image matched at phys 0x")
    # the image's own variables give the KASLR offset the kernel wrote into VMCOREINFO
    assert found["kaslr_offset"] == src["kaslr_offset"]
    assert_one_line_error(
        run_cli("check", "--vmcore", bank_list(wiped), "--types", "btf"),
        "no VMCOREINFO page",
        "pass --vmlinux",
    )
    # crash's spelling of the VA size override, right and wrong
    res = run_cli("report", "--format", "json", "--vmcore", bank_list(wiped), "--vmlinux",
                  vmlinux, "-m", "vabits_actual=48")  # fmt: skip
    assert comparable(res) == comparable(good)
    assert_one_line_error(
        run_cli("check", "--vmcore", bank_list(wiped), "--vmlinux", vmlinux, "--vabits", "39"),
        "does not map init_uts_ns",
    )
    # a wrong --kaslr is refused, never reported as kernel data
    assert_one_line_error(
        run_cli("check", "--vmcore", bank_list(wiped), "--vmlinux", vmlinux, "--kaslr", "0x200000"),
        "check that the dump is of this kernel's boot",
    )


def test_missing_bank_is_named_not_silent(banks612) -> None:
    """Dropping the top bank (where memblock puts the reserved_mem array and the
    unflattened tree) leaves a report whose findings name what is not in the dump."""
    _vmcore, banks = banks612
    m = manifest_for("6.12", "baseline")
    res = run_cli("check", "--format", "json", "--vmcore", bank_list(banks[:2]),
                  "--vmlinux", m.path("vmlinux"))  # fmt: skip
    assert res.returncode == 1, res.stderr
    findings = json.loads(res.stdout)["findings"]
    messages = " ".join(f["message"] for f in findings)
    assert "no bank file covers" in messages or "could not find physical memory" in messages
    # absent data is said to be absent, not called corruption: the finding names the
    # range above the last bank given
    codes = {f["code"] for f in findings}
    assert "RMEM-COUNT-CORRUPT" not in codes, sorted(codes)
    (f,) = [f for f in findings if f["code"] == "RMEM-ARRAY-NOT-DUMPED"]
    last, base = banks[1]
    assert f"no bank covers {base + last.stat().st_size:#x}..the end of RAM" in f["message"]
    assert "not in the dump" in f["message"] and "damaged" not in f["message"]


def test_truncated_bank_is_named_not_silent(banks612, tmp_path: Path) -> None:
    _vmcore, banks = banks612
    m = manifest_for("6.12", "baseline")
    last, base = banks[-1]
    cut = tmp_path / last.name
    subprocess.run(["cp", "--sparse=always", str(last), str(cut)], check=True)
    with open(cut, "r+b") as f:
        f.truncate(last.stat().st_size // 3)
    res = run_cli("check", "--format", "json", "--vmcore", bank_list([*banks[:-1], (cut, base)]),
                  "--vmlinux", m.path("vmlinux"))  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert json.loads(res.stdout)["findings"]


def test_bad_sets_are_one_line(banks612, tmp_path: Path) -> None:
    _vmcore, banks = banks612
    m = manifest_for("6.12", "baseline")
    vmlinux = m.path("vmlinux")
    (a, a0), (b, b0), (c, c0) = banks
    assert_one_line_error(
        run_cli("check", "--vmcore", bank_list([(a, a0), (b, b0 - 0x1000), (c, c0)])), "overlap"
    )
    assert_one_line_error(
        run_cli("check", "--vmcore", f"{a}@{a0:#x},{tmp_path / 'nothere.bin'}@{b0:#x}"),
        "nothere.bin",
        "No such file",
    )
    cmm = tmp_path / "load.cmm"
    cmm.write_text(f"d.load.binary {a} {a0:#x}\nd.load.binary GONE.BIN {b0:#x} /noclear\n")
    assert_one_line_error(run_cli("check", "--vmcore", cmm), "GONE.BIN", "line 2")
    cmm.write_bytes(b"\x7fELF garbage \x00\x01\x02" * 50)
    assert_one_line_error(run_cli("check", "--vmcore", cmm), "not a text script")
    cmm.write_text('sys.up\nprint "hello"\n')
    assert_one_line_error(run_cli("check", "--vmcore", cmm), "no Data.LOAD.Binary")
    assert_one_line_error(
        run_cli("check", "--vmcore", manifest_for("6.12", "baseline").path("vmcore"),
                "--kaslr", "0x1000000"),
        "raw RAM dumps only",
    )  # fmt: skip
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("check", "--vmcore", tmp_path / "empty"), "neither a load.cmm")
    # every bank 256 MiB too high: the kernel does not read back where they say
    shifted = bank_list([(p, base + 0x10000000) for p, base in banks])
    line = assert_one_line_error(run_cli("check", "--vmcore", shifted, "--vmlinux", vmlinux))
    assert "physical base" in line or "check that the dump is of this kernel's boot" in line


def test_another_boots_ram_is_refused(tmp_path: Path) -> None:
    """6.1's RAM with 6.12's vmlinux: its VMCOREINFO page has another BUILD-ID and the
    6.12 image is nowhere."""
    other = manifest_for("6.1", "baseline")
    banks = make_banks(other.path("vmcore"), tmp_path / "ram61")
    vmlinux = manifest_for("6.12", "baseline").path("vmlinux")
    line = assert_one_line_error(
        run_cli("check", "--vmcore", bank_list(banks), "--vmlinux", vmlinux),
        "or an earlier boot's page left in RAM",
    )
    assert "linux_banner" in line


def test_batch_takes_ramdump_sets(banks612, tmp_path: Path) -> None:
    """A directory with a load.cmm is one dump in a batch, matched to its vmlinux by the
    BUILD-ID of its VMCOREINFO page."""
    _vmcore, banks = banks612
    board = tmp_path / "crashes" / "board1"
    board.mkdir(parents=True)
    for path, _base in banks:
        (board / path.name).symlink_to(path)
    (board / "load.cmm").write_text((banks[0][0].parent / "load.cmm").read_text())
    debug = manifest_for("6.12", "baseline").path("vmlinux").parent
    res = run_cli("batch", tmp_path / "crashes", "-d", debug, "--jsonl", "-")
    assert res.returncode in (0, 1), res.stderr
    (rec,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert rec["path"].endswith("board1") and rec["status"] == "ok", rec
    assert rec["debug_info"] == "dwarf" and rec["build_id"], rec


@pytest.mark.parametrize("series", ["6.1", "6.12", "7.x"])
def test_image_found_without_vmcoreinfo_on_every_series(series: str, tmp_path: Path) -> None:
    """KASLR boots of each series, VMCOREINFO page wiped: the vmlinux's image gives the
    report of the ELF dump, and the KASLR offset the kernel itself wrote."""
    m = manifest_for(series, "kaslr")
    vmcore, vmlinux = m.path("vmcore"), str(m.path("vmlinux"))
    _off, pa, size = _load_segment(vmcore)
    ram = _cut(vmcore, tmp_path, 0, size, "DDR.BIN")
    spec = f"{ram}@{pa:#x}"
    first = json.loads(run_cli("report", "--format", "json", "--vmcore", spec,
                               "--vmlinux", vmlinux).stdout)["source"]  # fmt: skip
    page = int(first["kernel_found"].split("phys ")[1].split()[0], 16)
    with open(ram, "r+b") as f:
        f.seek(page - pa)
        f.write(bytes(4096))
    res = run_cli("report", "--format", "json", "--vmcore", spec, "--vmlinux", vmlinux)
    ref = run_cli("report", "--format", "json", "--vmcore", vmcore, "--vmlinux", vmlinux)
    assert comparable(res) == comparable(ref)
    src = json.loads(res.stdout)["source"]
    assert src["kernel_found"].startswith("kernel image matched at phys")
    assert src["kaslr_offset"] == first["kaslr_offset"] != "0x0"


def test_qualcomm_dump_info_directory(banks612, tmp_path: Path) -> None:
    """A directory with Qualcomm's dump_info.txt and no load.cmm: the index is read, a
    bank shorter than its listed size is refused."""
    _vmcore, banks = banks612
    m = manifest_for("6.12", "baseline")
    board = tmp_path / "qpst"
    board.mkdir()
    rows = ["   ID  Base                Size          Description          File"]
    for i, (path, base) in enumerate(banks, 1):
        (board / path.name).symlink_to(path)
        rows.append(
            f"   {i} {base:#018x} {path.stat().st_size:>16}   DDR CS{i - 1} Memo   {path.name}"
        )
    (board / "dump_info.txt").write_text("\n".join(rows) + "\n")
    res = run_cli("report", "--format", "json", "--vmcore", board, "--vmlinux", m.path("vmlinux"))
    ref = run_cli("report", "--format", "json", "--vmcore", bank_list(banks), "--vmlinux",
                  m.path("vmlinux"))  # fmt: skip
    assert comparable(res) == comparable(ref)
    assert json.loads(res.stdout)["source"]["format"] == "dump_info.txt"
    rows[1] = rows[1].replace(
        str(banks[0][0].stat().st_size), str(banks[0][0].stat().st_size + 4096)
    )
    (board / "dump_info.txt").write_text("\n".join(rows) + "\n")
    assert_one_line_error(run_cli("check", "--vmcore", board), "DDRCS0_0.BIN", "truncated")
