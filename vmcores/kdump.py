# SPDX-License-Identifier: GPL-2.0-or-later
"""
Real kdump captures: the dumps field users get, made the way kdump makes them.

For one (kernel series, scenario) pair the guest boots the scenario's DT with
``crashkernel=256M``, loads the same kernel as capture kernel (``kexec -p``,
Debian trixie's arm64 kexec-tools) and panics with sysrq-c. The capture kernel
runs the same initramfs; seeing /proc/vmcore it writes every format of
:data:`JOBS` from that ONE capture, each to its own raw virtio-blk disk (found
by its serial number): a plain copy of /proc/vmcore (what Debian's kdump-tools
keeps when makedumpfile fails) and makedumpfile's flattened output (``-F``) of
ELF and of each compression at ``-d 31`` (Debian's default) and at ``-d 1``.
The host trims each disk to its stream and reassembles the flattened ones with
:func:`rmem_inspect.formats.kdump.reassemble` (what ``makedumpfile -R`` does),
keeping one flattened file as the flattened input kind.

Facts met on these kernels (each is handled here and recorded in the manifest):

- Debian trixie's makedumpfile 1.7.6 refuses the 6.12 and 7.x arm64 kernels
  ("PAGE SIZE 0x1000 and VA Bits 52 not supported"): for them only the copy of
  /proc/vmcore exists, and makedumpfile's message is kept in ``kdump.log``.
- Debian's makedumpfile is built without snappy: with ``-p`` it says "'-p' option is
  disabled, because this binary doesn't support snappy compression" and writes
  uncompressed pages, so there is no snappy job; ``plain-d31`` (no compression
  option) is that uncompressed kdump format.
- Debian's 6.1 cloud-arm64 kernel lacks CONFIG_KALLSYMS_ALL, so /proc/kallsyms has
  no ``_text`` and kexec-tools writes a garbage kernel-text PT_LOAD into the
  elfcorehdr (kexec/arch/arm64/crashdump-arm64.c reads ``_text`` with
  get_kernel_sym()). The guest then bind-mounts a copy of /proc/kallsyms with the
  real ``_text`` = ``_stext`` - 0x10000 (arch/arm64/kernel/vmlinux.lds.S: the
  image header and the 64 KiB-aligned ``.head.text``) over it before ``kexec -p``.

A capture is stored in ``$CACHE/kdump/<release>/<scenario>/`` with one
``manifest.json`` per format (``<format>/manifest.json``, the dump next to it);
its key hashes every input, so reruns reuse it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rmem_inspect.formats.elf import ElfError, read_elf
from rmem_inspect.formats.kdump import FlatFile, KdumpError, read_kdump, reassemble
from vmcores.debian import Kernel, Package, PrivateApt, host_mirror
from vmcores.guest_userland import kernel_modules, merge_usr, resolve_closure
from vmcores.manifest import DumpManifest

__all__ = [
    "JOBS",
    "KDUMP_SCENARIOS",
    "KdumpJob",
    "capture",
    "kdump_manifests",
]

#: Bump when the way captures are made changes, to force new captures.
KDUMP_VERSION = 1
SUITE = "trixie"
KDUMP_PACKAGES = ("kexec-tools", "makedumpfile")
#: Packages of the closure that are not libraries the two programs load.
SKIP_PACKAGES = re.compile(r"^(perl.*|libperl.*|debconf|cdebconf|dpkg|tar|readline-common)$")
#: The four scenarios of issue 15: the overflow, a clean board, nomap-conflict, alloc-fail.
KDUMP_SCENARIOS = ("overflow", "baseline", "nomap-conflict", "alloc-fail")
#: Added to the scenario's command line (the QEMU dump's, from vmcores/build.py).
CRASHKERNEL = "crashkernel=256M"
#: panic=1: a capture kernel that panics reboots, and -no-reboot makes QEMU exit.
CAPTURE_APPEND = "console=ttyAMA0 nr_cpus=1 reset_devices panic=1"
#: Raw output disks are sparse; the /proc/vmcore copy needs guest RAM plus headers.
DISK_BYTES = 1280 << 20
TIMEOUT = float(os.environ.get("RMEM_FACTORY_KDUMP_TIMEOUT", "600"))
DONE = "RMEM-KDUMP-DONE"
Log = Callable[[str], None]


@dataclass(frozen=True)
class KdumpJob:
    """One output of the capture kernel: a makedumpfile run (``args``, flattened with -F),
    or the /proc/vmcore copy (no ``args``); what it should produce: ``format`` ("elf" or
    "kdump"), ``compression`` and dump ``level``."""

    name: str
    args: str
    format: str
    compression: str
    level: int | None

    @property
    def flattened(self) -> bool:
        return bool(self.args)


JOBS = (
    KdumpJob("vmcore-copy", "", "elf", "none", None),
    KdumpJob("elf-d31", "-E -d 31", "elf", "none", 31),
    KdumpJob("zlib-d31", "-c -d 31", "kdump", "zlib", 31),
    KdumpJob("lzo-d31", "-l -d 31", "kdump", "lzo", 31),
    KdumpJob("plain-d31", "-d 31", "kdump", "none", 31),
    KdumpJob("zstd-d31", "-z -d 31", "kdump", "zstd", 31),
    KdumpJob("zlib-d1", "-c -d 1", "kdump", "zlib", 1),
)


def _init_script() -> str:
    jobs = "\n".join(
        f'run_job {j.name} "{j.args}"' if j.args else f"copy_job {j.name}" for j in JOBS
    )
    return f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /usr/bin
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
insmod /modules/qemu_fw_cfg.ko || echo "rmem-kdump: insmod qemu_fw_cfg failed"
for m in $(cat /modules/order); do insmod /modules/$m || echo "rmem-kdump: insmod $m failed"; done
sleep 1
disk() {{
  for b in /sys/block/vd*; do
    [ "$(cat $b/serial 2>/dev/null)" = "$1" ] && echo /dev/${{b##*/}} && return
  done
}}
run_job() {{
  d=$(disk "$1")
  makedumpfile --message-level 22 -F $2 /proc/vmcore > "$d"
  echo "RMEM-KDUMP-JOB $1 rc=$?"
}}
copy_job() {{
  d=$(disk "$1")
  cat /proc/vmcore > "$d"
  echo "RMEM-KDUMP-JOB $1 rc=$?"
}}
if [ -e /proc/vmcore ]; then
  echo RMEM-KDUMP-CAPTURE-KERNEL
{jobs}
  sync
  echo {DONE}
  poweroff -f
fi
echo RMEM-FACTORY-DMESG-BEGIN
dmesg
echo RMEM-FACTORY-DMESG-END
in=$(disk rmem-in)
set -- $(head -c 512 $in)
dd if=$in of=/tmp/Image bs=1M skip=1 count=$2 2>/dev/null
dd if=$in of=/tmp/initrd bs=1M skip=$((1 + $2)) count=$4 2>/dev/null
truncate -s $1 /tmp/Image
truncate -s $3 /tmp/initrd
if ! grep -q ' _text$' /proc/kallsyms; then
  stext=$(grep ' _stext$' /proc/kallsyms | cut -d' ' -f1)
  text=$(printf '%016x' $((0x$stext - 0x10000)))
  (cat /proc/kallsyms; echo "$text T _text") > /tmp/kallsyms
  mount --bind /tmp/kallsyms /proc/kallsyms
  echo "rmem-kdump: no _text in /proc/kallsyms; _text = _stext - 0x10000 = $text"
fi
if kexec -p /tmp/Image --initrd=/tmp/initrd --append="{CAPTURE_APPEND}"; then
  echo RMEM-KDUMP-LOADED
  echo c > /proc/sysrq-trigger
fi
# no capture kernel: a panic would hang the guest until the timeout
echo RMEM-KDUMP-LOAD-FAILED
poweroff -f
"""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_USERLANDS: dict[Path, tuple[Path, list[Package]]] = {}
_USERLAND_LOCK = threading.Lock()


