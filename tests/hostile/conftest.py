# SPDX-License-Identifier: GPL-2.0-or-later
"""
Helpers of the hostile-input tier: run the CLI the way a user does, check that
a bad input gives one clear line and exit status 2 (never a traceback), and
build the corpus of broken inputs from the factory's real dumps.

Byte patches are placed the way a kernel engineer would by hand: symbol address
from the debug info, kernel-image address to physical with ``kimage_voffset``
from VMCOREINFO (arm64: phys = va - kimage_voffset), linear-map address to
physical with drgn's ``virt_to_phys``, then physical to file offset through the
dump's PT_LOAD program headers.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rmem_inspect.formats.devicetree import RawNode
from rmem_inspect.formats.elf import read_elf
from tests.dumps import manifest_for

__all__ = [
    "BULK_NODES",
    "CliResult",
    "DumpLayout",
    "assert_one_line_error",
    "bulk_dts",
    "count_nodes",
    "drop_pages",
    "file_state",
    "manifest_for",
    "patch",
    "run_cli",
    "sparse_copy",
]

REPO = Path(__file__).resolve().parents[2]
PT_LOAD = 1
PT_NOTE = 4


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str | os.PathLike[str],
    user: int | None = None,
    timeout: float = 180,
    env: dict[str, str] | None = None,
    strace_log: Path | None = None,
) -> CliResult:
    """Run ``python -m rmem_inspect ARGS`` as a user would (optionally as uid ``user``,
    optionally under strace recording every open)."""
    cmd: list[str] = [sys.executable, "-m", "rmem_inspect", *map(str, args)]
    if strace_log is not None:
        cmd = ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(strace_log)]
        cmd += [sys.executable, "-m", "rmem_inspect", *map(str, args)]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO)
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd="/")
    return CliResult([str(a) for a in args], p.returncode, p.stdout, p.stderr)


def assert_one_line_error(res: CliResult, *needles: str) -> str:
    """Exit status 2, nothing on stdout, one line on stderr containing every needle."""
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 2, (res.returncode, res.stderr, res.stdout[-2000:])
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("rmem-inspect: error: "), line
    assert "internal error" not in line, line
    for n in needles:
        assert n in line, (n, line)
    return line


def file_state(path: Path) -> tuple[int, int, str]:
    """(mtime_ns, size, sha256) of a file, to prove a run did not change it.

    The digest covers the offsets and bytes of every data extent (SEEK_DATA /
    SEEK_HOLE): holes read as zeros and a write into one would allocate an extent,
    so this equals a full sha256 for change detection while reading ~65 MB instead
    of the 1 GiB a sparse dump spans.
    """
    st = path.stat()
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        fd = f.fileno()
        pos = 0
        while pos < st.st_size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            sha.update(struct.pack("<QQ", start, end))
            f.seek(start)
            left = end - start
            while left:
                chunk = f.read(min(left, 8 << 20))
                if not chunk:
                    break
                sha.update(chunk)
                left -= len(chunk)
            pos = end
    return st.st_mtime_ns, st.st_size, sha.hexdigest()


def sparse_copy(src: Path, dst: Path) -> Path:
    """``cp --sparse=always``: a 1 GiB dump copies in well under a second."""
    subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
    dst.chmod(0o600)
    return dst


@dataclass
class Segment:
    index: int
    header_offset: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int


class DumpLayout:
    """A real dump's ELF program headers and VMCOREINFO, parsed independently of
    rmem_inspect (struct module only), to place byte patches."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as f:
            ehdr = f.read(64)
            assert ehdr[:4] == b"\x7fELF" and ehdr[4] == 2 and ehdr[5] == 1
            self.phoff = struct.unpack_from("<Q", ehdr, 32)[0]
            self.phentsize, self.phnum = struct.unpack_from("<HH", ehdr, 54)
            f.seek(self.phoff)
            ph = f.read(self.phentsize * self.phnum)
        self.segments: list[Segment] = []
        self.notes: list[Segment] = []
        for i in range(self.phnum):
            ptype, _fl, off, va, pa, fsz, msz = struct.unpack_from("<IIQQQQQ", ph, i * 56)
            seg = Segment(i, self.phoff + i * self.phentsize, off, va, pa, fsz, msz)
            if ptype == PT_LOAD:
                self.segments.append(seg)
            elif ptype == PT_NOTE:
                self.notes.append(seg)
        info = read_elf(str(path))
        assert info.vmcoreinfo is not None
        self.vmcoreinfo = info.vmcoreinfo
        self.kimage_voffset = int(self.vmcoreinfo["NUMBER(kimage_voffset)"], 16)

    def phys_to_offset(self, phys: int) -> int:
        for s in self.segments:
            if s.paddr <= phys < s.paddr + s.filesz:
                return s.offset + phys - s.paddr
        raise AssertionError(f"phys {phys:#x} is in no PT_LOAD of {self.path}")

    def image_va_to_offset(self, va: int) -> int:
        """A kernel-image address (a static variable) to its file offset."""
        return self.phys_to_offset(va - self.kimage_voffset)

    def vmcoreinfo_note_name_offset(self) -> int:
        """File offset of the name bytes of the VMCOREINFO ELF note."""
        with open(self.path, "rb") as f:
            for seg in self.notes:
                f.seek(seg.offset)
                data = f.read(seg.filesz)
                off = 0
                while off + 12 <= len(data):
                    namesz, descsz, _t = struct.unpack_from("<III", data, off)
                    name = data[off + 12 : off + 12 + namesz].rstrip(b"\0")
                    if name == b"VMCOREINFO":
                        return seg.offset + off + 12
                    off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
        raise AssertionError(f"no VMCOREINFO note in {self.path}")


