# SPDX-License-Identifier: GPL-2.0-or-later
"""
Real kallsyms tables, cut small from the factory dumps, for the kallsyms reader's
unit and fuzz tests.

A fixture keeps the first ``GROUPS`` x 256 symbols of a dump's kallsyms: their
``kallsyms_names`` entries, ``kallsyms_markers`` and ``kallsyms_offsets`` bytes as
the kernel wrote them, the whole token table and index, and the relative base.
The arrays are laid out again in the order and alignment scripts/kallsyms.c uses
for that generation (:data:`rmem_inspect.formats.kallsyms.LAYOUTS`), with
``kallsyms_num_syms`` set to the cut and ``kallsyms_seqs_of_names`` rebuilt for it
as scripts/kallsyms.c sorts (by name, then address, then position). Where the
offsets are PC-relative (7.x) each is rewritten for its new place so the address
stays the kernel's. The expected symbols come from drgn's own kallsyms loader on
the dump (an independent decoder), never from the reader under test.

    python -m tests.unit.kallsyms_fixtures          # rewrite the fixtures
    python -m tests.unit.kallsyms_fixtures --check  # compare them with the dumps
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
import sys
from pathlib import Path
from typing import Any

__all__ = ["FIXTURE_DIR", "SERIES", "Fixture", "cut", "load"]

FIXTURE_DIR = Path(__file__).resolve().parent / "kallsyms"
#: series -> (kernel release directory, scenario) in the factory cache.
SERIES = {
    "6.1": ("6.1.0-50-cloud-arm64", "baseline"),
    "6.12": ("6.12.117+deb13-cloud-arm64", "baseline"),
    "7.x": ("7.3.4+deb13-cloud-arm64", "baseline"),
}
GROUPS = 4


class Fixture:
    """A cut table: memory ``image`` at ``base``, VMCOREINFO-style ``listed``
    addresses, ``stext`` and the expected symbols (name, address, size)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.series: str = data["series"]
        self.layout: str = data["layout"]
        self.base: int = data["base"]
        self.image = bytes.fromhex(data["image"])
        self.listed: dict[str, int] = data["listed"]
        self.stext: int = data["stext"]
        self.symbols: list[tuple[str, int, int]] = [(n, a, z) for n, a, z in data["symbols"]]

    def read(self, address: int, size: int) -> bytes:
        at = address - self.base
        if at < 0 or size < 0 or at + size > len(self.image):
            raise ValueError(f"no memory at {address:#x}+{size}")
        return self.image[at : at + size]


def load(series: str) -> Fixture:
    with gzip.open(FIXTURE_DIR / f"{series}.json.gz", "rt") as f:
        return Fixture(json.load(f))


def _align(x: int, a: int) -> int:
    return -(-x // a) * a


def cut(series: str) -> dict[str, Any]:
    """The fixture of ``series`` from its factory dump (needs the dump and drgn)."""
    import drgn
    from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms

    from rmem_inspect.collect.kallsyms_finder import vmcoreinfo
    from rmem_inspect.formats.kallsyms import LAYOUTS, locate
    from vmcores.manifest import default_cache

    release, scenario = SERIES[series]
    prog = drgn.Program()
    prog.set_core_dump(str(default_cache() / "dumps" / release / scenario / "vmcore"))
    info = vmcoreinfo(prog)
    prefix = "SYMBOL(kallsyms_"
    listed = {k[len(prefix) : -1]: int(v, 16) for k, v in info.items() if k.startswith(prefix)}
    (total,) = struct.unpack("<I", prog.read(listed["num_syms"], 4))
    layout, at = locate(listed, total)
    n = GROUPS * 256
    markers = struct.unpack(f"<{GROUPS + 1}I", prog.read(at["markers"], 4 * (GROUPS + 1)))
    arrays: dict[str, bytes] = {
        "num_syms": struct.pack("<I", n),
        "names": prog.read(at["names"], markers[GROUPS]),
        "markers": prog.read(at["markers"], 4 * GROUPS),
        "token_table": prog.read(at["token_table"], at["token_index"] - at["token_table"]),
        "token_index": prog.read(at["token_index"], 512),
        "offsets": prog.read(at["offsets"], 4 * n),
    }
    if "relative_base" in at:
        arrays["relative_base"] = prog.read(at["relative_base"], 8)
    index = load_vmlinux_kallsyms(prog)
    every = index(prog, None, None, False)  # address order, as kallsyms lists them
    subset = every[:n]
    # scripts/kallsyms.c sort_symbols_by_name(): name, then address, then position
    order = sorted(range(n), key=lambda i: (subset[i].name.encode(), subset[i].address, i))
    arrays["seqs_of_names"] = b"".join(i.to_bytes(3, "big") for i in order)
    # lay the arrays out again in the generation's order
    base = min(listed.values())
    new: dict[str, int] = {}
    image = bytearray()
    for name in next(x for x in LAYOUTS if x.name == layout.name).order:
        pad = _align(len(image), layout.align) - len(image)
        image += bytes(pad)
        new[name] = base + len(image)
        image += arrays[name]
    image += bytes(_align(len(image), 8) - len(image))
    if "relative_base" not in at:  # PC-relative: keep each address the kernel's
        offs = [s.address - (new["offsets"] + 4 * i) for i, s in enumerate(subset)]
        start = new["offsets"] - base
        image[start : start + 4 * n] = struct.pack(f"<{n}i", *offs)
    sizes = [s.size for s in subset[:-1]] + [0]
    return {
        "series": series,
        "layout": layout.name,
        "source": f"{release}/{scenario}",
        "base": base,
        "image": image.hex(),
        "listed": {k: new[k] for k in listed},
        "stext": int(info["SYMBOL(_stext)"], 16),
        "symbols": [[s.name, s.address, size] for s, size in zip(subset, sizes, strict=True)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    args = ap.parse_args(argv)
    status = 0
    FIXTURE_DIR.mkdir(exist_ok=True)
    for series in SERIES:
        data = cut(series)
        path = FIXTURE_DIR / f"{series}.json.gz"
        if args.check:
            same = path.exists() and Fixture(data).__dict__ == load(series).__dict__
            print(f"{path.name}: {'matches the dump' if same else 'DIFFERS from the dump'}")
            status |= not same
        else:
            with gzip.GzipFile(path, "wb", mtime=0) as f:
                f.write(json.dumps(data, indent=0).encode())
            print(f"{path.name}: {len(data['symbols'])} symbols, {len(data['image']) // 2} bytes")
    return status


if __name__ == "__main__":
    sys.exit(main())
