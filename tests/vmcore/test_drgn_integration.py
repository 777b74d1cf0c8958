# SPDX-License-Identifier: GPL-2.0-or-later
"""
drgn integration on real dumps: the drgn script, the library and the plugin's
``rmem`` command must give what ``rmem-inspect`` gives for the same dump.

Every drgn and CLI run is a subprocess of this interpreter (``python -m drgn``,
``python -m rmem_inspect``), started in a scratch directory so that a checkout's
own ``*.egg-info`` cannot hide the installed entry points. A missing dump fails
the test; build the dumps with ``python -m vmcores.build``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import drgn
import pytest

import rmem_inspect.drgn.script
from vmcores.manifest import default_cache, load_manifests

pytestmark = pytest.mark.vmcore

PAIRS = [("6.12", "overflow"), ("6.1", "overflow")]
PAIR_IDS = [f"{series}-{scenario}" for series, scenario in PAIRS]

SCRIPT = os.path.abspath(rmem_inspect.drgn.script.__file__)
DRGN = [sys.executable, "-m", "drgn"]
CLI = [sys.executable, "-m", "rmem_inspect"]
ENTRY_POINT = "rmem_inspect.drgn.plugin"
TIMEOUT = 300

#: drgn >= 0.0.33 says which dump it opened, so the report's source matches the CLI's.
HAS_CORE_DUMP_PATH = hasattr(drgn.Program, "core_dump_path")
HAS_COMMANDS = importlib.util.find_spec("drgn.commands") is not None
NO_COMMANDS = f"drgn {drgn.__version__} has no command framework (drgn.commands, 0.0.33+)"

RUN_RMEM = """\
import sys
from drgn.commands import run_command
report = run_command(prog, {command!r})
sys.stderr.write(f"exit_status={{report.exit_status()}}\\n")
"""


@functools.cache
def _manifests() -> dict[tuple[str, str], Any]:
    return {(m.series, m.scenario): m for m in load_manifests()}


@pytest.fixture(params=PAIRS, ids=PAIR_IDS)
def dump(request: Any) -> tuple[str, str]:
    """(vmcore, vmlinux) of a factory dump."""
    series, scenario = request.param
    m = _manifests().get((series, scenario))
    if m is None:
        pytest.fail(
            f"no factory dump for {series}/{scenario} in {default_cache()}: "
            "run python -m vmcores.build"
        )
    vmcore, vmlinux = m.path("vmcore"), m.path("vmlinux")
    for path in (vmcore, vmlinux):
        if not path.is_file():
            pytest.fail(f"{path} is missing: run python -m vmcores.build")
    return str(vmcore), str(vmlinux)


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


@functools.cache
def _cli(vmcore: str, vmlinux: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``rmem-inspect <args> --vmcore --vmlinux``, once per session."""
    cwd = Path(vmcore).parent
    proc = _run([*CLI, *args, "--vmcore", vmcore, "--vmlinux", vmlinux], cwd)
    assert proc.returncode in (0, 1), f"rmem-inspect failed:\n{proc.stderr}"
    return proc


def _cli_json(vmcore: str, vmlinux: str) -> tuple[dict[str, Any], int]:
    proc = _cli(vmcore, vmlinux, "report", "--format", "json")
    return json.loads(proc.stdout), proc.returncode


def _drop_differing(got: dict[str, Any], want: dict[str, Any]) -> None:
    """The only legitimate difference: without ``Program.core_dump_path`` the drgn side
    cannot name the dump, so its source is only the kind."""
    if HAS_CORE_DUMP_PATH:
        return
    assert got["source"] == {"kind": "vmcore"}
    got.pop("source")
    want.pop("source")


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _entry_point_installed(cwd: Path) -> bool:
    """Whether drgn started from ``cwd`` would find the plugin's entry point."""
    code = (
        "import importlib.metadata as m, sys\n"
        f"sys.exit(0 if any(e.value == {ENTRY_POINT!r} "
        "for e in m.entry_points(group='drgn.plugins')) else 1)\n"
    )
    return _run([sys.executable, "-c", code], cwd).returncode == 0


