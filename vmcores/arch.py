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

__all__ = ["ARM_SCENARIOS", "ArchDump", "build_arm", "kdump_layout", "main"]

#: Bump when the way dumps are made changes.
BUILDER_VERSION = 2
SUITE = "trixie"
FLAVOUR = "armmp-lpae"
#: clean, overflow, a no-map conflict and an allocation failure.
ARM_SCENARIOS = ("baseline", "overflow", "nomap-conflict", "alloc-fail")
MACHINE = ["-M", "virt", "-cpu", "cortex-a15", "-m", "768M", "-smp", "2", "-nic", "none"]
APPEND = "console=ttyAMA0"
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


def kdump_layout(src: Path, dst: Path, page_offset: int) -> None:
    """Rewrite QEMU's ELF32 dump ``src`` into ``dst`` with kexec-tools' kdump headers."""
    with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m[:4] != b"\x7fELF" or m[4] != 1 or m[5] != 1:
            raise ArchBuildError(f"{src}: not a little-endian ELF32 dump")
        (phoff,) = struct.unpack_from("<I", m, 28)
        phentsize, phnum = struct.unpack_from("<HH", m, 42)
        phdrs = [list(struct.unpack_from("<8I", m, phoff + i * phentsize)) for i in range(phnum)]
        notes = b"".join(bytes(m[p[1] : p[1] + p[4]]) for p in phdrs if p[0] == PT_NOTE)
        # The kernel's note: Elf32_Nhdr (namesz 11, descsz, type 0), "VMCOREINFO\0"
        # padded to 4, then the text, which always starts with OSRELEASE=.
        at = m.find(NOTE_NAME + b"OSRELEASE=")
        if at < 12:
            raise ArchBuildError(f"{src}: the kernel's VMCOREINFO note is not in RAM")
        namesz, descsz, _ntype = struct.unpack_from("<III", m, at - 12)
        if namesz != 11:
            raise ArchBuildError(f"{src}: malformed VMCOREINFO note header")
        vmcoreinfo = bytes(m[at - 12 : at + 12 + ((descsz + 3) & ~3)])
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


def _fetch(cache: Path, log: object = print) -> dict[str, str]:
    """Newest trixie armmp-lpae kernel, its vmlinux, busybox-static (armhf)."""
    apt = PrivateApt(cache / "apt", SUITE, host_mirror(), arch="armhf")
    meta = apt.show(f"linux-image-{FLAVOUR}-dbg")
    m = re.search(r"linux-image-(\S+)-dbg\b", (meta or {}).get("Depends", ""))
    if not m:
        raise FetchError(f"cannot resolve linux-image-{FLAVOUR}-dbg in {SUITE} (armhf)")
    release = m.group(1)
    # debug_search_paths() (rmem_inspect.collect.program) looks in kernels/RELEASE/dbg
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
        po = re.search(r"^CONFIG_PAGE_OFFSET=(0x[0-9a-fA-F]+)$", config, re.M)
        if not po:
            raise ArchBuildError(f"no CONFIG_PAGE_OFFSET in config-{release}")
        shutil.move(str(tree / "boot" / f"vmlinuz-{release}"), kdir / "vmlinuz")
        shutil.move(str(tree / "bb" / "usr" / "bin" / "busybox"), kdir / "busybox")
        shutil.rmtree(tree)
        vmlinux = next(p for p in dbg.rglob("vmlinux*") if p.is_file())
        k = {
            "release": release,
            "vmlinuz": str(kdir / "vmlinuz"),
            "vmlinux": str(vmlinux),
            "debug_root": str(dbg),
            "busybox": str(kdir / "busybox"),
            "page_offset": po.group(1),
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


def _virt_dts(cache: Path) -> str:
    dts = cache / "virt" / "virt-arm-768M.dts"
    if not dts.exists():
        dts.parent.mkdir(parents=True, exist_ok=True)
        dtb = dts.with_suffix(".dtb")
        mach = list(MACHINE)
        mach[1] = f"virt,dumpdtb={dtb}"
        subprocess.run(["qemu-system-arm", *mach, "-display", "none"], capture_output=True)
        text = subprocess.run(
            ["dtc", "-q", "-I", "dtb", "-O", "dts", str(dtb)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        dts.write_text(text)
    return dts.read_text()


def _boot_and_dump(k: dict[str, str], scenario: Scenario, cache: Path, out: Path) -> None:
    import tempfile
    import time

    from vmcores.qmp import QMPClient, QMPError

    if scenario.memory != 1 << 30 or scenario.append or scenario.memreserve:
        raise ArchBuildError(f"scenario {scenario.name} is not one the arm factory boots")
    out.mkdir(parents=True, exist_ok=True)
    dts = out / "board.dts"
    dts.write_text(_virt_dts(cache) + overlay_dts(scenario))
    dtb = out / "board.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), str(dts)], check=True)
    initrd = _initramfs(Path(k["vmlinuz"]).parent, Path(k["busybox"]))
    console = out / "console.log"
    console.unlink(missing_ok=True)
    sockdir = tempfile.mkdtemp(prefix="rmem-qmp-")
    sock = Path(sockdir) / "qmp.sock"
    cmd = [
        "qemu-system-arm", *MACHINE, "-kernel", k["vmlinuz"], "-initrd", str(initrd),
        "-dtb", str(dtb), "-append", APPEND, "-display", "none", "-monitor", "none",
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
                raise ArchBuildError(f"arm guest for {scenario.name} did not come up: {cmd}")
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
    kdump_layout(raw, out / "vmcore.part", int(k["page_offset"], 16))
    # QEMU's own dump stays too (sparse): the tool must refuse it in one line.
    subprocess.run(["fallocate", "--dig-holes", str(raw)], check=False)
    subprocess.run(["fallocate", "--dig-holes", str(out / "vmcore.part")], check=False)
    (out / "vmcore.part").replace(out / "vmcore")


def build_arm(
    scenarios: tuple[str, ...] = ARM_SCENARIOS, cache: Path | None = None
) -> list[ArchDump]:
    """Build (or reuse) the 32-bit Arm dumps; one QEMU at a time."""
    cache = cache or default_cache()
    k = _fetch(cache)
    dumps = []
    for name in scenarios:
        scenario = SCENARIOS[name]
        out = cache / "dumps-arch" / "arm" / k["release"] / name
        stamp = out / "manifest.json"
        key = json.dumps(
            {"v": BUILDER_VERSION, "k": k["packages"], "s": overlay_dts(scenario), "m": MACHINE}
        )
        out.mkdir(parents=True, exist_ok=True)
        with open(out.parent / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (stamp.exists() and json.loads(stamp.read_text()).get("key") == key):
                stamp.unlink(missing_ok=True)
                _boot_and_dump(k, scenario, cache, out)
                stamp.write_text(json.dumps({"key": key, "kernel": k}, indent=2) + "\n")
        dumps.append(
            ArchDump(
                "arm",
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
    ap.add_argument("scenario", nargs="*", default=list(ARM_SCENARIOS))
    args = ap.parse_args(argv)
    try:
        for d in build_arm(tuple(args.scenario)):
            print(f"{d.arch} {d.release} {d.scenario}: {d.vmcore}")
    except (ArchBuildError, FetchError, subprocess.CalledProcessError, KeyError) as e:
        print(f"vmcores.arch: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