def patch(path: Path, offset: int, data: bytes) -> bytes:
    """Overwrite ``data`` at ``offset``; return the bytes that were there."""
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(len(data))
        f.seek(offset)
        f.write(data)
    return old


def drop_pages(path: Path, layout: DumpLayout, holes: list[tuple[int, int]]) -> int:
    """Take physical ranges out of every PT_LOAD, the way makedumpfile's ELF output
    leaves excluded page runs out of its program headers: reads there fault.

    The data stays in place; a new program header table (the PT_LOADs split around
    the holes, the other headers as they were) is appended at the end of the file
    and e_phoff/e_phnum point at it. Returns the new number of program headers.
    """
    with open(path, "rb") as f:
        f.seek(layout.phoff)
        old = f.read(layout.phentsize * layout.phnum)
    headers: list[bytes] = []
    for i in range(layout.phnum):
        raw = old[i * layout.phentsize : (i + 1) * layout.phentsize]
        ptype, flags, off, va, pa, fsz, msz = struct.unpack_from("<IIQQQQQ", raw)
        if ptype != PT_LOAD:
            headers.append(raw)
            continue
        pieces = [(pa, pa + fsz)]
        for hb, he in holes:
            pieces = [
                p for s, e in pieces for p in ((s, min(e, hb)), (max(s, he), e)) if p[0] < p[1]
            ]
        for s, e in pieces:
            headers.append(
                struct.pack(
                    "<IIQQQQQ",
                    ptype,
                    flags,
                    off + s - pa,
                    va + s - pa if va else 0,
                    s,
                    e - s,
                    e - s,
                )
                + raw[48:]  # p_align and anything past the 56-byte header
            )
    size = path.stat().st_size
    table = (size + 7) & ~7
    with open(path, "r+b") as f:
        f.seek(table)
        f.write(b"".join(headers))
        f.seek(32)
        f.write(struct.pack("<Q", table))
        f.seek(56)
        f.write(struct.pack("<H", len(headers)))
    return len(headers)


BULK_NODES = 10_000
#: dtc's parser overflows on 10,000 siblings in one block: emit them 100 per block
#: (dtc merges blocks that name the same node).
BLOCK = 100


def bulk_dts(nodes: int = BULK_NODES) -> str:
    """``/bulk`` with ``nodes`` children, each with one property."""
    out = []
    for start in range(0, nodes, BLOCK):
        out.append("/ {\n\tbulk {\n")
        for i in range(start, min(start + BLOCK, nodes)):
            out.append(f'\t\tn{i} {{ compatible = "rmem-inspect,bulk"; }};\n')
        out.append("\t};\n};\n")
    return "".join(out)


def count_nodes(root: RawNode) -> int:
    n, stack = 0, [root]
    while stack:
        node = stack.pop()
        n += 1
        stack.extend(node.children)
    return n
