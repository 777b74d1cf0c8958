# SPDX-License-Identifier: GPL-2.0-or-later
"""
The files of one raw-RAM-dump set (:mod:`vmcores.ramdump` boots and captures them):
how RAM is split into Qualcomm-named bank files, the Lauterbach ``load.cmm`` that
loads them, the checks that banks and QEMU's ELF hold the same bytes, the search for
the kernel's VMCOREINFO texts in RAM (to compare with a reference and to wipe them),
and ``ramdump.json``, the set's manifest, with :func:`load_ramdumps` for the tests.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
import struct
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vmcores.build import BuildError
from vmcores.manifest import default_cache

__all__ = [
    "MANIFEST",
    "PAGE",
    "RAMDUMP_VERSION",
    "Bank",
    "RamdumpSet",
    "bank_layout",
    "check_same_bytes",
    "elf_loads",
    "file_facts",
    "load_cmm",
    "load_ramdumps",
    "load_set",
    "rmem_lines",
    "save_set",
    "sha256_file",
    "up_to_date",
    "vmcoreinfo_fields",
    "vmcoreinfo_texts",
    "wipe",
]

#: Bump when the way sets are made changes.
RAMDUMP_VERSION = 1
PAGE = 4096
#: The kernel's printk lines about the layout of reserved memory: two boots that print
#: the same ones placed every region (dynamic ones too) alike.
RMEM_LINE = re.compile(r"(OF: reserved mem: |Reserved memory: ).*")
MANIFEST = "ramdump.json"


@dataclass(frozen=True)
class Bank:
    """One raw RAM file and the physical address its first byte was read from."""

    file: str
    base: int
    size: int


@dataclass
@dataclass
class RamdumpSet:
    """What ``ramdump.json`` records about one boot's raw dumps (paths relative to it)."""

    arch: str
    series: str
    scenario: str
    release: str
    banks: list[dict]
    load_cmm: str
    #: QEMU dump-guest-memory of the same stopped guest: no VMCOREINFO note.
    qemu_elf: str
    #: ELF dump with VMCOREINFO to compare with (arm64: the factory's dump of the same
    #: inputs, another boot; arm/riscv64: the kdump-layout rewrite of this boot's ELF).
    reference: str
    reference_kind: str
    vmlinux: str
    #: Physical addresses of the VMCOREINFO texts found in RAM (page start first).
    vmcoreinfo_at: list[int]
    #: Keys whose values differ between this boot's VMCOREINFO and the reference's.
    vmcoreinfo_differs: list[str]
    #: Whether the reserved-memory log lines of both boots are the same.
    rmem_log_equal: bool
    #: Directory of the copy with every VMCOREINFO text zeroed (its own load.cmm).
    wiped: str
    wiped_ranges: list[list[int]]
    files: dict[str, dict]
    qemu_command: list[str]
    boot_seconds: float
    dump_seconds: float
    built_at: str
    key: str
    format: int = RAMDUMP_VERSION
    directory: str = field(default="", compare=False)

    def path(self, rel: str) -> Path:
        return (Path(self.directory) / rel).resolve()

    @property
    def bank_args(self) -> str:
        """crash's FILE@PADDR[,FILE@PADDR...] for the banks (absolute paths)."""
        return ",".join(f"{self.path(b['file'])}@{b['base']:#x}" for b in self.banks)


