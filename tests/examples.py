# SPDX-License-Identifier: GPL-2.0-or-later
"""
The transcripts of man/*_example.txt: find them, rerun them on the factory's dumps.

A transcript is a line ``# rmem-inspect ARGS``, the command's standard output then its
standard error (as a terminal shows them when stderr comes last), and a line
``[exit status N]``. Paths in ARGS are relative to a directory holding the
factory's dumps as ``SERIES-SCENARIO/{vmcore,vmlinux,board.dtb}`` and its raw RAM
dumps (vmcores/ramdump.py) as ``SERIES-SCENARIO-ramdump/`` (bank files, load.cmm,
qemu.elf, ``wiped/``), shown as /srv/dumps in the output.
tests/vmcore/test_examples.py reruns every transcript and compares;
tools/update-examples.py rewrites them after a deliberate change.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from vmcores.manifest import load_manifests
from vmcores.ramdump_set import load_ramdumps

__all__ = [
    "BOOT_SPECIFIC",
    "EXAMPLE_FILES",
    "SHOWN_DIR",
    "TRANSCRIPT",
    "boot_specific",
    "dump_dir",
    "ramdump_named",
    "refresh",
    "run",
    "without_boot_specific",
]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_FILES = sorted((ROOT / "man").glob("*_example.txt"))
#: What the dump directory is called in the transcripts.
SHOWN_DIR = "/srv/dumps"
TRANSCRIPT = re.compile(r"^# (rmem-inspect [^\n]*)\n(.*?)^\[exit status (\d+)\]$", re.M | re.S)
#: What differs between two boots of the same inputs, so between a transcript and the
#: factory's dumps once the factory has run again: the page the kernel took for its
#: VMCOREINFO text (get_zeroed_page() in crash_save_vmcoreinfo_init(),
#: kernel/vmcore_info.c; kernel/crash_core.c before 6.9) comes from the page allocator,
#: whose state at that point varies from boot to boot. Compared against the factory's own
#: record of the set instead (test_examples.py).
BOOT_SPECIFIC = re.compile(r"(VMCOREINFO page at phys )(0x[0-9a-f]+)")
#: A raw RAM dump set named in a command: SERIES-SCENARIO-ramdump/.
_RAMDUMP_ARG = re.compile(r"(?<![\w.-])(6\.1|6\.12|7\.x)-([a-z0-9-]+?)-ramdump/")


def dump_dir(directory: Path) -> Path:
    """Fill ``directory`` with SERIES-SCENARIO/{vmcore,vmlinux,board.dtb} symlinks and
    SERIES-SCENARIO-ramdump/ ones to the raw RAM dump sets."""
    for m in load_manifests():
        d = directory / f"{m.series}-{m.scenario}"
        d.mkdir(parents=True, exist_ok=True)
        for name, key in (("vmcore", "vmcore"), ("vmlinux", "vmlinux"), ("board.dtb", "dtb")):
            link = d / name
            if not link.exists():
                link.symlink_to(m.path(key).resolve())
    for rs in load_ramdumps():
        if rs.arch != "arm64":
            continue
        d = directory / f"{rs.series}-{rs.scenario}-ramdump"
        (d / "wiped").mkdir(parents=True, exist_ok=True)
        names = [b["file"] for b in rs.banks] + ["load.cmm", "qemu.elf"]
        names += [f"wiped/{b['file']}" for b in rs.banks] + ["wiped/load.cmm"]
        for name in names:
            if not (d / name).exists():
                (d / name).symlink_to(rs.path(name))
    return directory


def boot_specific(text: str) -> list[int]:
    """The boot-specific addresses ``text`` shows (:data:`BOOT_SPECIFIC`)."""
    return [int(m.group(2), 16) for m in BOOT_SPECIFIC.finditer(text)]


def without_boot_specific(text: str) -> str:
    """``text`` with each boot-specific address replaced by a placeholder."""
    return BOOT_SPECIFIC.sub(r"\1<this boot's>", text)


def ramdump_named(command: str) -> tuple[str, str] | None:
    """(series, scenario) of the raw RAM dump set ``command`` reads, if it reads one."""
    m = _RAMDUMP_ARG.search(command)
    return (m.group(1), m.group(2)) if m else None


def run(command: str, directory: Path) -> tuple[str, int]:
    """Run one transcript's command in ``directory``: (normalised stdout + stderr, status)."""
    argv = shlex.split(command)
    assert argv[0] == "rmem-inspect", command
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "rmem_inspect", *argv[1:]],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = (proc.stdout + proc.stderr).replace(str(directory.resolve()), SHOWN_DIR)
    return out.replace(str(directory), SHOWN_DIR), proc.returncode


def refresh(text: str, directory: Path) -> str:
    """``text`` with every transcript's output and exit status rerun."""

    def one(m: re.Match[str]) -> str:
        out, rc = run(m.group(1), directory)
        return f"# {m.group(1)}\n{out}[exit status {rc}]"

    return TRANSCRIPT.sub(one, text)
