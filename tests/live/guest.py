# SPDX-License-Identifier: GPL-2.0-or-later
"""
Boot a factory scenario on a real Debian arm64 kernel with the live userland
(vmcores/guest_userland.py), run rmem_inspect inside the guest as root, then
run ``--qemu`` from the host on the running guest and dump it over QMP.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmcores.build import Guest, compile_scenario, qemu_version, virt_dts
from vmcores.deb import build_deb
from vmcores.debian import SERIES, Kernel, fetch_busybox, fetch_kernel
from vmcores.guest_userland import GuestFiles, guest_files
from vmcores.manifest import default_cache
from vmcores.scenarios import SCENARIOS

__all__ = ["GuestRun", "RunResult", "run_guest"]

READY = "RMEM-LIVE-READY"
#: Guest RAM: the vmlinux is copied to tmpfs and drgn indexes it.
MEMORY = "2G"
TIMEOUT = float(os.environ.get("RMEM_LIVE_TIMEOUT", "600"))
VMLINUX = "/tmp/vmlinux"

# Each run: stdout and stderr to files, then printed between markers, so kernel
# console output cannot interleave with the JSON.
INIT_SCRIPT = r"""#!/usr/bin/busybox sh
/usr/bin/busybox --install -s /usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
dmesg -n 1
insmod /modules/qemu_fw_cfg.ko || echo "rmem-live: insmod qemu_fw_cfg failed"
for m in $(cat /modules/order); do insmod /modules/$m; done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/vda of=/tmp/vmlinux bs=4M 2>/dev/null
truncate -s @VMLINUX_SIZE@ /tmp/vmlinux
t1=$(cut -d' ' -f1 /proc/uptime)
echo "RMEM-LIVE-COPY $t0 $t1"
# Debian byte-compiles at install time, dpkg-deb -x does not: let the first run
# write the .pyc files to the tmpfs root, the others reuse them.
export PYTHONPATH=/opt/rmem HOME=/root
run() {
    name=$1; shift
    a=$(cut -d' ' -f1 /proc/uptime)
    "$@" >/tmp/$name.out 2>/tmp/$name.err
    rc=$?
    b=$(cut -d' ' -f1 /proc/uptime)
    echo "RMEM-LIVE-BEGIN $name rc=$rc t=$a..$b"
    cat /tmp/$name.out
    echo "RMEM-LIVE-STDERR $name"
    cat /tmp/$name.err
    echo "RMEM-LIVE-END $name"
}
ri="python3 -m rmem_inspect"
run drgn python3 -c "import drgn, sys; print(drgn.__version__, sys.version.split()[0])"
run live $ri check --live --vmlinux /tmp/vmlinux --format json
# drgn without a vmlinux: the kernel's own kallsyms (drgn 0.0.30+), a lookup of a data symbol.
run kallsyms python3 -c "
import drgn
from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms
p = drgn.Program(); p.set_kernel()
p.register_symbol_finder('kallsyms', load_vmlinux_kallsyms(p), enable_index=0)
print(p.symbol('memblock'))"
run fallback $ri report --live --no-debug-info --format json
run no_vmlinux $ri check --live --format json
run no_vmlinux_btf $ri check --live --types btf --format json
run no_debug_info $ri check --live --types dwarf --format json
drop="import os, runpy, sys; os.setgid(65534); os.setuid(65534); sys.argv[0] = 'rmem_inspect'"
run not_root python3 -c "$drop; runpy.run_module('rmem_inspect', run_name='__main__')" \
    check --live --vmlinux /tmp/vmlinux
run not_root_fallback python3 -c "$drop; runpy.run_module('rmem_inspect', run_name='__main__')" \
    check --live --no-debug-info
