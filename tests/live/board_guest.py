# SPDX-License-Identifier: GPL-2.0-or-later
"""
Boot a factory scenario on a real Debian arm64 kernel and run the board-pack
collector (``rmem-inspect collect-script``) in it under busybox ``sh`` at boot;
its archives leave the guest on a virtio disk (one 48 MiB slot each, written
with ``dd``) and are read on the host.

Two kinds of guest:

- ``python``: the live tier's trixie userland (Python, drgn). The collector runs
  first, then ``report --live --no-debug-info`` (the sysfs fallback) in the same
  boot, then the collector again on a board that lacks things: no BTF (a tmpfs
  over /sys/kernel/btf) and kptr_restrict=2 that cannot be lowered (a read-only
  bind mount over the sysctl).
- ``busybox``: no Python, booted with ``debugfs=off`` as on boards built without
  debugfs: busybox ``sh`` runs the collector, then Android's shell and commands
  (trixie's mksh with toybox's applets alone on PATH) run it again.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rmem_inspect.board_script import collect_script
from vmcores.build import Guest, compile_scenario, qemu_version, virt_dts
from vmcores.debian import SERIES, PrivateApt, fetch_busybox, fetch_kernel, host_mirror
from vmcores.guest_userland import (
    build_userland,
    kernel_modules,
    merge_usr,
    pack_initramfs,
    vmlinux_disk,
)
from vmcores.manifest import default_cache
from vmcores.scenarios import SCENARIOS

__all__ = ["BoardRun", "SLOT", "cleanup", "host", "run_board_guest"]

READY = "RMEM-BOARD-READY"
SLOT = 48 << 20
DISK = 10 * SLOT
TIMEOUT = 600.0

_PROLOGUE = r"""#!/usr/bin/busybox sh
/usr/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin
/usr/bin/busybox --install -s /usr/bin
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
dmesg -n 1
insmod /modules/qemu_fw_cfg.ko || echo "rmem-board: insmod qemu_fw_cfg failed"
for m in $(cat /modules/order); do insmod /modules/$m; done
# the packs' disk by its size (a kcore guest has the vmlinux's disk too)
n=0
disk=
while [ -z "$disk" ] && [ $n -lt 300 ]; do
    for d in /sys/block/vd*; do
        [ "$(cat $d/size 2>/dev/null)" = @DISK_SECTORS@ ] && disk=/dev/${d##*/}
    done
    [ -n "$disk" ] && [ -b "$disk" ] || { disk=; sleep 0.1; }
    n=$((n + 1))
done
echo 1 >/proc/sys/kernel/kptr_restrict
# slot N: /tmp/pN.tar to the disk, its size on the console
slot() {
    dd if=/tmp/p$1.tar of=$disk bs=1M seek=$(($1 * 48)) conv=notrunc 2>/dev/null
    echo "RMEM-PACK $1 $(wc -c </tmp/p$1.tar) rc=$2"
    echo "RMEM-PACK-STDERR $1 $(tr '\n' ' ' </tmp/p$1.err)"
}
after() {
    staged=$(ls -d /tmp/rmem-pack.* 2>/dev/null | wc -l)
    echo "RMEM-AFTER $1 debugfs=$(grep -c ' debugfs ' /proc/mounts)" \
        "kptr=$(cat /proc/sys/kernel/kptr_restrict) staged=$staged"
}
busybox sh /opt/collect.sh >/tmp/p0.tar 2>/tmp/p0.err
rc=$?
after 0
slot 0 $rc
"""

PYTHON_INIT = _PROLOGUE + r"""export PYTHONPATH=/opt/rmem HOME=/root
python3 -m rmem_inspect report --live --no-debug-info --format json \
    >/tmp/fallback.json 2>/tmp/fallback.err
echo "RMEM-FALLBACK rc=$?"
cat /tmp/fallback.json
echo "RMEM-FALLBACK-END"
mount -t tmpfs nobtf /sys/kernel/btf
busybox sh /opt/collect.sh /tmp/p1.tar 2>/tmp/p1.err
rc=$?
umount /sys/kernel/btf
slot 1 $rc
echo 2 >/proc/sys/kernel/kptr_restrict
echo 2 >/tmp/kptr
mount --bind /tmp/kptr /proc/sys/kernel/kptr_restrict
mount -o remount,bind,ro /proc/sys/kernel/kptr_restrict
busybox sh /opt/collect.sh /tmp/p2.tar 2>/tmp/p2.err
rc=$?
after 2
umount /proc/sys/kernel/kptr_restrict
slot 2 $rc
echo RMEM-BOARD-READY
while true; do sleep 3600; done
"""

#: Rounds of /proc/kcore cuts: the planner (``collect-script --from``) runs in the guest,
#: the same code the host runs, with the guest's drgn; the board has no host to ask mid-boot.
KCORE_INIT = _PROLOGUE + r"""export PYTHONPATH=/opt/rmem HOME=/root
vm=
for d in /sys/block/vd*; do [ /dev/${d##*/} = "$disk" ] || vm=/dev/${d##*/}; done
dd if=$vm of=/tmp/vmlinux bs=4M 2>/dev/null
truncate -s @VMLINUX_SIZE@ /tmp/vmlinux
packs=/tmp/p0.tar
n=1
while [ $n -lt 9 ]; do
    python3 -m rmem_inspect collect-script --from $packs >/tmp/r$n.sh 2>/tmp/r$n.plan
    rc=$?
    echo "RMEM-PLAN $n rc=$rc $(tr '\n' ' ' </tmp/r$n.plan)"
    [ $rc = 0 ] || break
    busybox sh /tmp/r$n.sh /tmp/p$n.tar 2>/tmp/p$n.err
    rc=$?
    slot $n $rc
    packs=$packs,/tmp/p$n.tar
    n=$((n + 1))
done
python3 -m rmem_inspect report --live --vmlinux /tmp/vmlinux --format json \
    >/tmp/fallback.json 2>/tmp/fallback.err
echo "RMEM-FALLBACK rc=$?"
cat /tmp/fallback.json
echo "RMEM-FALLBACK-END"
cat /tmp/fallback.err
echo RMEM-BOARD-READY
while true; do sleep 3600; done
"""

BUSYBOX_INIT = (
    _PROLOGUE
    + r"""# Android's shell and commands: mksh runs the script with toybox's applets alone on PATH.
mkdir -p /tmp/tb
for a in $(/usr/bin/toybox); do ln -s /usr/bin/toybox /tmp/tb/$a; done
mksh=/usr/lib/aarch64-linux-musl/bin/mksh
[ -x $mksh ] || mksh=/usr/bin/mksh
PATH=/tmp/tb $mksh /opt/collect.sh >/tmp/p1.tar 2>/tmp/p1.err
rc=$?
after 1
slot 1 $rc
echo RMEM-BOARD-READY
while true; do sleep 3600; done
"""
)


@dataclass
class BoardRun:
    series: str
    scenario: str
    kind: str
    release: str
    #: slot -> pack file on the host
    packs: dict[int, Path]
    #: slot -> (exit status, stderr) of the collector
    status: dict[int, tuple[int, str]]
    #: slot -> the RMEM-AFTER line's fields (debugfs mounts, kptr_restrict, staging dirs left)
    after: dict[int, dict[str, str]]
    fallback: str | None
    console: str
    work: Path
    append: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    #: round -> the planner's exit status and message (kcore guests)
    plans: dict[int, tuple[int, str]] = field(default_factory=dict)


_PACK = re.compile(r"^RMEM-PACK (\d+) (\d+) rc=(\d+)$", re.M)
_ERR = re.compile(r"^RMEM-PACK-STDERR (\d+) (.*)$", re.M)
_AFTER = re.compile(r"^RMEM-AFTER (\d+) (.*)$", re.M)
_PLAN = re.compile(r"^RMEM-PLAN (\d+) rc=(\d+) (.*)$", re.M)
_FALLBACK = re.compile(r"^RMEM-FALLBACK rc=\d+\n(.*?)^RMEM-FALLBACK-END$", re.M | re.S)


#: What an Android board's shell and commands need: mksh, toybox and their libraries.
ANDROID_PACKAGES = ("mksh", "toybox", "libc6", "libcrypt1", "libgcc-s1")


def _android_root(cache: Path, work: Path) -> Path:
    """trixie arm64 mksh and toybox with the C library, unpacked (no Python)."""
    apt = PrivateApt(cache / "apt", "trixie", host_mirror())
    root = work / "android-root"
    for p in apt.download(ANDROID_PACKAGES, cache / "debs"):
        subprocess.run(["dpkg-deb", "-x", p.file, str(root)], check=True)
    merge_usr(root)
    for d in ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/lintian"):
        shutil.rmtree(root / d, ignore_errors=True)
    return root


def run_board_guest(series: str, scenario: str, kind: str) -> BoardRun:
    """Boot ``scenario`` on ``series`` with the ``python`` or ``busybox`` userland and
    collect its packs."""
    cache = default_cache()
    quiet = lambda msg: None  # noqa: E731
    kernel = fetch_kernel(SERIES[series], cache, quiet)
    busybox, _ = fetch_busybox(cache, quiet)
    work = Path(tempfile.mkdtemp(prefix=f"rmem-board-{series}-{scenario}-{kind}-"))
    script = work / "collect.sh"
    script.write_text(collect_script())
    if kind in ("python", "kcore"):
        root, _ = build_userland(cache, quiet)
        init = PYTHON_INIT if kind == "python" else KCORE_INIT
        vmdisk = vmlinux_disk(kernel, cache)
        init = init.replace("@VMLINUX_SIZE@", str(Path(kernel.vmlinux).stat().st_size))
    else:
        root = _android_root(cache, work)
        init = BUSYBOX_INIT
    initrd = pack_initramfs(
        f"board-{kind}",
        cache / "board-initramfs" / kind,
        kernel.release,
        root,
        busybox,
        init.replace("@DISK_SECTORS@", str(DISK // 512)),
        kernel_modules(kernel, ("virtio_mmio", "virtio_blk"), cache),
        {"qemu_fw_cfg.ko": Path(kernel.fw_cfg_module)},
        passwd="root:x:0:0:root:/root:/bin/sh\n",
        log=quiet,
        files={"/opt/collect.sh": script},
    )
    dtb = compile_scenario(SCENARIOS[scenario], virt_dts(cache, qemu_version()), work)
    disk = work / "packs.img"
    with open(disk, "wb") as f:
        f.truncate(DISK)
    guest = Guest(kernel, initrd, dtb, work)
    cmd = guest.command
    cmd[cmd.index("-m") + 1] = "1G" if kind == "busybox" else "2G"
    i = cmd.index("-append") + 1
    if kind == "busybox":
        cmd[i] += " debugfs=off"
    cmd += ["-drive", f"file={disk},if=none,id=packs,format=raw",
            "-device", "virtio-blk-device,drive=packs"]  # fmt: skip
    if kind == "kcore":
        cmd += ["-drive", f"file={vmdisk},if=none,id=vmlinux,format=raw,readonly=on",
                "-device", "virtio-blk-device,drive=vmlinux"]  # fmt: skip
    try:
        guest.start()
        guest.wait_for(READY, TIMEOUT)
        console = guest.text().replace("\r", "")
    finally:
        guest.stop()
    data = disk.read_bytes()
    packs, status = {}, {}
    errs = {int(m.group(1)): m.group(2) for m in _ERR.finditer(console)}
    for m in _PACK.finditer(console):
        n, size = int(m.group(1)), int(m.group(2))
        p = work / f"p{n}.tar"
        p.write_bytes(data[n * SLOT : n * SLOT + size])
        packs[n] = p
        status[n] = (int(m.group(3)), errs.get(n, ""))
    after = {
        int(m.group(1)): dict(kv.split("=", 1) for kv in m.group(2).split())
        for m in _AFTER.finditer(console)
    }
    fb = _FALLBACK.search(console)
    plans = {int(m.group(1)): (int(m.group(2)), m.group(3)) for m in _PLAN.finditer(console)}
    return BoardRun(series=series, scenario=scenario, kind=kind, release=kernel.release,
                    packs=packs, status=status, after=after,
                    fallback=fb.group(1) if fb else None, console=console, work=work,
                    append=cmd[i], plans=plans)  # fmt: skip


def host(*args: str) -> subprocess.CompletedProcess[str]:
    """``rmem-inspect ARGS`` on the host."""
    return subprocess.run(
        [sys.executable, "-m", "rmem_inspect", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )


def cleanup(run: BoardRun) -> None:
    shutil.rmtree(run.work, ignore_errors=True)
