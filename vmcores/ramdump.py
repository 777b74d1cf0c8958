# SPDX-License-Identifier: GPL-2.0-or-later
"""
Raw RAM dumps of real boots, as a board's bootloader (Qualcomm's ramdump), a JTAG
probe (Lauterbach ``data.save.binary``) or a hypervisor saves them: DDR split into
bank files with their physical bases, a Lauterbach ``load.cmm`` naming them, and
QEMU's own ``dump-guest-memory`` ELF of the same stopped guest, with no VMCOREINFO
note.

Every arm64 boot is the factory's (:mod:`vmcores.build`: the same kernel, DTB with
its /chosen/kaslr-seed, initramfs, RAM and command line) run once more WITHOUT
``-device vmcoreinfo``: the guest loads qemu_fw_cfg as before, but QEMU has nowhere
to keep the note. Once the guest is ready it is stopped and, over QMP, each bank is
written with ``pmemsave`` (HMP would parse ``0x... /path`` as a division) and then
the whole RAM with ``dump-guest-memory``, so banks and ELF hold the same bytes
(checked). The reference is the factory's ELF dump WITH the note of the same inputs,
another boot: that both boots laid the kernel out alike is checked, not assumed —
the VMCOREINFO text this boot left in RAM must equal the reference's note line for
line (KERNELOFFSET, PHYS_OFFSET, kimage_voffset, swapper_pg_dir, ...), and the
kernel's ``OF: reserved mem:`` / ``Reserved memory:`` log lines must be equal.

The 32-bit Arm and riscv64 boards (:mod:`vmcores.arch`) boot the same way; their
reference is the kdump-layout rewrite (:func:`vmcores.arch.kdump_layout`) of this
very boot's ELF, the same boot byte for byte.

Also kept: a copy of the banks with every VMCOREINFO text in RAM zeroed (the
``vmcoreinfo_data`` page and the ``vmcoreinfo_note`` buffer; kernel/vmcore_info.c,
kernel/crash_core.c before 6.9), as from a kernel without CONFIG_VMCORE_INFO or
with that page overwritten; banks it does not touch are hard links.

Everything is sparse, under ``$CACHE/ramdumps/<release>/<scenario>/`` (arm64) and
``$CACHE/ramdumps-arch/<board>/<release>/<scenario>/``, with ``ramdump.json``
(sha256 of every file); a set is rebuilt only when its reference's inputs change.
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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rmem_inspect.formats.elf import read_elf
from vmcores.arch import ARM_SCENARIOS, BOARDS, build_arm, kdump_layout, kdump_layout64
from vmcores.build import (
    BOOT_TIMEOUT,
    BuildError,
    Guest,
    build_one,
    compile_scenario,
    make_initramfs,
    qemu_version,
    virt_dts,
)
from vmcores.debian import SERIES, FetchError, Kernel, fetch_busybox, fetch_kernel
from vmcores.manifest import default_cache
from vmcores.ramdump_set import (
    PAGE,
    RAMDUMP_VERSION,
    Bank,
    RamdumpSet,
    bank_layout,
    check_same_bytes,
    file_facts,
    load_cmm,
    rmem_lines,
    save_set,
    sha256_file,
    up_to_date,
    vmcoreinfo_fields,
    vmcoreinfo_texts,
    wipe,
)
from vmcores.scenarios import SCENARIOS

__all__ = ["ARCHES", "MAX_GUESTS", "build", "build_arm64", "build_board", "main"]

#: Boards of vmcores/arch.py dumped the same way.
ARCHES = ("arm", "riscv64")
#: Guests at once (two cores shared with everything else).
MAX_GUESTS = 2
Log = Callable[[str], None]


def _capture(guest: Guest, out: Path, banks: list[Bank]) -> None:
    """Stop the guest; pmemsave every bank, then dump-guest-memory (ELF), over QMP."""
    from vmcores.qmp import QMPClient, QMPError

    qmp = QMPClient(str(guest.qmp_path))
    try:
        qmp.execute("stop")
        for b in banks:
            part = out / (b.file + ".part")
            part.unlink(missing_ok=True)
            qmp.execute("pmemsave", {"val": b.base, "size": b.size, "filename": str(part)})
        part = out / "qemu.elf.part"
        part.unlink(missing_ok=True)
        qmp.execute("dump-guest-memory", {"paging": False, "protocol": f"file:{part}"})
        try:
            qmp.execute("quit")
        except (QMPError, OSError):
            pass
    except QMPError as e:
        raise BuildError(f"QMP: {e}") from e
    finally:
        qmp.close()
    for name in [b.file for b in banks] + ["qemu.elf"]:
        subprocess.run(["fallocate", "--dig-holes", str(out / (name + ".part"))], check=False)
        (out / (name + ".part")).replace(out / name)


@dataclass(frozen=True)
class _Described:
    """What a set's record says before its boot is checked."""

    arch: str
    series: str
    scenario: str
    #: The reference dump, relative to the set's directory, and what kind it is.
    reference: str
    reference_kind: str
    vmlinux: str


