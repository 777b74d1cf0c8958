# SPDX-License-Identifier: GPL-2.0-or-later
"""
Read-only, always: the tool opens the dump and the vmlinux read-only, writes no
file but the one the user asks for, and leaves both unchanged (mtime and a
digest of every data extent).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.hostile.conftest import file_state, manifest_for, run_cli

pytestmark = pytest.mark.vmcore

OPEN = re.compile(r'^\d+\s+open(?:at2?)?\((?:AT_FDCWD, )?"([^"]*)", ([A-Z_|]+).*\) = (-?\d+)')
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
#: Opened for writing by the interpreter or libraries, never holding data.
HARMLESS = ("/dev/null", "/dev/tty")


def opens(log: Path) -> list[tuple[str, str, bool]]:
    """(path, flags, succeeded) of every open the traced process tree made."""
    out = []
    for line in log.read_text().splitlines():
        m = OPEN.match(line)
        if m:
            out.append((m.group(1), m.group(2), not m.group(3).startswith("-")))
    return out


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("command", ["report", "snapshot"])
def test_dump_and_vmlinux_opened_read_only(command: str, tmp_path: Path) -> None:
    m = manifest_for("6.12", "alloc-fail")
    vmcore, vmlinux = m.path("vmcore"), m.path("vmlinux")
    before = file_state(vmcore), file_state(vmlinux)
    log = tmp_path / "strace.log"
    out = tmp_path / "board.json"
    args: list[str | Path] = ["--vmcore", vmcore]
    if command == "snapshot":
        args += ["-o", out]
    res = run_cli(command, *args, strace_log=log, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert "Traceback" not in res.stderr
    assert res.returncode == (0 if command == "snapshot" else 1), res.stderr
    seen = opens(log)
    for name in (vmcore, vmlinux):
        flags = [f for p, f, ok in seen if ok and Path(p) == name]
        assert flags, f"{name} was never opened: the trace is wrong"
        assert all("O_RDONLY" in f and not any(w in f for w in WRITE_FLAGS) for f in flags)
    written = {
        p for p, f, ok in seen if ok and any(w in f for w in WRITE_FLAGS) and p not in HARMLESS
    }
    assert written == ({str(out)} if command == "snapshot" else set())
    assert not any(p == "/proc/kcore" for p, _f, _ok in seen)
    assert (file_state(vmcore), file_state(vmlinux)) == before


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_snapshot_input_opened_read_only(tmp_path: Path) -> None:
    golden = Path(__file__).resolve().parents[1] / "golden" / "6.1-overflow.json"
    snap = tmp_path / "board.json"
    shutil.copy(golden, snap)
    before = file_state(snap)
    log = tmp_path / "strace.log"
    res = run_cli("check", "--snapshot", snap, strace_log=log, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert res.returncode == 1 and "Traceback" not in res.stderr
    flags = [f for p, f, ok in opens(log) if ok and Path(p) == snap]
    assert flags and all(not any(w in f for w in WRITE_FLAGS) for f in flags)
    assert file_state(snap) == before
