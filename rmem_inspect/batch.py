# SPDX-License-Identifier: GPL-2.0-or-later
"""
batch
-----

Triage many crash dumps at once: find every dump under a directory, match each
to its vmlinux by the build-id in its VMCOREINFO (an index of the debug
directories given, then the usual places of
:func:`~rmem_inspect.collect.debuginfo.find_vmlinux`); without one, read the
kernel's own kallsyms and BTF. Inspect them in worker processes. Each dump
gives one JSON object (a line of ``--jsonl``); a dump that cannot be read gives
a record with ``status: "error"`` and its one-line reason, and never stops the
batch.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING

from tabulate import tabulate

from rmem_inspect.inputs import is_dump

if TYPE_CHECKING:
    from drgn import Program

__all__ = [
    "DumpResult",
    "build_id_index",
    "find_dumps",
    "inspect_dump",
    "render_summary",
    "run_batch",
]


@dataclass
class DumpResult:
    path: str
    #: ok or error.
    status: str
    error: str | None = None
    release: str | None = None
    build_id: str | None = None
    vmlinux: str | None = None
    #: Where types and symbols came from: "dwarf" (the vmlinux) or "btf" (the kernel's
    #: BTF and kallsyms, when no vmlinux was found).
    debug_info: str | None = None
    layout: str | None = None
    count: int | None = None
    capacity: int | None = None
    #: Findings per severity.
    summary: dict[str, int] = field(default_factory=dict)
    #: [code, region] of every warning and error.
    findings: list[list[str | None]] = field(default_factory=list)
    exit_status: int = 2
    seconds: float = 0.0
    snapshot: str | None = None


def _is_dump(path: str) -> bool:
    """An ELF core file, or a kdump-compressed or flattened makedumpfile file."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096 + 32)
    except OSError:
        return False
    return is_dump(head)


#: A directory holding one of these is one raw RAM dump (its bank files are not
#: dumps on their own): rmem_inspect.collect.ramdump.
RAMDUMP_INDEXES = ("load.cmm", "dump_info.txt")


def find_dumps(directory: str) -> list[str]:
    """Every crash dump under ``directory`` (recursively), sorted by path: ELF and
    makedumpfile files, and raw RAM sets (a directory with a load.cmm or dump_info.txt)."""
    out = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        if any(i in files for i in RAMDUMP_INDEXES):
            out.append(root)
            dirs.clear()
            continue
        for name in sorted(files):
            path = os.path.join(root, name)
            if os.path.isfile(path) and _is_dump(path):
                out.append(path)
    return out


def build_id_index(debug_dirs: Iterable[str]) -> dict[str, str]:
    """build-id -> path of every ELF file named vmlinux* or *.debug under ``debug_dirs``."""
    from rmem_inspect.formats.elf import ElfError, read_elf

    index: dict[str, str] = {}
    for d in debug_dirs:
        for root, dirs, files in os.walk(d):
            dirs.sort()
            for name in sorted(files):
                if not (name.startswith("vmlinux") or name.endswith(".debug")):
                    continue
                path = os.path.join(root, name)
                try:
                    bid = read_elf(path, sections=True).build_id
                except (OSError, ElfError):
                    continue
                if bid and bid not in index:
                    index[bid] = path
    return index


def inspect_dump(path: str, index: dict[str, str], snapshot_dir: str | None = None) -> DumpResult:
    """Inspect one dump; every failure becomes an ``error`` record (runs in a worker)."""
    start = time.monotonic()
    res = DumpResult(path=path, status="error")
    try:
        from rmem_inspect import checks
        from rmem_inspect.collect.kernel_btf import CACHE_KEY
        from rmem_inspect.errors import InputError
        from rmem_inspect.formats.elf import ElfError, read_elf
        from rmem_inspect.formats.kdump import KdumpError, read_kdump
        from rmem_inspect.inputs import Source, open_input

        vmcoreinfo: dict[str, str] = {}
        try:
            kd = read_kdump(path)  # kdump-compressed, flattened or not
            if kd is not None:
                vmcoreinfo = kd.vmcoreinfo or {}
            else:
                vmcoreinfo = read_elf(path).vmcoreinfo or {}
        except (OSError, ElfError, KdumpError):
            pass  # open_input names the problem
        if not vmcoreinfo:
            vmcoreinfo = _ramdump_vmcoreinfo(path)
        res.build_id = vmcoreinfo.get("BUILD-ID")
        res.release = vmcoreinfo.get("OSRELEASE")
        vmlinux = index.get(res.build_id or "")

        from rmem_inspect.collect.ramdump import RAMDUMP_CACHE_KEY, RamSet

        banks: list[RamSet] = []

        def opened(prog: Program) -> None:
            ram = prog.cache.get(RAMDUMP_CACHE_KEY)
            if isinstance(ram, RamSet):  # raw RAM: its files are closed once read (below)
                banks.append(ram)
            if CACHE_KEY in prog.cache:  # no vmlinux found: the kernel's kallsyms and BTF
                res.debug_info = "btf"
            else:
                res.debug_info = "dwarf"
                res.vmlinux = vmlinux or "(found by build-id in the default places)"

        try:
            snap = open_input(Source(vmcore=path, vmlinux=vmlinux), on_program=opened).snapshot
            assert snap is not None
        except InputError as e:
            res.error = str(e)
            return res
        finally:
            for ram in banks:  # a worker reads many dumps: do not keep their files open
                ram.close()
        report = checks.run(snap)
        res.status = "ok"
        res.release = snap.kernel.release
        rm = snap.reserved_mem
        if rm is not None:
            res.layout, res.count, res.capacity = rm.layout, rm.count, rm.capacity
        res.summary = {
            s: sum(1 for f in report.findings if f.severity == s)
            for s in ("error", "warning", "info")
        }
        res.findings = [[f.code, f.region] for f in report.findings if f.severity != "info"]
        res.exit_status = report.exit_status()
        if snapshot_dir:
            os.makedirs(snapshot_dir, exist_ok=True)
            name = os.path.relpath(os.path.abspath(path), "/").replace(os.sep, "_") + ".json"
            res.snapshot = os.path.join(snapshot_dir, name)
            with open(res.snapshot, "w") as f:
                f.write(snap.dumps())
    except Exception as e:  # one bad dump never stops the batch
        res.status = "error"
        res.error = f"internal error {type(e).__name__}: {e}"
    finally:
        res.seconds = round(time.monotonic() - start, 3)
    return res