def _skip_without_entry_point(cwd: Path) -> None:
    if not _entry_point_installed(cwd):
        pytest.skip(
            f"the drgn.plugins entry point 'rmem_inspect = {ENTRY_POINT}' is not installed "
            "in this environment (add it to setup.cfg [options.entry_points], then "
            "pip install -e .)"
        )


# --------------------------------------------------------------------------
# The drgn script


def test_drgn_script_json_matches_cli(dump: tuple[str, str], tmp_path: Path) -> None:
    vmcore, vmlinux = dump
    want, want_status = _cli_json(vmcore, vmlinux)
    proc = _run([*DRGN, "-q", "-c", vmcore, "-s", vmlinux, SCRIPT, "--format", "json"], tmp_path)
    assert proc.returncode == want_status, proc.stderr
    got = json.loads(proc.stdout)
    _drop_differing(got, want)
    assert got == want


def test_drgn_script_check_table_matches_cli(dump: tuple[str, str], tmp_path: Path) -> None:
    vmcore, vmlinux = dump
    want = _cli(vmcore, vmlinux, "check", "--evidence")
    proc = _run([*DRGN, "-q", "-c", vmcore, "-s", vmlinux, SCRIPT, "check", "--evidence"], tmp_path)
    assert (proc.returncode, proc.stdout) == (want.returncode, want.stdout), proc.stderr


