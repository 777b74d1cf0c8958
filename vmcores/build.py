# SPDX-License-Identifier: GPL-2.0-or-later
"""
The vmcore factory: boot real Debian arm64 kernels under QEMU (TCG) with the
devicetree scenarios of ``vmcores/scenarios.py`` and dump them as ELF vmcores.

For every (kernel series, scenario) pair it:

1. compiles the scenario on top of QEMU's own ``virt`` DTB;
2. boots the kernel with a busybox initramfs that loads ``qemu_fw_cfg`` (so the
   kernel hands its VMCOREINFO to ``-device vmcoreinfo``) and prints the full
   kernel log, then a ready marker;
3. stops the guest and dumps it over QMP (``dump-guest-memory``, ELF), makes
   the dump sparse and writes ``manifest.json``;
4. for the :data:`~vmcores.kdump.KDUMP_SCENARIOS`, boots again with ``crashkernel=``,
   panics and lets a real kdump capture kernel write every format makedumpfile can
   (:mod:`vmcores.kdump`), one guest at a time (``--no-kdump`` skips this).

Everything lives in the cache (``$RMEM_INSPECT_CACHE``, default
``~/.cache/rmem-inspect``); a dump is rebuilt only when one of its inputs
changed.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path

from vmcores.debian import SERIES, FetchError, Kernel, Package, fetch_busybox, fetch_kernel
from vmcores.kdump import KDUMP_SCENARIOS
from vmcores.kdump import capture as kdump_capture
from vmcores.manifest import DumpManifest, default_cache
from vmcores.scenarios import (
    DEFAULT_MEMORY,
    EXTRA_SCENARIOS,
    SCENARIOS,
    Scenario,
    memreserve_dts,
    overlay_dts,
)

__all__ = ["BuildError", "build", "main"]

#: Bump when the way dumps are made changes, to force rebuilds.
BUILDER_VERSION = 1
READY_MARKER = "RMEM-FACTORY-READY"
DMESG_BEGIN = "RMEM-FACTORY-DMESG-BEGIN"
DMESG_END = "RMEM-FACTORY-DMESG-END"
#: No NIC: the guests need no network, and QEMU's default virtio-net wants
#: efi-virtio.rom (Debian's ipxe-qemu, a Recommends that setup does not install);
#: without it QEMU exits at once ('failed to find romfile "efi-virtio.rom"').
MACHINE = ["-M", "virt", "-cpu", "cortex-a57", "-m", "1G", "-smp", "2", "-nic", "none"]
APPEND = "console=ttyAMA0"
BOOT_TIMEOUT = float(os.environ.get("RMEM_FACTORY_BOOT_TIMEOUT", "300"))

INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /tmp
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# qemu_fw_cfg writes the kernel's VMCOREINFO into QEMU's vmcoreinfo device:
# without it drgn cannot open the dump.
insmod /qemu_fw_cfg.ko || echo "rmem-factory: insmod qemu_fw_cfg failed"
[ -e /sys/firmware/qemu_fw_cfg/rev ] || echo "rmem-factory: qemu_fw_cfg not bound"
echo {DMESG_BEGIN}
dmesg
echo {DMESG_END}
echo {READY_MARKER}
while true; do sleep 3600; done
"""


class BuildError(RuntimeError):
    pass


def machine(scenario: Scenario | None) -> list[str]:
    """MACHINE with the scenario's RAM size."""
    if scenario is None or scenario.memory == DEFAULT_MEMORY:
        return list(MACHINE)
    out = list(MACHINE)
    out[out.index("-m") + 1] = f"{scenario.memory >> 20}M"
    return out


def append(scenario: Scenario | None) -> str:
    """The kernel command line: APPEND and the scenario's own arguments."""
    return f"{APPEND} {scenario.append}" if scenario is not None and scenario.append else APPEND


Log = Callable[[str], None]


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise BuildError(f"{tool} not found: apt-get install {package}")
    return path


