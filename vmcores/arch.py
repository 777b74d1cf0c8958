# SPDX-License-Identifier: GPL-2.0-or-later
"""
The vmcore factory beyond arm64: boot Debian trixie's 32-bit Arm kernel
(``linux-image-*-armmp-lpae`` with its -dbg vmlinux) under ``qemu-system-arm -M
virt`` with the scenarios of ``vmcores/scenarios.py`` and keep dumps in the layout
32-bit Arm users really have: a kdump ``/proc/vmcore``.

Debian's armmp-lpae kernel has no CONFIG_FW_CFG_SYSFS, so QEMU's own dump carries
no VMCOREINFO, and its program headers give physical addresses only. A kdump
capture differs in exactly two ways, both written here as kexec-tools writes them
(kexec/crashdump-elf.c, crash_create_elf32_headers(); kexec/arch/arm/crashdump-arm.c):

- every PT_LOAD gets ``p_vaddr = phys_to_virt(p_paddr)`` = ``p_paddr - phys_offset +
  page_offset`` (phys_offset the start of RAM, page_offset CONFIG_PAGE_OFFSET;
  arm sets no lowmem_limit, so no segment gets the highmem -1);
- the kernel's own VMCOREINFO note (``vmcoreinfo_note``, which kexec-tools finds
  through /sys/kernel/vmcoreinfo) joins the CPU notes in the one PT_NOTE.

The note bytes are the kernel's, found in the dumped RAM; nothing is made up.
Guest RAM is 768 MiB: with 1 GiB at 0x40000000 the linear-map addresses of the top
of RAM would wrap onto the fixmap (0xff800000, where the FDT lives) in 32 bits.

``python -m vmcores.arch`` builds them; everything lives in the factory cache
under ``dumps-arch/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import mmap
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vmcores.debian import FetchError, PrivateApt, host_mirror
from vmcores.manifest import default_cache
from vmcores.scenarios import SCENARIOS, Scenario, overlay_dts

__all__ = [
    "ARM_SCENARIOS",
    "BOARDS",
    "ArchDump",
    "Board",
    "build_arm",
    "kdump_layout",
    "kdump_layout64",
    "main",
    "relocate",
    "relocate_name",
]

#: Bump when the way dumps are made changes.
BUILDER_VERSION = 2
SUITE = "trixie"
#: clean, overflow, a no-map conflict and an allocation failure.
ARM_SCENARIOS = ("baseline", "overflow", "nomap-conflict", "alloc-fail")


@dataclass(frozen=True)
class Board:
    """A Debian architecture and the QEMU board its kernel boots on."""

    #: The factory's name for the board (a key of BOARDS).
    name: str
    arch: str
    debarch: str
    flavour: str
    qemu: str
    machine: tuple[str, ...]
    append: str
    #: Where the board's RAM starts: the scenarios (written for 0x40000000) move by
    #: the difference, so every carveout and window stays inside RAM.
    ram_base: int = 0x40000000


BOARDS = {
    b.name: b
    for b in (
        Board(
            "arm", "arm", "armhf", "armmp-lpae", "qemu-system-arm",
            ("-M", "virt", "-cpu", "cortex-a15", "-m", "768M", "-smp", "2", "-nic", "none"),
            "console=ttyAMA0",
        ),
        # 1 GiB: kexec-tools' linear addresses of the top of RAM wrap onto the FDT window
        Board(
            "arm-1g", "arm", "armhf", "armmp-lpae", "qemu-system-arm",
            ("-M", "virt", "-cpu", "cortex-a15", "-m", "1G", "-smp", "2", "-nic", "none"),
            "console=ttyAMA0",
        ),
        # OpenSBI (QEMU's default -bios for virt) runs first and reserves itself.
        Board(
            "riscv64", "riscv64", "riscv64", "riscv64", "qemu-system-riscv64",
            ("-M", "virt", "-m", "1G", "-smp", "2", "-nic", "none"),
            "console=ttyS0",
            0x80000000,
        ),
    )
}  # fmt: skip
READY = "RMEM-FACTORY-READY"
INIT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /tmp
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo RMEM-FACTORY-DMESG-BEGIN
dmesg
echo RMEM-FACTORY-DMESG-END
echo {READY}
while true; do sleep 3600; done
"""
NOTE_NAME = b"VMCOREINFO\x00\x00"
PT_LOAD = 1
PT_NOTE = 4