def test_drgn_script_without_drgn_prints_usage(tmp_path: Path) -> None:
    proc = _run([sys.executable, "-m", "rmem_inspect.drgn.script"], tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("usage: drgn -c VMCORE -s VMLINUX ")
    assert SCRIPT in lines[0]


# --------------------------------------------------------------------------
# The library


def test_import_is_cheap(tmp_path: Path) -> None:
    code = (
        "import sys, rmem_inspect\n"
        "print(sorted(m for m in ('drgn', 'tabulate') if m in sys.modules))"
    )
    proc = _run([sys.executable, "-c", code], tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "[]\n"), proc.stderr


def test_library_matches_cli(dump: tuple[str, str]) -> None:
    vmcore, vmlinux = dump
    # The modules defining the functions load first (as after the rmem command in the
    # REPL): the package's names must still be the functions.
    for name in ("rmem_inspect.collect.snapshot", "rmem_inspect.output", "rmem_inspect.checks"):
        importlib.import_module(name)
    from rmem_inspect import inspect, render, run_checks

    assert [f.__name__ for f in (inspect, render, run_checks)] == ["inspect", "render", "run"]

    prog = drgn.Program()
    prog.set_core_dump(vmcore)
    try:
        prog.load_debug_info([vmlinux])
    except drgn.MissingDebugInfoError:
        pass  # modules without debug info; the kernel's is there
    report = run_checks(inspect(prog))
    del prog

    want, want_status = _cli_json(vmcore, vmlinux)
    findings = json.loads(json.dumps([asdict(f) for f in report.findings]))
    assert findings == want["findings"]
    assert report.exit_status() == want_status
    got = json.loads(render(report, "json"))
    # nothing of the caller's; only where inspect() read the kernel's handler table
    assert got.pop("source") == {"rmem_handlers": "__reservedmem_of_table in the vmlinux file"}
    want.pop("source")
    assert got == want


# --------------------------------------------------------------------------
# The plugin's rmem command


def _rmem_command_json(
    vmcore: str, vmlinux: str, cwd: Path, env: dict[str, str]
) -> tuple[dict[str, Any], str]:
    code = RUN_RMEM.format(command="rmem --format json")
    proc = _run([*DRGN, "-c", vmcore, "-s", vmlinux, "-e", code], cwd, env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def _assert_command_matches_cli(vmcore: str, vmlinux: str, got: dict[str, Any], err: str) -> None:
    want, want_status = _cli_json(vmcore, vmlinux)
    assert f"exit_status={want_status}\n" in err
    _drop_differing(got, want)
    assert got["findings"] == want["findings"]
    assert got == want


@pytest.mark.skipif(not HAS_COMMANDS, reason=NO_COMMANDS)
def test_plugin_command_from_entry_point(dump: tuple[str, str], tmp_path: Path) -> None:
    _skip_without_entry_point(tmp_path)
    vmcore, vmlinux = dump
    env = _env(DRGN_PLUGINS=None, DRGN_DISABLE_PLUGINS=None)
    got, err = _rmem_command_json(vmcore, vmlinux, tmp_path, env)
    _assert_command_matches_cli(vmcore, vmlinux, got, err)


@pytest.mark.skipif(not HAS_COMMANDS, reason=NO_COMMANDS)
def test_plugin_command_from_drgn_plugins_env(dump: tuple[str, str], tmp_path: Path) -> None:
    """drgn's DRGN_PLUGINS loads the same module without the entry point (which is
    disabled here, so that this is the only way in)."""
    vmcore, vmlinux = dump
    env = _env(DRGN_PLUGINS=f"rmem_inspect={ENTRY_POINT}", DRGN_DISABLE_PLUGINS="rmem_inspect")
    got, err = _rmem_command_json(vmcore, vmlinux, tmp_path, env)
    _assert_command_matches_cli(vmcore, vmlinux, got, err)


class _Repl:
    """drgn's interactive mode on a pseudo-terminal."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        self.fd = master
        self.out = b""
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)

    def read_until(self, token: bytes, timeout: float = TIMEOUT) -> str:
        end = time.monotonic() + timeout
        while not self._has_line(token) and time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the session ended
                break
            if not chunk:
                break
            self.out += chunk
        text = self.out.decode(errors="replace").replace("\r\n", "\n")
        assert self._has_line(token), f"no {token!r} from drgn; session so far:\n{text}"
        return text

    def _has_line(self, token: bytes) -> bool:
        """``token`` was printed, up to the end of its line (or is the prompt)."""
        at = self.out.rfind(token)
        return at >= 0 and (token == b">>> " or b"\n" in self.out[at:])

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self.fd)


@pytest.mark.skipif(not HAS_COMMANDS, reason=NO_COMMANDS)
def test_plugin_command_in_repl(dump: tuple[str, str], tmp_path: Path) -> None:
    """``%rmem check`` typed into drgn's REPL prints the CLI's findings and leaves the
    Report in ``_``; the library imports still give the functions afterwards."""
    _skip_without_entry_point(tmp_path)
    vmcore, vmlinux = dump
    want = _cli(vmcore, vmlinux, "check")
    env = _env(
        DRGN_PLUGINS=None,
        DRGN_DISABLE_PLUGINS=None,
        HOME=str(tmp_path),
        XDG_STATE_HOME=str(tmp_path),
        TERM="dumb",
        PYTHON_BASIC_REPL="1",
    )
    repl = _Repl([*DRGN, "-q", "-c", vmcore, "-s", vmlinux], tmp_path, env)
    try:
        repl.read_until(b">>> ")
        repl.send("%rmem check")
        # Markers are concatenated so that the echoed input does not contain them.
        repl.send('print("RMEM-" + "DONE", len(_.findings), _.exit_status())')
        repl.send("from rmem_inspect import inspect, render, run_checks")
        repl.send('print("LIB-" + "DONE", [f.__name__ for f in (inspect, render, run_checks)])')
        repl.send('print("SESSION-" + "END")')
        text = repl.read_until(b"SESSION-END")
        repl.send("exit()")
        repl.proc.wait(timeout=60)
    finally:
        repl.close()
    assert "command not found" not in text, text
    lines = {line.rstrip() for line in text.splitlines()}
    missing = [line for line in want.stdout.splitlines() if line.rstrip() not in lines]
    assert not missing, f"CLI lines not in the REPL session:\n{missing}\n---\n{text}"
    n_findings = len(_cli_json(vmcore, vmlinux)[0]["findings"])
    assert f"RMEM-DONE {n_findings} {want.returncode}\n" in text
    assert "LIB-DONE ['inspect', 'render', 'run']\n" in text