def _finish(
    out: Path,
    banks: list[Bank],
    release: str,
    reference: Path,
    ref_dmesg: str,
    what: str,
    described: _Described,
    guest: Guest,
    timings: tuple[float, float],
    key: str,
) -> RamdumpSet:
    """Check the saved banks and ELF of ``out``, compare the VMCOREINFO found in RAM
    with ``reference``'s, write load.cmm and the wiped copy: the set's record."""
    check_same_bytes(out / "qemu.elf", out, banks)
    if read_elf(str(out / "qemu.elf")).vmcoreinfo is not None:
        raise BuildError(f"{out / 'qemu.elf'} has a VMCOREINFO note: QEMU had -device vmcoreinfo?")
    texts = vmcoreinfo_texts(out, banks, release)
    if not texts or texts[0][0] % PAGE:
        raise BuildError(f"{what}: no page of RAM starts with OSRELEASE={release}")
    ref = read_elf(str(reference)).vmcoreinfo or {}
    mine = vmcoreinfo_fields(texts[0][1])
    differs = sorted(k for k in set(ref) | set(mine) if ref.get(k) != mine.get(k))
    rmem_equal = rmem_lines((out / "dmesg.txt").read_text()) == rmem_lines(ref_dmesg)
    (out / "load.cmm").write_text(load_cmm(banks, what))
    ranges = wipe(out, banks, texts, what)
    return RamdumpSet(
        arch=described.arch,
        series=described.series,
        scenario=described.scenario,
        release=release,
        banks=[asdict(b) for b in banks],
        load_cmm="load.cmm",
        qemu_elf="qemu.elf",
        reference=described.reference,
        reference_kind=described.reference_kind,
        vmlinux=described.vmlinux,
        vmcoreinfo_at=[t[0] for t in texts],
        vmcoreinfo_differs=differs,
        rmem_log_equal=rmem_equal,
        wiped="wiped",
        wiped_ranges=ranges,
        files={},
        qemu_command=guest.command,
        boot_seconds=timings[0],
        dump_seconds=timings[1],
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        key=key,
    )


def _boot(guest: Guest, out: Path, banks: list[Bank]) -> tuple[float, float, str]:
    t0 = time.monotonic()
    try:
        guest.start()
        guest.wait_ready(BOOT_TIMEOUT)
        t1 = time.monotonic()
        _capture(guest, out, banks)
        t2 = time.monotonic()
    finally:
        guest.stop()
    text = guest.text().replace("\r", "")
    begin, end = text.find("RMEM-FACTORY-DMESG-BEGIN\n"), text.find("RMEM-FACTORY-DMESG-END")
    (out / "dmesg.txt").write_text(
        text[begin + len("RMEM-FACTORY-DMESG-BEGIN\n") : end] if 0 <= begin < end else ""
    )
    return round(t1 - t0, 2), round(t2 - t1, 2), text


