# SPDX-License-Identifier: GPL-2.0-or-later
"""
Boot a factory scenario on a real Debian arm64 kernel with the bcc userland
(vmcores/trace_userland.py), start ``rmem-inspect trace --json`` as root, load
the test module (vmcores/testmod) so real drivers assign carveouts and allocate
from them, stop the trace with SIGINT (Ctrl-C), and return what it printed with
the kernel's own log lines of the module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmcores.build import BuildError, Guest, compile_scenario, qemu_version, virt_dts
from vmcores.debian import SERIES, fetch_busybox, fetch_kernel
from vmcores.manifest import default_cache
from vmcores.scenarios import SCENARIOS
from vmcores.trace_userland import trace_files

__all__ = ["ALLOC_SIZE", "TraceRun", "run_trace_guest"]

DONE = "RMEM-TRACE-DONE"
#: bcc's clang and drgn's index of the vmlinux need the room (SPEC §2: -m 4G).
MEMORY_GIB = 4
TIMEOUT = float(os.environ.get("RMEM_TRACE_TIMEOUT", "900"))
#: Bytes each test device allocates with dma_alloc_coherent (the module's default).
ALLOC_SIZE = 256 * 1024

INIT_SCRIPT = r"""#!/bin/sh
/usr/bin/busybox --install -s /usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
dmesg -n 1
for m in $(cat /modules/order); do insmod /modules/$m; done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
head -c @VMLINUX_SIZE@ /dev/vda > /tmp/vmlinux
export PYTHONPATH=/opt/rmem HOME=/root PYTHONDONTWRITEBYTECODE=1
t0=$(cut -d' ' -f1 /proc/uptime)
# background jobs of a script ignore SIGINT; give the tracer the default back,
# so the interrupt below is a real Ctrl-C
dfl='import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL)'
python3 -c "$dfl; os.execvp(sys.argv[1], sys.argv[1:])" python3 -m rmem_inspect.trace \
    --json --vmlinux /tmp/vmlinux >/tmp/trace.out 2>/tmp/trace.err &
pid=$!
n=0
while ! grep -q 'Hit Ctrl-C' /tmp/trace.err && kill -0 $pid 2>/dev/null && [ $n -lt 1200 ]; do
    sleep 0.5; n=$((n + 1))
done
t1=$(cut -d' ' -f1 /proc/uptime)
insmod /modules/rmem_trace_test.ko
sleep 2
kill -INT $pid
wait $pid
rc=$?
t2=$(cut -d' ' -f1 /proc/uptime)
echo "RMEM-TRACE-BEGIN rc=$rc start=$t0 ready=$t1 end=$t2"
cat /tmp/trace.out
echo RMEM-TRACE-STDERR
cat /tmp/trace.err
echo RMEM-TRACE-DMESG
dmesg | grep 'rmem-trace-test:'
echo RMEM-TRACE-DONE
poweroff -f
"""

_OUT = re.compile(
    r"RMEM-TRACE-BEGIN rc=(\d+) start=([\d.]+) ready=([\d.]+) end=([\d.]+)\n(.*?)"
    r"RMEM-TRACE-STDERR\n(.*?)RMEM-TRACE-DMESG\n(.*?)RMEM-TRACE-DONE\n",
    re.S,
)
_DMESG_INIT = re.compile(r" (\S+): rmem-trace-test: memory-region\[(\d+)\] init (-?\d+)$")
_DMESG_ALLOC = re.compile(r" (\S+): rmem-trace-test: dma_alloc_coherent (\d+) (ok|NULL)$")


@dataclass
class TraceRun:
    series: str
    scenario: str
    release: str
    rc: int
    events: list[dict[str, Any]]
    summary: dict[str, Any]
    stderr: str
    #: (device, index) -> return value, as the module logged it.
    inits: dict[tuple[str, int], int]
    #: device -> (bytes, ok), as the module logged it.
    allocs: dict[str, tuple[int, bool]]
    console: str
    timings: dict[str, float] = field(default_factory=dict)


def _memory_dts(dts: str, gib: int) -> str:
    """QEMU's virt DT with /memory covering ``gib`` GiB (the DTB passed with -dtb wins
    over -m)."""
    new, n = re.subn(
        r"(memory@40000000 \{\s*reg = <0x00 0x40000000) 0x00 0x40000000>",
        rf"\1 {gib * (1 << 30) >> 32:#04x} {gib * (1 << 30) & 0xFFFFFFFF:#010x}>",
        dts,
    )
    if n != 1:
        raise BuildError("QEMU's virt devicetree has no memory@40000000 node to resize")
    return new


def parse(console: str) -> tuple[int, str, str, str, dict[str, float]]:
    m = _OUT.search(console.replace("\r", ""))
    if m is None:
        raise BuildError("the guest printed no trace result:\n" + console[-3000:])
    rc, t0, t1, t2 = int(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4))
    return rc, m.group(5), m.group(6), m.group(7), {"attach": t1 - t0, "traced": t2 - t1}


def run_trace_guest(series: str, scenario: str) -> TraceRun:
    cache = default_cache()
    timings: dict[str, float] = {}
    t = time.monotonic()
    quiet = lambda msg: None  # noqa: E731
    kernel = fetch_kernel(SERIES[series], cache, quiet)
    busybox, _ = fetch_busybox(cache, quiet)
    files = trace_files(kernel, busybox, INIT_SCRIPT, cache, quiet)
    work = Path(tempfile.mkdtemp(prefix=f"rmem-trace-{series}-{scenario}-"))
    dtb = compile_scenario(
        SCENARIOS[scenario], _memory_dts(virt_dts(cache, qemu_version()), MEMORY_GIB), work
    )
    timings["prepare"] = time.monotonic() - t
    guest = Guest(kernel, files.initrd, dtb, work)
    cmd = guest.command
    cmd[cmd.index("-m") + 1] = f"{MEMORY_GIB}G"
    cmd += [
        "-drive",
        f"file={files.disk},if=none,id=vmlinux,format=raw,readonly=on",
        "-device",
        "virtio-blk-device,drive=vmlinux",
    ]
    try:
        t = time.monotonic()
        guest.start()
        assert guest.proc is not None
        guest.wait_for(DONE, TIMEOUT, panic_fails=True)
        timings["guest"] = time.monotonic() - t
        console = guest.text()
    finally:
        guest.stop()
    shutil.rmtree(work, ignore_errors=True)
    rc, out, err, dmesg, guest_times = parse(console)
    timings.update(guest_times)
    for key, pattern in (
        ("verdicts", r"read in ([\d.]+) s"),
        ("compile", r"attached in ([\d.]+) s"),
    ):
        if m := re.search(pattern, err):
            timings[key] = float(m.group(1))
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    summary = lines[-1]["summary"] if lines and "summary" in lines[-1] else {}
    events = [d for d in lines if "summary" not in d]
    inits: dict[tuple[str, int], int] = {}
    allocs: dict[str, tuple[int, bool]] = {}
    for line in dmesg.splitlines():
        if m := _DMESG_INIT.search(line):
            inits[(m.group(1), int(m.group(2)))] = int(m.group(3))
        elif m := _DMESG_ALLOC.search(line):
            allocs[m.group(1)] = (int(m.group(2)), m.group(3) == "ok")
    return TraceRun(
        series, scenario, kernel.release, rc, events, summary, err, inits, allocs, console,
        timings,
    )  # fmt: skip