def qemu_version() -> str:
    out = subprocess.run(
        [_need("qemu-system-aarch64", "qemu-system-arm"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()[0].strip()


def virt_dts(cache: Path, qver: str) -> str:
    """QEMU's own virt devicetree for MACHINE, decompiled (cached per QEMU version)."""
    d = cache / "virt"
    d.mkdir(parents=True, exist_ok=True)
    tag = _sha256_bytes((qver + " ".join(MACHINE)).encode())[:16]
    dts = d / f"virt-{tag}.dts"
    if not dts.exists():
        dtb = d / f"virt-{tag}.dtb"
        mach = list(MACHINE)
        mach[1] = f"virt,dumpdtb={dtb}"
        subprocess.run(
            ["qemu-system-aarch64", *mach, "-display", "none"],
            capture_output=True,
            check=True,
        )
        # A raw dumped DTB hands the kernel both kaslr-seed and rng-seed from
        # one run and was seen to hang early boot; always go through dtc.
        text = subprocess.run(
            [_need("dtc", "device-tree-compiler"), "-q", "-I", "dtb", "-O", "dts", str(dtb)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        dts.write_text(text)
    return dts.read_text()


def compile_scenario(scenario: Scenario, base_dts: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    dts = out_dir / "board.dts"
    dtb = out_dir / "board.dtb"
    head = memreserve_dts(scenario)
    if head:
        # /memreserve/ must stand before the root node: right after the version tag
        base_dts = base_dts.replace("/dts-v1/;\n", "/dts-v1/;\n" + head, 1)
    dts.write_text(base_dts + overlay_dts(scenario))
    p = subprocess.run(
        ["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), str(dts)],
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise BuildError(f"dtc failed on scenario {scenario.name}: {p.stderr.strip()}")
    return dtb


def make_initramfs(kernel: Kernel, busybox: Path, cache: Path) -> Path:
    """An uncompressed newc cpio: busybox, /init, qemu_fw_cfg.ko."""
    module = Path(kernel.fw_cfg_module)
    key = _sha256_bytes(
        INIT_SCRIPT.encode() + _sha256_file(busybox).encode() + _sha256_file(module).encode()
    )[:16]
    out = cache / "initramfs" / f"{kernel.release}-{key}.cpio"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    _need("cpio", "cpio")
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        root = Path(tmp) / "root"
        (root / "bin").mkdir(parents=True)
        shutil.copy(busybox, root / "bin" / "busybox")
        (root / "bin" / "busybox").chmod(0o755)
        shutil.copy(module, root / "qemu_fw_cfg.ko")
        (root / "init").write_text(INIT_SCRIPT)
        (root / "init").chmod(0o755)
        names = subprocess.run(
            ["find", "."], cwd=root, capture_output=True, text=True, check=True
        ).stdout
        data = subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
            cwd=root,
            input=names.encode(),
            capture_output=True,
            check=True,
        ).stdout
        part = out.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        part.write_bytes(data)
        part.replace(out)
    return out


class Guest:
    """One QEMU process with its serial log and QMP socket."""

    def __init__(
        self,
        kernel: Kernel,
        initrd: Path,
        dtb: Path,
        workdir: Path,
        scenario: Scenario | None = None,
    ) -> None:
        self.workdir = workdir
        self.console = workdir / "console.log"
        # UNIX socket paths are limited to 108 bytes: keep the socket in /tmp.
        self._sockdir = tempfile.mkdtemp(prefix="rmem-qmp-")
        self.qmp_path = Path(self._sockdir) / "qmp.sock"
        self.command = [
            "qemu-system-aarch64",
            *machine(scenario),
            "-kernel",
            kernel.vmlinuz,
            "-initrd",
            str(initrd),
            "-dtb",
            str(dtb),
            "-append",
            append(scenario),
            "-device",
            "vmcoreinfo",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            f"file:{self.console}",
            "-qmp",
            f"unix:{self.qmp_path},server=on,wait=off",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.console.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "qemu.stderr", "wb"),
        )

    def text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(
        self, marker: str, timeout: float, what: str | None = None, panic_fails: bool = False
    ) -> None:
        """Return once the console prints ``marker`` on a line of its own; BuildError, with
        the command, QEMU's stderr and the console's tail, when QEMU exits first, after
        ``timeout`` seconds, or (``panic_fails``) when the guest kernel panics."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text().replace("\r", "")
            if marker + "\n" in text:
                return
            if self.proc.poll() is not None:
                raise BuildError(self.failure(f"QEMU exited with status {self.proc.returncode}"))
            if panic_fails and "Kernel panic" in text:
                time.sleep(1)  # the rest of the panic message
                raise BuildError(self.failure("the guest kernel panicked"))
            time.sleep(0.5)
        raise BuildError(self.failure(f"no {what or marker} after {timeout:.0f} s"))

    def wait_ready(self, timeout: float) -> None:
        """Until the factory init's ready marker (the scenario has booted)."""
        self.wait_for(READY_MARKER, timeout, "ready marker")

    def failure(self, why: str) -> str:
        """``why`` with the command, QEMU's stderr and the last 40 console lines."""
        tail = "\n".join(self.text().replace("\r", "").splitlines()[-40:])
        err = ""
        try:
            err = (self.workdir / "qemu.stderr").read_text(errors="replace").strip()
        except OSError:
            pass
        return (
            f"{why}\n  command: {' '.join(self.command)}\n"
            f"  qemu stderr: {err or '(empty)'}\n  console tail:\n{tail}"
        )

    def dump(self, vmcore: Path) -> None:
        from vmcores.qmp import QMPClient, QMPError

        qmp = QMPClient(str(self.qmp_path))
        try:
            qmp.execute("stop")
            part = vmcore.with_suffix(".part")
            part.unlink(missing_ok=True)
            qmp.execute("dump-guest-memory", {"paging": False, "protocol": f"file:{part}"})
            part.replace(vmcore)
            try:
                qmp.execute("quit")
            except (QMPError, OSError):
                pass  # QEMU may close the socket before it answers "quit"
        except QMPError as e:
            raise BuildError(f"QMP: {e}") from e
        finally:
            qmp.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self._sockdir, ignore_errors=True)


def _split_dmesg(console: str) -> str:
    text = console.replace("\r", "")
    start = text.find(DMESG_BEGIN + "\n")
    end = text.find(DMESG_END, start)
    if start < 0 or end < 0:
        return ""
    return text[start + len(DMESG_BEGIN) + 1 : end]


def build_one(
    kernel: Kernel,
    busybox: tuple[Path, Package],
    scenario: Scenario,
    base_dts: str,
    qver: str,
    cache: Path,
    force: bool,
    log: Log,
) -> DumpManifest:
    out = cache / "dumps" / kernel.release / scenario.name
    out.mkdir(parents=True, exist_ok=True)
    # Two builders sharing a cache (tests while the demo runs, say) must not boot and
    # dump the same pair at once: the second waits, then finds the dump up to date.
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tag = f"[{kernel.series} {scenario.name}]"
        dtb = compile_scenario(scenario, base_dts, out)
        initrd = make_initramfs(kernel, busybox[0], cache)
        key = _sha256_bytes(
            json.dumps(
                [
                    BUILDER_VERSION,
                    _sha256_file(dtb),
                    [p.sha256 for p in kernel.packages],
                    _sha256_file(initrd),
                    qver,
                    machine(scenario),
                    append(scenario),
                ]
            ).encode()
        )
        mpath = out / "manifest.json"
        vmcore = out / "vmcore"
        if not force and mpath.exists() and vmcore.exists():
            try:
                old = DumpManifest.load(mpath)
                if old.key == key:
                    log(f"{tag} up to date")
                    return old
            except (ValueError, TypeError, KeyError):
                pass
        mpath.unlink(missing_ok=True)
        vmcore.unlink(missing_ok=True)

        guest = Guest(kernel, initrd, dtb, out, scenario)
        t0 = time.monotonic()
        log(f"{tag} booting {kernel.release}")
        try:
            guest.start()
            guest.wait_ready(BOOT_TIMEOUT)
            t1 = time.monotonic()
            log(f"{tag} ready after {t1 - t0:.1f} s, dumping")
            guest.dump(vmcore)
            t2 = time.monotonic()
        finally:
            guest.stop()
        console = guest.text()
        (out / "dmesg.txt").write_text(_split_dmesg(console))
        subprocess.run(["fallocate", "--dig-holes", str(vmcore)], check=False)
        st = vmcore.stat()
        rel = lambda p: os.path.relpath(p, out)  # noqa: E731
        manifest = DumpManifest(
            scenario=scenario.name,
            series=kernel.series,
            kernel_release=kernel.release,
            packages=[vars(p) | {"file": Path(p.file).name} for p in kernel.packages],
            busybox=vars(busybox[1]) | {"file": Path(busybox[1].file).name},
            dtb_sha256=_sha256_file(dtb),
            qemu_version=qver,
            qemu_command=guest.command,
            paths={
                "vmcore": "vmcore",
                "vmlinux": rel(kernel.vmlinux),
                "debug_root": rel(kernel.debug_root),
                "console_log": "console.log",
                "dmesg": "dmesg.txt",
                "dtb": "board.dtb",
                "dts": "board.dts",
                "initramfs": rel(initrd),
            },
            vmcore_bytes=st.st_size,
            vmcore_allocated_bytes=st.st_blocks * 512,
            boot_seconds=round(t1 - t0, 2),
            dump_seconds=round(t2 - t1, 2),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            key=key,
        )
        manifest.save(out)
        manifest.directory = str(out)
        log(
            f"{tag} dumped {st.st_size >> 20} MiB ({manifest.vmcore_allocated_bytes >> 20} MiB "
            f"on disk) in {t2 - t1:.1f} s"
        )
        return manifest


def build(
    series: list[str],
    scenarios: list[str],
    cache: Path | None = None,
    jobs: int | None = None,
    force: bool = False,
    log: Log = print,
    kdump: bool = False,
) -> list[DumpManifest]:
    """Build (or reuse) the dumps for ``series`` x ``scenarios``; return their manifests.

    ``kdump``: also capture the :data:`~vmcores.kdump.KDUMP_SCENARIOS` among ``scenarios``
    with a real in-guest kdump (:mod:`vmcores.kdump`), one guest at a time; their
    per-format manifests are returned too."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    for tool, pkg in (
        ("qemu-system-aarch64", "qemu-system-arm"),
        ("dtc", "device-tree-compiler"),
        ("cpio", "cpio"),
        ("dpkg-deb", "dpkg"),
        ("apt-get", "apt"),
    ):
        _need(tool, pkg)
    lock = threading.Lock()

    def say(msg: str) -> None:
        with lock:
            log(msg)
            sys.stdout.flush()

    qver = qemu_version()
    base = virt_dts(cache, qver)
    say(f"factory: {qver}; cache {cache}")
    try:
        busybox = fetch_busybox(cache, say)
        kernels = [fetch_kernel(SERIES[s], cache, say) for s in series]
    except FetchError as e:
        raise BuildError(str(e)) from e
    known = SCENARIOS | EXTRA_SCENARIOS
    pairs = [(k, known[s]) for k in kernels for s in scenarios]
    jobs = jobs or max(1, os.cpu_count() or 1)
    results: list[DumpManifest] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futs = {
            pool.submit(build_one, k, busybox, sc, base, qver, cache, force, say): (k, sc)
            for k, sc in pairs
        }
        for n, fut in enumerate(as_completed(futs), 1):
            k, sc = futs[fut]
            try:
                results.append(fut.result())
                say(f"factory: {n}/{len(pairs)} done")
            except Exception as e:  # one bad pair must not hide the others' results
                errors.append(f"[{k.series} {sc.name}] {type(e).__name__}: {e}")
                say(f"factory: {n}/{len(pairs)} FAILED [{k.series} {sc.name}]")
    if kdump:
        # One capture at a time: each boots two kernels under TCG (about 70 s).
        for k in kernels:
            for name in (s for s in scenarios if s in KDUMP_SCENARIOS):
                dtb = cache / "dumps" / k.release / name / "board.dtb"
                sc = known[name]
                try:
                    results += kdump_capture(
                        k, busybox, name, dtb, qver, cache, force, say, machine(sc), append(sc)
                    )
                except Exception as e:
                    errors.append(f"[{k.series} {name} kdump] {type(e).__name__}: {e}")
    if errors:
        raise BuildError("\n".join(errors))
    return sorted(results, key=lambda m: (m.series, m.scenario, m.capture))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vmcores.build",
        description="Build ELF vmcores of real Debian arm64 kernels booted with crafted DTs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  python -m vmcores.build                      # every series x every scenario
  python -m vmcores.build -k 6.12 -s overflow  # the default dump only
  python -m vmcores.build --list               # scenarios and series
""",
    )
    parser.add_argument(
        "-k", "--series", action="append", choices=sorted(SERIES), help="kernel series (repeat)"
    )
    parser.add_argument(
        "-s",
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS | EXTRA_SCENARIOS),
        help="scenario (repeat; default: every scenario except the extra ones)",
    )
    parser.add_argument("-j", "--jobs", type=int, help="guests booted at once (default: cores)")
    parser.add_argument("--cache", type=Path, help="cache directory (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--list", action="store_true", help="list scenarios and series")
    parser.add_argument(
        "--no-kdump",
        action="store_true",
        help=f"skip the in-guest kdump captures ({', '.join(KDUMP_SCENARIOS)})",
    )
    args = parser.parse_args(argv)
    if args.list:
        for s in SERIES.values():
            print(f"series {s.key:5} Debian {s.suite}, {s.flavour}")
        for sc in SCENARIOS.values():
            print(f"scenario {sc.name:20} {sc.description}")
        for sc in EXTRA_SCENARIOS.values():
            print(f"extra    {sc.name:20} {sc.description}")
        return 0
    try:
        manifests = build(
            args.series or list(SERIES),
            args.scenario or list(SCENARIOS),
            cache=args.cache,
            jobs=args.jobs,
            force=args.force,
            kdump=not args.no_kdump,
        )
    except BuildError as e:
        print(f"factory: error: {e}", file=sys.stderr)
        return 2
    for m in manifests:
        print(
            f"{m.series:5} {m.scenario:20} {m.capture:18} {m.kernel_release:28} "
            f"{m.path('vmcore')}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