def _ramdump_vmcoreinfo(path: str) -> dict[str, str]:
    """The VMCOREINFO page of a raw RAM set (empty when none or not raw RAM)."""
    from rmem_inspect.collect.ramdump import find_vmcoreinfo, is_ramdump, open_banks
    from rmem_inspect.errors import InputError

    try:
        if not is_ramdump(path):
            return {}
        ram = open_banks(path)
    except (InputError, OSError):
        return {}  # open_input names the problem
    try:
        pages = find_vmcoreinfo(ram, limit=1)
    finally:
        ram.close()
    return pages[0][1] if pages else {}


class _Progress:
    """A one-line bar on a terminal, a plain counter line per dump otherwise."""

    def __init__(self, total: int, stream: IO[str]) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream
        self.tty = stream.isatty()
        self.start = time.monotonic()

    def update(self, res: DumpResult) -> None:
        self.done += 1
        self.failed += res.status != "ok"
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.tty:
            width = 30
            fill = int(width * self.done / max(1, self.total))
            self.stream.write(
                f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                f"{rate:.2f} dumps/s, {self.failed} failed"
            )
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(
                f"[{self.done}/{self.total}] {res.status} {res.path} ({res.seconds:.1f} s)\n"
            )
        self.stream.flush()


def run_batch(
    directory: str,
    *,
    debug_dirs: Iterable[str] = (),
    jobs: int = 1,
    jsonl: IO[str] | None = None,
    progress: IO[str] | None = None,
    snapshot_dir: str | None = None,
    on_result: Callable[[DumpResult], None] | None = None,
) -> tuple[list[DumpResult], float]:
    """Inspect every dump under ``directory``; results in path order and wall seconds."""
    dumps = find_dumps(directory)
    index = build_id_index(debug_dirs)
    bar = _Progress(len(dumps), progress) if progress is not None else None
    results: dict[str, DumpResult] = {}
    start = time.monotonic()
    # spawn, not fork: a parent that already loaded drgn (OpenMP threads, locks held)
    # would leave forked workers deadlocked.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx) as pool:
        futures = {pool.submit(inspect_dump, p, index, snapshot_dir): p for p in dumps}
        for fut in as_completed(futures):
            path = futures[fut]
            try:
                res = fut.result()
            except Exception as e:  # a worker that died (OOM, signal)
                res = DumpResult(
                    path=path, status="error", error=f"worker failed: {type(e).__name__}: {e}"
                )
            results[path] = res
            if jsonl is not None:
                jsonl.write(json.dumps(asdict(res), sort_keys=True) + "\n")
                jsonl.flush()
            if bar is not None:
                bar.update(res)
            if on_result is not None:
                on_result(res)
    return [results[p] for p in dumps], time.monotonic() - start


def render_summary(results: list[DumpResult], seconds: float, jobs: int) -> str:
    rows = []
    for r in results:
        if r.status == "ok":
            codes = sorted({c for c, _ in r.findings if c})
            rows.append(
                [
                    r.path,
                    r.release,
                    r.debug_info,
                    r.layout,
                    f"{r.count}/{r.capacity}",
                    r.summary.get("error", 0),
                    r.summary.get("warning", 0),
                    ", ".join(str(c) for c in codes) or "-",
                    f"{r.seconds:.1f}",
                ]
            )
        else:
            rows.append(
                [
                    r.path,
                    r.release or "?",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    f"FAILED: {r.error}",
                    f"{r.seconds:.1f}",
                ]
            )
    ok = sum(1 for r in results if r.status == "ok")
    rate = len(results) / seconds if seconds > 0 else 0.0
    table = tabulate(
        rows,
        ["dump", "kernel", "types", "layout", "count", "err", "warn", "findings", "s"],
        tablefmt="simple",
        maxcolwidths=[60, None, None, None, None, None, None, 60, None],
    )
    return (
        f"{table}\n\n{len(results)} dumps, {ok} read, {len(results) - ok} failed; "
        f"{seconds:.1f} s wall with {jobs} jobs ({rate:.2f} dumps/s)\n"
    )
