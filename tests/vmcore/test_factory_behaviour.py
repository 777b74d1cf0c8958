# SPDX-License-Identifier: GPL-2.0-or-later
"""The factory rebuilds only what changed and fails loudly, with the guest's
console tail, when a boot does not come up."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import vmcores.build as factory
from vmcores.debian import SERIES, fetch_busybox, fetch_kernel
from vmcores.manifest import default_cache
from vmcores.scenarios import SCENARIOS

pytestmark = pytest.mark.vmcore


def test_unchanged_inputs_are_not_rebuilt() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        manifests = factory.build(["6.12"], ["baseline"])
    vmcore = manifests[0].path("vmcore")
    assert "[6.12 baseline] up to date" in out.getvalue()
    before = vmcore.stat().st_mtime_ns
    with redirect_stdout(io.StringIO()):
        factory.build(["6.12"], ["baseline"])
    assert vmcore.stat().st_mtime_ns == before


def test_boot_that_never_comes_up_fails_with_console_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = default_cache()
    kernel = fetch_kernel(SERIES["6.12"], cache, log=lambda _m: None)
    busybox = fetch_busybox(cache, log=lambda _m: None)
    qver = factory.qemu_version()
    dtb = factory.compile_scenario(SCENARIOS["baseline"], factory.virt_dts(cache, qver), tmp_path)
    initrd = factory.make_initramfs(kernel, busybox[0], cache)
    # The guest boots for real but never prints the marker we now wait for.
    monkeypatch.setattr(factory, "READY_MARKER", "MARKER-THAT-NEVER-COMES")
    guest = factory.Guest(kernel, initrd, dtb, tmp_path)
    guest.start()
    try:
        with pytest.raises(factory.BuildError) as err:
            guest.wait_ready(timeout=25)
    finally:
        guest.stop()
    msg = str(err.value)
    assert "no ready marker after 25 s" in msg
    assert "qemu-system-aarch64" in msg and "console tail:" in msg
    assert "RMEM-FACTORY-READY" in msg or "Linux version" in msg or "Run /init" in msg


def test_two_builders_sharing_a_cache_do_not_collide() -> None:
    """A forced rebuild and a plain build of one pair at once: the second waits for the
    first, then finds the fresh dump up to date (no half-written vmcore, no apt lock error)."""
    cmd = [sys.executable, "-m", "vmcores.build", "-k", "6.12", "-s", "overlap"]
    first = subprocess.Popen([*cmd, "--force"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out_first, _ = first.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert "[6.12 overlap] dumped" in out_first
    assert "[6.12 overlap] up to date" in second.stdout