def _userland(cache: Path, log: Log) -> tuple[Path, list[Package]]:
    """kexec-tools, makedumpfile and the arm64 libraries they load, unpacked (cached on
    disk, and resolved once per process: apt costs seconds per package)."""
    with _USERLAND_LOCK:
        if cache not in _USERLANDS:
            _USERLANDS[cache] = _resolve_userland(cache, log)
        return _USERLANDS[cache]


def _resolve_userland(cache: Path, log: Log) -> tuple[Path, list[Package]]:
    apt = PrivateApt(cache / "apt", SUITE, host_mirror())
    names = [n for n in resolve_closure(apt, KDUMP_PACKAGES) if not SKIP_PACKAGES.match(n)]
    # One apt-cache call for every version and checksum; download only what is new.
    shown = apt._run("apt-cache", "show", "--no-all-versions", *names)
    fields = {}
    for stanza in shown.split("\n\n"):
        f = dict(re.findall(r"^(Package|Version|SHA256|Architecture): (\S+)$", stanza, re.M))
        if "Package" in f:
            fields[f["Package"]] = f
    key = _sha(
        json.dumps([KDUMP_VERSION, [(n, fields.get(n, {}).get("SHA256")) for n in names]]).encode()
    )[:16]
    root = cache / "kdump-userland" / key
    stamp = root.with_name(key + ".json")
    if root.is_dir() and stamp.exists():
        debs = [Package(**p) for p in json.loads(stamp.read_text())]
        return root, debs
    debs = apt.download(names, cache / "debs")
    tmp = root.with_name(root.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for p in debs:
        subprocess.run(["dpkg-deb", "-x", p.file, str(tmp)], check=True)
    merge_usr(tmp)
    for sub in ("usr/share", "var", "etc/xen"):
        shutil.rmtree(tmp / sub, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    tmp.replace(root)
    stamp.write_text(json.dumps([vars(p) for p in debs], indent=1) + "\n")
    log(f"kdump userland: {len(debs)} trixie arm64 packages unpacked")
    return root, debs


def _cpio(trees: list[Path]) -> bytes:
    out = b""
    for tree in trees:
        names = subprocess.run(
            ["find", "."], cwd=tree, capture_output=True, text=True, check=True
        ).stdout
        out += subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
            cwd=tree,
            input=names.encode(),
            capture_output=True,
            check=True,
        ).stdout
    return out


def _initramfs(kernel: Kernel, busybox: Path, root: Path, cache: Path) -> Path:
    """The zstd initramfs both kernels boot: userland, busybox, modules, /init."""
    modules = kernel_modules(kernel, ("virtio_mmio", "virtio_blk"), cache)
    init = _init_script()
    h = hashlib.sha256()
    for blob in (init.encode(), str(root).encode(), busybox.read_bytes()):
        h.update(blob)
    for m in [Path(kernel.fw_cfg_module), *modules]:
        h.update(m.read_bytes())
    out = cache / "kdump-initramfs" / f"{kernel.release}-{h.hexdigest()[:16]}.cpio.zst"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        extra = Path(tmp) / "extra"
        for d in ("usr/bin", "modules", "proc", "sys", "dev", "tmp"):
            (extra / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(busybox, extra / "usr/bin/busybox")
        (extra / "usr/bin/busybox").chmod(0o755)
        shutil.copy(kernel.fw_cfg_module, extra / "modules/qemu_fw_cfg.ko")
        for m in modules:
            shutil.copy(m, extra / "modules" / m.name)
        (extra / "modules/order").write_text(" ".join(m.name for m in modules) + "\n")
        (extra / "init").write_text(init)
        (extra / "init").chmod(0o755)
        cpio = Path(tmp) / "all.cpio"
        cpio.write_bytes(_cpio([root, extra]))
        part = out.with_suffix(".part")
        subprocess.run(["zstd", "-q", "-f", "-T0", "-9", str(cpio), "-o", str(part)], check=True)
        part.replace(out)
    return out


def _input_disk(kernel: Kernel, initrd: Path, path: Path) -> None:
    """Header sector "IMAGE_BYTES IMAGE_MIB INITRD_BYTES INITRD_MIB", then the kernel
    image at 1 MiB and the initramfs after it, each padded to whole MiB."""
    image = Path(kernel.vmlinuz).read_bytes()
    rd = initrd.read_bytes()
    mib = lambda n: (n + (1 << 20) - 1) >> 20  # noqa: E731
    with open(path, "wb") as f:
        f.write(f"{len(image)} {mib(len(image))} {len(rd)} {mib(len(rd))}\n".encode())
        f.seek(1 << 20)
        f.write(image)
        f.seek((1 + mib(len(image))) << 20)
        f.write(rd)
        f.truncate((1 + mib(len(image)) + mib(len(rd))) << 20)


def _trim(job: KdumpJob, disk: Path, out: Path) -> str:
    """Cut the job's stream out of its raw disk into ``out``; '' or why it failed."""
    try:
        if job.flattened:
            with open(disk, "rb") as f:
                flat = FlatFile(f)
            if not flat.complete:
                return "no flattened stream end on the disk"
            end = flat.stream_end
        else:
            end = read_elf(str(disk)).described_size
    except (KdumpError, ElfError, OSError) as e:
        return str(e)
    if end > disk.stat().st_size:
        # e.g. kexec-tools' garbage kernel-text PT_LOAD when /proc/kallsyms has no _text
        return f"the stream claims {end} bytes, more than its {disk.stat().st_size}-byte disk"
    disk.replace(out)
    os.truncate(out, end)
    subprocess.run(["fallocate", "--dig-holes", str(out)], check=False)
    return ""


def capture(
    kernel: Kernel,
    busybox: tuple[Path, Package],
    scenario: str,
    dtb: Path,
    qver: str,
    cache: Path,
    force: bool,
    log: Log,
    machine: list[str],
    append: str,
) -> list[DumpManifest]:
    """Capture ``scenario`` on ``kernel`` with kdump (or reuse the capture); one manifest
    per format that was written. ``machine`` and ``append`` are the QEMU machine and the
    command line of the scenario's QEMU dump; ``crashkernel=256M`` is added."""
    append = f"{append} {CRASHKERNEL}"
    out = cache / "kdump" / kernel.release / scenario
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        root, debs = _userland(cache, log)
        initrd = _initramfs(kernel, busybox[0], root, cache)
        key = _sha(
            json.dumps(
                [
                    KDUMP_VERSION,
                    _sha_file(dtb),
                    [p.sha256 for p in kernel.packages],
                    [p.sha256 for p in debs],
                    _sha_file(initrd),
                    qver,
                    machine,
                    append,
                    CAPTURE_APPEND,
                ]
            ).encode()
        )
        stamp = out / "capture.json"
        tag = f"[{kernel.series} {scenario} kdump]"
        if not force and stamp.exists():
            try:
                if json.loads(stamp.read_text()).get("key") == key:
                    log(f"{tag} up to date")
                    return kdump_manifests(out)
            except (ValueError, OSError):
                pass
        for p in out.iterdir():
            if p.name not in (".lock",):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        shutil.copy(dtb, out / "board.dtb")
        work = out / "work"
        work.mkdir()
        _input_disk(kernel, initrd, work / "rmem-in.img")
        command = [
            "qemu-system-aarch64",
            *machine,
            "-kernel",
            kernel.vmlinuz,
            "-initrd",
            str(initrd),
            "-dtb",
            str(out / "board.dtb"),
            "-append",
            append,
            "-device",
            "vmcoreinfo",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-serial",
            f"file:{out / 'console.log'}",
        ]
        for i, name in enumerate(["rmem-in", *(j.name for j in JOBS)]):
            img = work / f"{name}.img"
            if name != "rmem-in":
                with open(img, "wb") as f:
                    f.truncate(DISK_BYTES)
            ro = ",readonly=on" if name == "rmem-in" else ""
            command += [
                "-drive",
                f"if=none,id=d{i},file={img},format=raw{ro}",
                "-device",
                f"virtio-blk-device,drive=d{i},serial={name}",
            ]
        log(f"{tag} booting {kernel.release} with crashkernel=256M")
        t0 = time.monotonic()
        with open(out / "qemu.stderr", "wb") as err:
            status: int | str
            try:
                status = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=err,
                    stderr=err,
                    timeout=TIMEOUT,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:  # subprocess.run has killed QEMU
                status = f"killed at the {TIMEOUT:.0f} s timeout"  # fmt: skip
        seconds = round(time.monotonic() - t0, 1)
        try:
            console = (out / "console.log").read_text(errors="replace").replace("\r", "")
        except FileNotFoundError:
            console = ""
        if DONE not in console:
            why = "kexec -p failed" if "RMEM-KDUMP-LOAD-FAILED" in console else "no capture"
            raise RuntimeError(
                f"{tag} {why} after {seconds} s (QEMU status {status}); "
                f"console tail:\n" + "\n".join(console.splitlines()[-30:])
            )
        b = console.find("RMEM-FACTORY-DMESG-BEGIN\n")
        e = console.find("RMEM-FACTORY-DMESG-END", b)
        (out / "dmesg.txt").write_text(console[b + 25 : e] if b >= 0 and e > b else "")
        cap = console[console.find("RMEM-KDUMP-CAPTURE-KERNEL") :]
        (out / "kdump.log").write_text(cap)
        rcs = dict(re.findall(r"RMEM-KDUMP-JOB (\S+) rc=(\d+)", cap))
        results: dict[str, str] = {}
        manifests = []
        for job in JOBS:
            jdir = out / job.name
            if rcs.get(job.name) != "0":
                results[job.name] = f"failed (status {rcs.get(job.name, 'none')}); see kdump.log"
                continue
            jdir.mkdir()
            name = "vmcore.flat" if job.flattened else "vmcore"
            why = _trim(job, work / f"{job.name}.img", jdir / name)
            if why:
                results[job.name] = f"unusable output: {why}"
                continue
            paths = {"vmcore": "vmcore"}
            if job.flattened:
                reassemble(str(jdir / name), str(jdir / "vmcore"))
                subprocess.run(["fallocate", "--dig-holes", str(jdir / "vmcore")], check=False)
                if job.name == "zlib-d31":
                    paths["flattened"] = name  # kdump-tools' default, kept as flattened
                else:
                    (jdir / name).unlink()
            kd = read_kdump(str(jdir / "vmcore"))
            compression = kd.compression if kd is not None else "none"
            st = (jdir / "vmcore").stat()
            m = DumpManifest(
                scenario=scenario,
                series=kernel.series,
                kernel_release=kernel.release,
                packages=[vars(q) | {"file": Path(q.file).name} for q in kernel.packages],
                busybox=vars(busybox[1]) | {"file": Path(busybox[1].file).name},
                dtb_sha256=_sha_file(dtb),
                qemu_version=qver,
                qemu_command=command,
                paths=paths
                | {
                    "vmlinux": os.path.relpath(kernel.vmlinux, jdir),
                    "debug_root": os.path.relpath(kernel.debug_root, jdir),
                    "console_log": "../console.log",
                    "dmesg": "../dmesg.txt",
                    "dtb": "../board.dtb",
                    "initramfs": os.path.relpath(initrd, jdir),
                },
                vmcore_bytes=st.st_size,
                vmcore_allocated_bytes=st.st_blocks * 512,
                boot_seconds=seconds,
                dump_seconds=0.0,
                built_at=datetime.now(UTC).isoformat(timespec="seconds"),
                key=key,
                dump_format=job.format,
                compression=compression,
                dump_level=job.level,
                capture=f"kdump:{job.name}",
                capture_tools=[vars(q) | {"file": Path(q.file).name} for q in debs],
            )
            m.save(jdir)
            m.directory = str(jdir)
            manifests.append(m)
            results[job.name] = "ok"
        shutil.rmtree(work)
        stamp.write_text(
            json.dumps({"key": key, "seconds": seconds, "jobs": results}, indent=2) + "\n"
        )
        log(f"{tag} captured in {seconds} s: " + ", ".join(f"{k} {v}" for k, v in results.items()))
        return manifests


def kdump_manifests(directory: Path) -> list[DumpManifest]:
    """The per-format manifests of one capture directory."""
    return [DumpManifest.load(p) for p in sorted(directory.glob("*/manifest.json"))]