def bank_layout(ram_base: int, ram_size: int, index: int) -> list[Bank]:
    """RAM split into two banks (three above 1 GiB) at boundaries that are no power of
    two, named as Qualcomm's ramdump names chip-select banks. Even ``index``: cuts at
    3/7 (and 5/7) of RAM; odd: the first cut 10.2 MiB in, through the kernel image (on
    every board here it starts 2 MiB into RAM, 2 MiB + 32 KiB on arm, and is 26-42 MiB
    long: ``_end - _text`` of the vmlinux)."""
    n = 3 if ram_size > 1 << 30 else 2
    cuts = [ram_size * i // 7 & ~(PAGE - 1) for i in ((3, 5) if n == 3 else (3,))]
    if index % 2:
        cuts[0] = 0xA37000
    names = (
        ["DDRCS0_0.BIN", "DDRCS1_0.BIN"]
        if n == 2
        else ["DDRCS0_0.BIN", "DDRCS0_1.BIN", "DDRCS1_0.BIN"]
    )
    edges = [0, *cuts, ram_size]
    return [Bank(names[i], ram_base + edges[i], edges[i + 1] - edges[i]) for i in range(len(names))]


def load_cmm(banks: list[Bank], what: str) -> str:
    """A Lauterbach TRACE32 script loading ``banks`` (files relative to it)."""
    lines = [
        "; TRACE32 script: load the raw DDR of " + what,
        "; written by the rmem_inspect vmcore factory (vmcores/ramdump.py)",
        *(f"d.load.binary {b.file} {b.base:#x} /noclear" for b in banks),
        "",
    ]
    return "\n".join(lines)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_facts(path: Path, known: dict[tuple[int, int], dict] | None = None) -> dict:
    """sha256, size and bytes allocated of ``path``; ``known`` (by device and inode)
    spares hashing a hard link twice."""
    st = path.stat()
    if known is not None and (st.st_dev, st.st_ino) in known:
        return known[st.st_dev, st.st_ino]
    facts = {"sha256": sha256_file(path), "bytes": st.st_size, "allocated": st.st_blocks * 512}
    if known is not None:
        known[st.st_dev, st.st_ino] = facts
    return facts


def elf_loads(path: Path) -> list[tuple[int, int, int]]:
    """(p_paddr, p_offset, p_filesz) of each PT_LOAD of a little-endian ELF core."""
    with open(path, "rb") as f:
        eh = f.read(64)
        wide = eh[4] == 2
        phoff = struct.unpack_from("<Q" if wide else "<I", eh, 32 if wide else 28)[0]
        phentsize, phnum = struct.unpack_from("<HH", eh, 54 if wide else 42)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    out = []
    for i in range(phnum):
        if wide:
            t, _fl, off, _va, pa, filesz = struct.unpack_from("<IIQQQQ", ph, i * phentsize)
        else:
            t, off, _va, pa, filesz = struct.unpack_from("<IIIII", ph, i * phentsize)
        if t == 1:
            out.append((pa, off, filesz))
    return out


def check_same_bytes(elf: Path, out: Path, banks: list[Bank]) -> None:
    """Every bank equals the ELF's bytes at its physical addresses (same stopped guest)."""
    loads = elf_loads(elf)
    with open(elf, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        for b in banks:
            seg = [(pa, off, sz) for pa, off, sz in loads if pa <= b.base < pa + sz]
            if not seg or b.base + b.size > seg[0][0] + seg[0][2]:
                raise BuildError(f"{elf}: no one PT_LOAD covers {b.file}")
            pa, off, _sz = seg[0]
            start = off + b.base - pa
            with open(out / b.file, "rb") as g, mmap.mmap(
                g.fileno(), 0, access=mmap.ACCESS_READ
            ) as n:
                for at in range(0, b.size, 64 << 20):
                    end = min(b.size, at + (64 << 20))
                    if m[start + at : start + end] != n[at:end]:
                        raise BuildError(f"{b.file} differs from {elf.name} at {b.base + at:#x}")


def vmcoreinfo_texts(out: Path, banks: list[Bank], release: str) -> list[tuple[int, str]]:
    """(paddr, text) of every VMCOREINFO text in the banks, page-aligned ones first."""
    needle = f"OSRELEASE={release}\n".encode()
    found = []
    for b in banks:
        with open(out / b.file, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            at = m.find(needle)
            while at >= 0:
                end = m.find(b"\0", at, at + 2 * PAGE)
                text = bytes(m[at : end if end >= 0 else at + PAGE]).decode(errors="replace")
                found.append((b.base + at, text))
                at = m.find(needle, at + 1)
    return sorted(found, key=lambda t: (t[0] % PAGE != 0, t[0]))


def vmcoreinfo_fields(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def rmem_lines(dmesg: str) -> list[str]:
    return [m.group(0) for line in dmesg.splitlines() if (m := RMEM_LINE.search(line))]


def wipe(out: Path, banks: list[Bank], texts: list[tuple[int, str]], what: str) -> list[list[int]]:
    """``out/wiped/``: the banks with every VMCOREINFO text zeroed; untouched banks are
    hard links. Returns the [start, end) physical ranges zeroed."""
    wiped = out / "wiped"
    shutil.rmtree(wiped, ignore_errors=True)
    wiped.mkdir()
    ranges = [[at, at + len(text.encode())] for at, text in texts]
    for b in banks:
        mine = [r for r in ranges if b.base <= r[0] < b.base + b.size]
        if not mine:
            os.link(out / b.file, wiped / b.file)
            continue
        subprocess.run(
            ["cp", "--sparse=always", str(out / b.file), str(wiped / b.file)], check=True
        )
        with open(wiped / b.file, "r+b") as f:
            for start, end in mine:
                f.seek(start - b.base)
                f.write(bytes(end - start))
    (wiped / "load.cmm").write_text(load_cmm(banks, what + ", VMCOREINFO wiped"))
    return ranges


def save_set(out: Path, rs: RamdumpSet) -> RamdumpSet:
    d = asdict(rs)
    d.pop("directory")
    (out / (MANIFEST + ".tmp")).write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
    (out / (MANIFEST + ".tmp")).replace(out / MANIFEST)
    rs.directory = str(out)
    return rs


def load_set(path: Path) -> RamdumpSet | None:
    try:
        d = json.loads(path.read_text())
        if d.get("format") != RAMDUMP_VERSION:
            return None
        return RamdumpSet(**d, directory=str(path.parent))
    except (OSError, ValueError, TypeError):
        return None


def up_to_date(out: Path, key: str, force: bool) -> RamdumpSet | None:
    old = None if force else load_set(out / MANIFEST)
    if old is not None and old.key == key and all(old.path(f).exists() for f in old.files):
        return old
    return None


def load_ramdumps(cache: Path | None = None) -> list[RamdumpSet]:
    """Every raw-dump set in the cache, sorted by (arch, series, scenario)."""
    root = cache or default_cache()
    paths = sorted((root / "ramdumps").glob(f"*/*/{MANIFEST}"))
    paths += sorted((root / "ramdumps-arch").glob(f"*/*/*/{MANIFEST}"))
    found = [rs for p in paths if (rs := load_set(p)) is not None]
    return sorted(found, key=lambda r: (r.arch, r.series, r.scenario))
