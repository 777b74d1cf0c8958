# SPDX-License-Identifier: GPL-2.0-or-later
"""
The vmlinux found by build-id through a real debuginfod server (elfutils'
debuginfod, installed by tools/setup.sh) serving a directory of the factory's
vmlinux files: drgn's own debuginfod finder through the CLI, the web-API fallback
directly, and a dump whose build-id the server does not have.

The server is started on a free port and queried on 127.0.0.1 (elfutils 0.188 has
no option to bind one address; it listens on every interface of the test machine).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rmem_inspect.collect.debuginfo import fetch_debuginfod
from rmem_inspect.formats.elf import read_elf
from tests.dumps import manifest_for

pytestmark = pytest.mark.vmcore

ROOT = Path(__file__).resolve().parent.parent.parent
SERVED = ("6.1", "baseline")  # the smallest vmlinux (270 MB)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("debuginfod")
    if exe is None:
        pytest.fail("debuginfod is not installed: run tools/setup.sh (Debian package debuginfod)")
    tmp = tmp_path_factory.mktemp("debuginfod")
    files = tmp / "files"
    files.mkdir()
    vmlinux = manifest_for(*SERVED).path("vmlinux").resolve()
    (files / vmlinux.name).symlink_to(vmlinux)
    port = _free_port()
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(
        [exe, "-F", "-L", "--disable-source-scan", "-d", str(tmp / "db.sqlite"),
         "-p", str(port), "-t", "0", "-g", "0", "-c", "1", str(files)],  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
                    metrics = r.read().decode()
                if 'found_debuginfo_total{source="files"} 1' in metrics:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"debuginfod did not index {vmlinux}: {(tmp / 'server.log').read_text()}"
                )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rmem_inspect", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _env(server: str, tmp: Path) -> dict[str, str]:
    # Nothing on disk: the factory cache moved away, a fresh debuginfod client cache.
    (tmp / "no-cache").mkdir(exist_ok=True)
    return {
        "DEBUGINFOD_URLS": server,
        "DEBUGINFOD_CACHE_PATH": str(tmp / "client-cache"),
        "RMEM_INSPECT_CACHE": str(tmp / "no-cache"),
        "RMEM_INSPECT_DEBUG_DIRS": "",
    }


def test_vmlinux_from_debuginfod(server: str, tmp_path: Path) -> None:
    m = manifest_for(*SERVED)
    vmcore = str(m.path("vmcore"))
    build_id = read_elf(str(m.path("vmlinux")), sections=True).build_id
    assert build_id
    env = _env(server, tmp_path)
    # Without DEBUGINFOD_URLS nothing is found: the lookup below is debuginfod's doing.
    bare = _run(["check", "--vmcore", vmcore, "-f", "json"], {**env, "DEBUGINFOD_URLS": ""})
    assert bare.returncode == 2 and "set DEBUGINFOD_URLS" in bare.stderr
    got = _run(["check", "--vmcore", vmcore, "-f", "json"], env)
    assert got.returncode in (0, 1), got.stderr
    want = _run(
        ["check", "--vmcore", vmcore, "--vmlinux", str(m.path("vmlinux")), "-f", "json"], {}
    )
    assert json.loads(got.stdout)["findings"] == json.loads(want.stdout)["findings"]
    fetched = tmp_path / "client-cache" / build_id / "debuginfo"
    assert fetched.stat().st_size == m.path("vmlinux").stat().st_size
    assert read_elf(str(fetched), sections=True).build_id == build_id


def test_web_api_fallback(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a drgn without a debuginfod finder (before 0.0.31) gets: the same file over HTTP.
    monkeypatch.setenv("DEBUGINFOD_CACHE_PATH", str(tmp_path))
    vmlinux = manifest_for(*SERVED).path("vmlinux")
    build_id = read_elf(str(vmlinux), sections=True).build_id
    assert build_id
    path = fetch_debuginfod(build_id, ["http://127.0.0.1:1", server])  # a dead server first
    assert path == str(tmp_path / build_id / "debuginfo")
    assert read_elf(path, sections=True).build_id == build_id
    assert fetch_debuginfod("00" * 20, [server]) is None
    assert fetch_debuginfod("../../etc", [server]) is None


def test_wrong_build_id_still_refused(server: str, tmp_path: Path) -> None:
    env = _env(server, tmp_path)
    other = manifest_for("6.12", "baseline")
    # The server has no vmlinux with this dump's build-id: one line, exit 2 (--types dwarf:
    # a vmlinux is required, not the kernel's own BTF).
    r = _run(["check", "--types", "dwarf", "--vmcore", str(other.path("vmcore"))], env)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and f"debuginfod servers {server}" in r.stderr
    # A given vmlinux of another build is refused, debuginfod or not.
    r = _run(
        ["check", "--vmcore", str(other.path("vmcore")), "--vmlinux",
         str(manifest_for(*SERVED).path("vmlinux"))],  # fmt: skip
        env,
    )
    assert r.returncode == 2 and "does not match the kernel's" in r.stderr