class ArchBuildError(RuntimeError):
    pass


@dataclass
class ArchDump:
    arch: str
    release: str
    scenario: str
    #: The kdump-layout dump.
    vmcore: str
    #: QEMU's own dump-guest-memory output (no VMCOREINFO, physical addresses only).
    qemu_elf: str
    vmlinux: str
    dmesg: str


def relocate(scenario: Scenario, delta: int) -> Scenario:
    """``scenario`` with every reg and alloc-ranges address moved by ``delta``."""
    if not delta:
        return scenario

    def move(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        return tuple((base + delta, size) for base, size in ranges)

    regions = tuple(
        dataclasses.replace(r, reg=move(r.reg), alloc_ranges=move(r.alloc_ranges))
        for r in scenario.regions
    )
    return dataclasses.replace(scenario, regions=regions)


def relocate_name(name: str | None, delta: int) -> str | None:
    """A node name's unit address moved by ``delta`` (``fw@52100000`` -> ``fw@92100000``)."""
    if name is None or "@" not in name or not delta:
        return name
    node, unit = name.split("@", 1)
    return f"{node}@{int(unit, 16) + delta:x}"


def kdump_layout(src: Path, dst: Path, page_offset: int) -> None:
    """Rewrite QEMU's ELF32 dump ``src`` into ``dst`` with kexec-tools' kdump headers."""
    with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m[:4] != b"\x7fELF" or m[4] != 1 or m[5] != 1:
            raise ArchBuildError(f"{src}: not a little-endian ELF32 dump")
        (phoff,) = struct.unpack_from("<I", m, 28)
        phentsize, phnum = struct.unpack_from("<HH", m, 42)
        phdrs = [list(struct.unpack_from("<8I", m, phoff + i * phentsize)) for i in range(phnum)]
        notes = b"".join(bytes(m[p[1] : p[1] + p[4]]) for p in phdrs if p[0] == PT_NOTE)
        vmcoreinfo, _info = _find_vmcoreinfo(m, src)
        size = m.size()
    loads = [p for p in phdrs if p[0] == PT_LOAD]
    phys_offset = min(p[3] for p in loads)
    for p in loads:
        p[2] = (p[3] - phys_offset + page_offset) & 0xFFFFFFFF  # Elf32 p_vaddr
    subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
    dst.chmod(0o644)
    new_phoff = (size + 15) & ~15
    note = notes + vmcoreinfo
    note_off = new_phoff + 32 * (len(loads) + 1)
    out = [[PT_NOTE, note_off, 0, 0, len(note), len(note), 0, 0], *loads]
    with open(dst, "r+b") as g:
        g.seek(new_phoff)
        g.write(b"".join(struct.pack("<8I", *p) for p in out))
        g.write(note)
        g.seek(28)
        g.write(struct.pack("<I", new_phoff))
        g.seek(44)
        g.write(struct.pack("<H", len(out)))


def _find_vmcoreinfo(m: mmap.mmap, src: Path) -> tuple[bytes, dict[str, str]]:
    """The kernel's VMCOREINFO note (header, name, text) as it lies in the dumped RAM.

    Elf32_Nhdr and Elf64_Nhdr are alike (three 4-byte words): namesz 11, descsz,
    type 0, "VMCOREINFO\\0" padded to 4, then text that starts with OSRELEASE=.
    """
    at = m.find(NOTE_NAME + b"OSRELEASE=")
    if at < 12:
        raise ArchBuildError(f"{src}: the kernel's VMCOREINFO note is not in RAM")
    namesz, descsz, _ntype = struct.unpack_from("<III", m, at - 12)
    if namesz != 11:
        raise ArchBuildError(f"{src}: malformed VMCOREINFO note header")
    note = bytes(m[at - 12 : at + 12 + ((descsz + 3) & ~3)])
    text = note[24 : 24 + descsz].rstrip(b"\0").decode(errors="replace")
    return note, dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def kdump_layout64(src: Path, dst: Path, k: dict[str, str]) -> None:
    """Rewrite QEMU's ELF64 riscv64 dump ``src`` into ``dst`` with kdump headers.

    kexec-tools (kexec/arch/riscv/crashdump-riscv.c, kexec/crashdump-elf.c) writes a
    PT_LOAD for the kernel image (vaddr in the kernel mapping) and one per RAM range
    with ``p_vaddr = p_paddr - phys_ram_base + PAGE_OFFSET`` (the linear map); the
    offsets are the ones the kernel exports in VMCOREINFO
    (arch/riscv/kernel/vmcore_info.c: phys_ram_base, PAGE_OFFSET, va_kernel_pa_offset).
    """
    with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m[:4] != b"\x7fELF" or m[4] != 2 or m[5] != 1:
            raise ArchBuildError(f"{src}: not a little-endian ELF64 dump")
        (phoff,) = struct.unpack_from("<Q", m, 32)
        phentsize, phnum = struct.unpack_from("<HH", m, 54)
        phdrs = [
            list(struct.unpack_from("<IIQQQQQQ", m, phoff + i * phentsize)) for i in range(phnum)
        ]
        notes = b"".join(bytes(m[p[2] : p[2] + p[5]]) for p in phdrs if p[0] == PT_NOTE)
        vmcoreinfo, info = _find_vmcoreinfo(m, src)
        size = m.size()
    ram_base = int(info["NUMBER(phys_ram_base)"], 0)
    page_offset = int(info["NUMBER(PAGE_OFFSET)"], 16)
    kva_pa = int(info["NUMBER(va_kernel_pa_offset)"], 16)
    # The kernel image: the vmlinux's own PT_LOADs at their link addresses (no KASLR
    # offset: the factory's riscv boards carry no kaslr-seed).
    with open(k["vmlinux"], "rb") as f:
        eh = f.read(64)
        (vphoff,) = struct.unpack_from("<Q", eh, 32)
        vphentsize, vphnum = struct.unpack_from("<HH", eh, 54)
        f.seek(vphoff)
        vph = f.read(vphentsize * vphnum)
    spans = [struct.unpack_from("<IIQQQQQQ", vph, i * vphentsize) for i in range(vphnum)]
    spans = [p for p in spans if p[0] == PT_LOAD]
    kstart = min(p[3] for p in spans)
    kend = max(p[3] + p[6] for p in spans)
    loads = [p for p in phdrs if p[0] == PT_LOAD]
    ktext = None
    for p in loads:
        if p[4] <= kstart - kva_pa < p[4] + p[5]:
            off = p[2] + (kstart - kva_pa - p[4])
            ktext = [PT_LOAD, 7, off, kstart, kstart - kva_pa, kend - kstart, kend - kstart, 0]
        p[3] = (p[4] - ram_base + page_offset) & ((1 << 64) - 1)
    if ktext is None:
        raise ArchBuildError(f"{src}: the kernel image is not inside the dumped RAM")
    subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
    dst.chmod(0o644)
    new_phoff = (size + 15) & ~15
    note = notes + vmcoreinfo
    out = [[PT_NOTE, 0, 0, 0, 0, len(note), len(note), 0], ktext, *loads]
    out[0][2] = new_phoff + 56 * len(out)
    with open(dst, "r+b") as g:
        g.seek(new_phoff)
        g.write(b"".join(struct.pack("<IIQQQQQQ", *p) for p in out))
        g.write(note)
        g.seek(32)
        g.write(struct.pack("<Q", new_phoff))
        g.seek(56)
        g.write(struct.pack("<H", len(out)))


def _fetch(board: Board, cache: Path) -> dict[str, str]:
    """Newest trixie kernel of the board's flavour, its vmlinux, busybox-static."""
    apt = PrivateApt(cache / "apt", SUITE, host_mirror(), arch=board.debarch)
    meta = apt.show(f"linux-image-{board.flavour}-dbg")
    m = re.search(r"linux-image-(\S+)-dbg\b", (meta or {}).get("Depends", ""))
    if not m:
        raise FetchError(f"no linux-image-{board.flavour}-dbg in {SUITE} ({board.debarch})")
    release = m.group(1)
    # debug_search_paths() (rmem_inspect.collect.debuginfo) looks in kernels/RELEASE/dbg
    kdir = cache / "kernels" / release
    kdir.mkdir(parents=True, exist_ok=True)
    stamp = kdir / "kernel.json"
    with open(kdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            k: dict[str, str] = json.loads(stamp.read_text())
            if all(Path(k[x]).exists() for x in ("vmlinuz", "vmlinux", "busybox")):
                return k
        pkgs = apt.download(
            [f"linux-image-{release}", f"linux-image-{release}-dbg", "busybox-static"],
            cache / "debs",
        )
        tree = kdir / "tree"
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", pkgs[0].file, str(tree)], check=True)
        subprocess.run(["dpkg-deb", "-x", pkgs[2].file, str(tree / "bb")], check=True)
        dbg = kdir / "dbg"
        shutil.rmtree(dbg, ignore_errors=True)
        dbg.mkdir()
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", pkgs[1].file], stdout=subprocess.PIPE)
        subprocess.run(
            ["tar", "-x", "-C", str(dbg), "--wildcards", "*/vmlinux*"], stdin=tar.stdout, check=True
        )
        tar.wait()
        config = (tree / "boot" / f"config-{release}").read_text()
        # 32-bit Arm: CONFIG_PAGE_OFFSET; riscv64 puts PAGE_OFFSET in VMCOREINFO.
        po = re.search(r"^CONFIG_PAGE_OFFSET=(0x[0-9a-fA-F]+)$", config, re.M)
        image = next(p for p in (tree / "boot").iterdir() if p.name.startswith("vmlinu"))
        shutil.move(str(image), kdir / "vmlinuz")
        shutil.move(str(tree / "bb" / "usr" / "bin" / "busybox"), kdir / "busybox")
        shutil.rmtree(tree)
        vmlinux = next(p for p in dbg.rglob("vmlinux*") if p.is_file())
        k = {
            "release": release,
            "vmlinuz": str(kdir / "vmlinuz"),
            "vmlinux": str(vmlinux),
            "debug_root": str(dbg),
            "busybox": str(kdir / "busybox"),
            "page_offset": po.group(1) if po else "",
            "packages": " ".join(f"{p.name}={p.version}" for p in pkgs),
        }
        stamp.write_text(json.dumps(k, indent=2) + "\n")
        return k


def _initramfs(kdir: Path, busybox: Path) -> Path:
    out = kdir / "initramfs.cpio"
    if out.exists():
        return out
    root = kdir / "initramfs"
    shutil.rmtree(root, ignore_errors=True)
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    (root / "bin" / "busybox").chmod(0o755)
    (root / "init").write_text(INIT)
    (root / "init").chmod(0o755)
    names = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
    data = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
        cwd=root,
        input=names,
        capture_output=True,
        check=True,
    ).stdout
    part = out.with_suffix(".part")
    part.write_bytes(data)
    part.replace(out)
    shutil.rmtree(root)
    return out


def _virt_dts(board: Board, cache: Path) -> str:
    tag = "-".join(board.machine[1::2]).replace(",", "_")
    dts = cache / "virt" / f"virt-{board.name}-{tag}.dts"
    if not dts.exists():
        dts.parent.mkdir(parents=True, exist_ok=True)
        dtb = dts.with_suffix(".dtb")
        mach = list(board.machine)
        mach[1] = f"virt,dumpdtb={dtb}"
        subprocess.run([board.qemu, *mach, "-display", "none"], capture_output=True)
        text = subprocess.run(
            ["dtc", "-q", "-I", "dtb", "-O", "dts", str(dtb)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        dts.write_text(text)
    return dts.read_text()


def _boot_and_dump(
    board: Board, k: dict[str, str], scenario: Scenario, cache: Path, out: Path
) -> None:
    import tempfile
    import time

    from vmcores.qmp import QMPClient, QMPError

    if scenario.memory != 1 << 30 or scenario.append or scenario.memreserve:
        raise ArchBuildError(f"scenario {scenario.name} is not one the arm factory boots")
    out.mkdir(parents=True, exist_ok=True)
    dts = out / "board.dts"
    overlay = overlay_dts(scenario)
    if board.arch == "riscv64":
        # riscv's vmcoreinfo has no KERNELOFFSET: keep the kernel at its link address
        overlay = re.sub(r"\s*kaslr-seed = <[^>]*>;", "", overlay)
    dts.write_text(_virt_dts(board, cache) + overlay)
    dtb = out / "board.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), str(dts)], check=True)
    initrd = _initramfs(Path(k["vmlinuz"]).parent, Path(k["busybox"]))
    console = out / "console.log"
    console.unlink(missing_ok=True)
    sockdir = tempfile.mkdtemp(prefix="rmem-qmp-")
    sock = Path(sockdir) / "qmp.sock"
    cmd = [
        board.qemu, *board.machine, "-kernel", k["vmlinuz"], "-initrd", str(initrd),
        "-dtb", str(dtb), "-append", board.append, "-display", "none", "-monitor", "none",
        "-serial", f"file:{console}", "-qmp", f"unix:{sock},server=on,wait=off",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (
            console.exists()
            and READY + "\n" in console.read_text(errors="replace").replace("\r", "")
        ):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ArchBuildError(
                    f"{board.arch} guest for {scenario.name} did not come up: {cmd}"
                )
            time.sleep(0.5)
        raw = out / "qemu.elf"
        qmp = QMPClient(str(sock))
        try:
            qmp.execute("stop")
            qmp.execute("dump-guest-memory", {"paging": False, "protocol": f"file:{raw}"})
            try:
                qmp.execute("quit")
            except (QMPError, OSError):
                pass
        finally:
            qmp.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(sockdir, ignore_errors=True)
    text = console.read_text(errors="replace").replace("\r", "")
    begin = text.index("RMEM-FACTORY-DMESG-BEGIN\n") + len("RMEM-FACTORY-DMESG-BEGIN\n")
    (out / "dmesg.txt").write_text(text[begin : text.index("RMEM-FACTORY-DMESG-END")])
    if board.arch == "arm":
        kdump_layout(raw, out / "vmcore.part", int(k["page_offset"], 16))
    else:
        kdump_layout64(raw, out / "vmcore.part", k)
    # QEMU's own dump stays too (sparse): the tool must refuse it in one line.
    subprocess.run(["fallocate", "--dig-holes", str(raw)], check=False)
    subprocess.run(["fallocate", "--dig-holes", str(out / "vmcore.part")], check=False)
    (out / "vmcore.part").replace(out / "vmcore")


def build_arm(
    scenarios: tuple[str, ...] = ARM_SCENARIOS, cache: Path | None = None, arch: str = "arm"
) -> list[ArchDump]:
    """Build (or reuse) the dumps of one architecture; one QEMU at a time."""
    board = BOARDS[arch]
    cache = cache or default_cache()
    k = _fetch(board, cache)
    dumps = []
    for name in scenarios:
        scenario = relocate(SCENARIOS[name], board.ram_base - 0x40000000)
        out = cache / "dumps-arch" / board.name / k["release"] / name
        stamp = out / "manifest.json"
        key = json.dumps(
            {
                "v": BUILDER_VERSION,
                "k": k["packages"],
                "s": overlay_dts(scenario),
                "m": board.machine,
            }
        )
        out.mkdir(parents=True, exist_ok=True)
        with open(out.parent / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (stamp.exists() and json.loads(stamp.read_text()).get("key") == key):
                stamp.unlink(missing_ok=True)
                _boot_and_dump(board, k, scenario, cache, out)
                stamp.write_text(json.dumps({"key": key, "kernel": k}, indent=2) + "\n")
        dumps.append(
            ArchDump(
                board.arch,
                k["release"],
                name,
                str(out / "vmcore"),
                str(out / "qemu.elf"),
                k["vmlinux"],
                str(out / "dmesg.txt"),
            )
        )
    return dumps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vmcores.arch", description=__doc__)
    ap.add_argument("--arch", choices=sorted(BOARDS), default="arm")
    ap.add_argument("scenario", nargs="*", default=list(ARM_SCENARIOS))
    args = ap.parse_args(argv)
    try:
        for d in build_arm(tuple(args.scenario), arch=args.arch):
            print(f"{d.arch} {d.release} {d.scenario}: {d.vmcore}")
    except (ArchBuildError, FetchError, subprocess.CalledProcessError, KeyError) as e:
        print(f"vmcores.arch: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