umount /proc
run no_kcore $ri check --live --vmlinux /tmp/vmlinux --format json
mount -t proc proc /proc
# The board install: this project's .deb with Debian's dpkg (by path: this busybox sh
# runs its own dpkg and env applets first), then the installed command.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
run dpkg_install /usr/bin/dpkg -i /opt/rmem-inspect.deb
unset PYTHONPATH
run installed /usr/bin/rmem-inspect check --live --vmlinux /tmp/vmlinux --format json
run installed_where python3 -c "import rmem_inspect; print(rmem_inspect.__file__)"
echo RMEM-LIVE-READY
while true; do sleep 3600; done
"""


@dataclass
class RunResult:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class GuestRun:
    series: str
    scenario: str
    release: str
    vmlinux: str
    runs: dict[str, RunResult]
    #: ``check --qemu`` from the host on the running guest.
    qemu: RunResult | None
    #: ``check --vmcore`` on the dump of the same boot.
    dump: RunResult
    console: str
    timings: dict[str, float] = field(default_factory=dict)
    initrd_bytes: int = 0


_PREPARED: dict[str, tuple[Kernel, GuestFiles]] = {}
_RUN = re.compile(
    r"RMEM-LIVE-BEGIN (\w+) rc=(\d+) t=([\d.]*)\.\.([\d.]*)\n(.*?)RMEM-LIVE-STDERR \1\n(.*?)"
    r"RMEM-LIVE-END \1\n",
    re.S,
)


def _parse(console: str) -> dict[str, RunResult]:
    text = console.replace("\r", "")
    return {
        m.group(1): RunResult(
            int(m.group(2)),
            m.group(5),
            m.group(6),
            float(m.group(4) or 0) - float(m.group(3) or 0),
        )
        for m in _RUN.finditer(text)
    }


def _host(args: list[str], timeout: float = 600) -> RunResult:
    t = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "rmem_inspect", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[2],
    )
    return RunResult(p.returncode, p.stdout, p.stderr, time.monotonic() - t)


def run_guest(series: str, scenario: str, with_qemu: bool = True) -> GuestRun:
    cache = default_cache()
    timings: dict[str, float] = {}
    t = time.monotonic()
    quiet = lambda msg: None  # noqa: E731
    if series not in _PREPARED:  # apt resolution costs seconds: once per session
        kernel = fetch_kernel(SERIES[series], cache, quiet)
        busybox, _ = fetch_busybox(cache, quiet)
        deb = build_deb(cache)
        _PREPARED[series] = (
            kernel,
            guest_files(kernel, busybox, INIT_SCRIPT, cache, quiet, deb=deb),
        )
    kernel, files = _PREPARED[series]
    qver = qemu_version()
    work = Path(tempfile.mkdtemp(prefix=f"rmem-live-{series}-{scenario}-"))
    dtb = compile_scenario(SCENARIOS[scenario], virt_dts(cache, qver), work)
    timings["prepare"] = time.monotonic() - t
    guest = Guest(kernel, files.initrd, dtb, work)
    cmd = guest.command
    cmd[cmd.index("-m") + 1] = MEMORY
    cmd += [
        "-drive",
        f"file={files.disk},if=none,id=vmlinux,format=raw,readonly=on",
        "-device",
        "virtio-blk-device,drive=vmlinux",
    ]
    qemu: RunResult | None = None
    try:
        t = time.monotonic()
        guest.start()
        guest.wait_for(READY, TIMEOUT)
        timings["guest"] = time.monotonic() - t
        console = guest.text()
        if with_qemu:
            qemu = _host(
                ["check", "--qemu", str(guest.qmp_path), "--vmlinux", kernel.vmlinux,
                 "--format", "json"]  # fmt: skip
            )
            timings["qemu"] = qemu.seconds
        t = time.monotonic()
        vmcore = work / "vmcore"
        guest.dump(vmcore)
        timings["dump"] = time.monotonic() - t
    finally:
        guest.stop()
    dump = _host(
        ["check", "--vmcore", str(vmcore), "--vmlinux", kernel.vmlinux, "--format", "json"]
    )
    timings["dump_check"] = dump.seconds
    shutil.rmtree(work, ignore_errors=True)
    runs = _parse(console)
    for name, r in runs.items():
        timings[f"guest_{name}"] = r.seconds
    return GuestRun(
        series=series,
        scenario=scenario,
        release=kernel.release,
        vmlinux=kernel.vmlinux,
        runs=runs,
        qemu=qemu,
        dump=dump,
        console=console,
        timings=timings,
        initrd_bytes=files.initrd.stat().st_size,
    )