def _record(out: Path, rs: RamdumpSet, banks: list[Bank], log: Log, tag: str) -> RamdumpSet:
    names = [b.file for b in banks] + ["qemu.elf", "load.cmm", "wiped/load.cmm"]
    names += [f"wiped/{b.file}" for b in banks]
    known: dict[tuple[int, int], dict] = {}
    rs.files = {n: file_facts(out / n, known) for n in names}
    disk = sum(f["allocated"] for n, f in rs.files.items()) >> 20
    log(
        f"{tag} banks {', '.join(b.file for b in banks)} + qemu.elf, {disk} MiB on disk; "
        f"VMCOREINFO at {', '.join(hex(a) for a in rs.vmcoreinfo_at)}; "
        f"differs from the reference in {rs.vmcoreinfo_differs or 'nothing'}"
    )
    return save_set(out, rs)


def build_arm64(
    kernel: Kernel,
    busybox: tuple,
    scenario: str,
    index: int,
    base_dts: str,
    qver: str,
    cache: Path,
    force: bool,
    log: Log,
) -> RamdumpSet:
    sc = SCENARIOS[scenario]
    ref = build_one(kernel, busybox, sc, base_dts, qver, cache, False, log)
    out = cache / "ramdumps" / kernel.release / scenario
    out.mkdir(parents=True, exist_ok=True)
    tag = f"[{kernel.series} {scenario} ramdump]"
    banks = bank_layout(0x40000000, sc.memory, index)
    key = hashlib.sha256(
        json.dumps([RAMDUMP_VERSION, ref.key, [asdict(b) for b in banks]]).encode()
    ).hexdigest()
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (old := up_to_date(out, key, force)) is not None:
            log(f"{tag} up to date")
            return old
        dtb = compile_scenario(sc, base_dts, out)
        if sha256_file(dtb) != ref.dtb_sha256:
            raise BuildError(f"{tag} the DTB differs from the reference dump's")
        guest = Guest(kernel, make_initramfs(kernel, busybox[0], cache), dtb, out, sc)
        i = guest.command.index("vmcoreinfo")
        del guest.command[i - 1 : i + 1]  # no -device vmcoreinfo: no note in the ELF
        log(f"{tag} booting {kernel.release} without -device vmcoreinfo")
        boot_s, dump_s, _text = _boot(guest, out, banks)
        described = _Described(
            "arm64",
            kernel.series,
            scenario,
            os.path.relpath(ref.path("vmcore"), out),
            "factory-elf",
            os.path.relpath(ref.path("vmlinux"), out),
        )
        what = f"{kernel.release} booted with the {scenario} scenario"
        rs = _finish(
            out,
            banks,
            kernel.release,
            ref.path("vmcore"),
            ref.path("dmesg").read_text(),
            what,
            described,
            guest,
            (boot_s, dump_s),
            key,
        )
        return _record(out, rs, banks, log, tag)


def build_board(
    arch: str, scenario: str, index: int, cache: Path, force: bool, log: Log
) -> RamdumpSet:
    board = BOARDS[arch]
    today = build_arm((scenario,), cache, arch)[0]
    src = Path(today.vmcore).parent
    stamp = json.loads((src / "manifest.json").read_text())
    k = stamp["kernel"]
    out = cache / "ramdumps-arch" / arch / k["release"] / scenario
    out.mkdir(parents=True, exist_ok=True)
    tag = f"[{arch} {scenario} ramdump]"
    mem = board.machine[board.machine.index("-m") + 1]
    ram = int(mem[:-1]) << (30 if mem.endswith("G") else 20)
    banks = bank_layout(board.ram_base, ram, index)
    key = hashlib.sha256(
        json.dumps([RAMDUMP_VERSION, stamp["key"], [asdict(b) for b in banks]]).encode()
    ).hexdigest()
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (old := up_to_date(out, key, force)) is not None:
            log(f"{tag} up to date")
            return old
        shutil.copy(src / "board.dtb", out / "board.dtb")
        kernel = Kernel(arch, k["release"], k["vmlinuz"], k["vmlinux"], "", k["debug_root"], [])
        # vmcores.arch's own initramfs (busybox, no qemu_fw_cfg: this kernel has none)
        initrd = Path(k["vmlinuz"]).parent / "initramfs.cpio"
        guest = Guest(kernel, initrd, out / "board.dtb", out)
        tail = guest.command[guest.command.index("-initrd") :]
        tail[tail.index("-append") + 1] = board.append
        i = tail.index("vmcoreinfo")
        del tail[i - 1 : i + 1]
        guest.command = [board.qemu, *board.machine, "-kernel", k["vmlinuz"], *tail]
        log(f"{tag} booting {k['release']} on {board.qemu}")
        boot_s, dump_s, _text = _boot(guest, out, banks)
        # the reference: this very boot's ELF in the kdump layout vmcores.arch writes
        ref = out / "reference.elf"
        if arch == "arm":
            kdump_layout(out / "qemu.elf", ref, int(k["page_offset"], 16))
        else:
            kdump_layout64(out / "qemu.elf", ref, k)
        subprocess.run(["fallocate", "--dig-holes", str(ref)], check=False)
        described = _Described(
            board.arch,
            "6.12",
            scenario,
            "reference.elf",
            "kdump-layout-same-boot",
            os.path.relpath(k["vmlinux"], out),
        )
        what = f"{k['release']} ({arch}) booted with the {scenario} scenario"
        rs = _finish(
            out,
            banks,
            k["release"],
            ref,
            Path(today.dmesg).read_text(),
            what,
            described,
            guest,
            (boot_s, dump_s),
            key,
        )
        rs = _record(out, rs, banks, log, tag)
        rs.files["reference.elf"] = file_facts(ref)
        return save_set(out, rs)


