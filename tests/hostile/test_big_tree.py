# SPDX-License-Identifier: GPL-2.0-or-later
"""
Devicetree blobs at and past the limits, compiled by dtc from the factory's
baseline board: 10,000 extra nodes parse and decode quickly and change nothing
about /reserved-memory; a tree nested deeper than the reader allows and blobs
cut or stretched are rejected with a message, never a crash.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time

import pytest

from rmem_inspect.formats.devicetree import decode_tree
from rmem_inspect.formats.fdt import FdtError, parse_fdt
from tests.hostile.conftest import BULK_NODES, bulk_dts, count_nodes
from vmcores.scenarios import SCENARIOS, overlay_dts

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("dtc") is None, reason="dtc is not installed"),
]

BASE = """/dts-v1/;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	memory@40000000 {
		device_type = "memory";
		reg = <0x0 0x40000000 0x0 0x40000000>;
	};
};
"""


def dtc(source: str) -> bytes:
    p = subprocess.run(
        ["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", "-", "-"],
        input=source.encode(),
        capture_output=True,
        check=True,
    )
    return p.stdout


def test_ten_thousand_nodes() -> None:
    board = BASE + overlay_dts(SCENARIOS["baseline"])
    small = decode_tree(parse_fdt(dtc(board)).root, "fdt")
    blob = dtc(board + bulk_dts())
    t0 = time.monotonic()
    fdt = parse_fdt(blob)
    info = decode_tree(fdt.root, "fdt")
    elapsed = time.monotonic() - t0
    assert count_nodes(fdt.root) == count_nodes(parse_fdt(dtc(board)).root) + 1 + BULK_NODES
    assert info.regions == small.regions and info.errors == []
    assert elapsed < 10, elapsed


def test_too_deep_is_rejected() -> None:
    depth = 100
    nested = "".join(f"d{i} {{ " for i in range(depth)) + "};" * depth
    blob = dtc(BASE + "/ { " + nested + " };\n")
    with pytest.raises(FdtError, match="deep|depth|nest"):
        parse_fdt(blob)


@pytest.mark.parametrize("cut", [0, 4, 39, 40, 100, -8, -1])
def test_cut_blob_is_rejected(cut: int) -> None:
    blob = dtc(BASE + overlay_dts(SCENARIOS["baseline"]))
    with pytest.raises(FdtError) as e:
        parse_fdt(blob[:cut])
    assert str(e.value)


def test_totalsize_beyond_the_blob_is_rejected() -> None:
    blob = bytearray(dtc(BASE))
    struct.pack_into(">I", blob, 4, len(blob) + 4096)
    with pytest.raises(FdtError, match="totalsize|size"):
        parse_fdt(bytes(blob))
