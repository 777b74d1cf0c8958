# SPDX-License-Identifier: GPL-2.0-or-later
"""Compile and decompile devicetrees with the real dtc, for the unit tests.

dtc is installed by tools/setup.sh; a missing dtc fails the tests that need it
instead of skipping them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from typing import TypeVar

import pytest

__all__ = ["BASE_DTS", "decompile", "dtc", "needs_dtc"]

F = TypeVar("F", bound=Callable[..., object])

#: What QEMU's virt DT has that the scenario overlays rely on.
BASE_DTS = """/dts-v1/;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	compatible = "linux,dummy-virt";
	chosen {
		bootargs = "console=ttyAMA0";
	};
	memory@40000000 {
		device_type = "memory";
		reg = <0x0 0x40000000 0x0 0x40000000>;
	};
};
"""


def needs_dtc(fn: F) -> F:
    """Mark a test as needing dtc (documentation only: dtc() fails when it is missing)."""
    return fn


def _run(args: list[str], data: bytes) -> bytes:
    if shutil.which("dtc") is None:
        pytest.fail("dtc is not installed: run tools/setup.sh (device-tree-compiler)")
    proc = subprocess.run(["dtc", "-q", *args, "-o", "-", "-"], input=data, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def dtc(dts: str, *args: str) -> bytes:
    """Compile DTS text to a DTB."""
    return _run(["-I", "dts", "-O", "dtb", *args], dts.encode())


def decompile(blob: bytes) -> str:
    """Decompile a DTB (to check that hand-made blobs are valid)."""
    return _run(["-I", "dtb", "-O", "dts"], blob).decode()