def build(
    series: list[str],
    scenarios: list[str],
    arches: list[str],
    cache: Path | None = None,
    jobs: int = MAX_GUESTS,
    force: bool = False,
    log: Log = print,
) -> list[RamdumpSet]:
    """Build (or reuse) the sets of ``series`` x ``scenarios`` and of the ``arches``
    boards x their scenarios; at most ``jobs`` guests at once (arch boards one at a time)."""
    cache = cache or default_cache()
    lock = threading.Lock()

    def say(msg: str) -> None:
        with lock:
            log(msg)
            sys.stdout.flush()

    qver = qemu_version()
    base = virt_dts(cache, qver)
    try:
        busybox = fetch_busybox(cache, say)
        kernels = [fetch_kernel(SERIES[s], cache, say) for s in series]
    except FetchError as e:
        raise BuildError(str(e)) from e
    order = list(SCENARIOS)
    results: list[RamdumpSet] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, MAX_GUESTS))) as pool:
        futs = {
            pool.submit(
                build_arm64, k, busybox, s, order.index(s), base, qver, cache, force, say
            ): f"{k.series} {s}"
            for k in kernels
            for s in scenarios
        }
        for fut in as_completed(futs):
            try:
                results.append(fut.result())
            except Exception as e:  # one bad boot must not hide the others
                errors.append(f"[{futs[fut]}] {type(e).__name__}: {e}")
    for arch in arches:
        for i, s in enumerate(ARM_SCENARIOS):
            try:
                results.append(build_board(arch, s, i, cache, force, say))
            except Exception as e:
                errors.append(f"[{arch} {s}] {type(e).__name__}: {e}")
    if errors:
        raise BuildError("\n".join(errors))
    return sorted(results, key=lambda r: (r.arch, r.series, r.scenario))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m vmcores.ramdump",
        description="Raw RAM dumps (bank files + load.cmm + note-less QEMU ELF) of real boots.",
    )
    ap.add_argument("-k", "--series", action="append", choices=sorted(SERIES))
    ap.add_argument("-s", "--scenario", action="append", choices=sorted(SCENARIOS))
    ap.add_argument(
        "--arch",
        action="append",
        choices=[*ARCHES, "none"],
        help="arm/riscv64 boards (default both; 'none' skips them)",
    )
    ap.add_argument("-j", "--jobs", type=int, default=MAX_GUESTS)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    arches = [a for a in (args.arch or ARCHES) if a != "none"]
    t0 = time.monotonic()
    try:
        sets = build(
            args.series or list(SERIES),
            args.scenario or list(SCENARIOS),
            arches,
            jobs=args.jobs,
            force=args.force,
        )
    except BuildError as e:
        print(f"vmcores.ramdump: error: {e}", file=sys.stderr)
        return 2
    for rs in sets:
        print(f"{rs.arch:7} {rs.series:5} {rs.scenario:20} {rs.directory}")
    print(f"vmcores.ramdump: {len(sets)} sets in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
