#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Extract golden snapshots from the factory's real dumps into tests/golden/, so
the unit tier runs the checks on real kernel data without QEMU.

    python tools/update-golden.py      # after python -m vmcores.build
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rmem_inspect.collect.program import open_vmcore  # noqa: E402
from rmem_inspect.collect.snapshot import inspect  # noqa: E402
from vmcores.manifest import load_manifests  # noqa: E402
from vmcores.scenarios import SCENARIOS  # noqa: E402


def main() -> int:
    out = ROOT / "tests" / "golden"
    out.mkdir(parents=True, exist_ok=True)
    # the test matrix only: benchmark scenarios (EXTRA_SCENARIOS) have no golden file
    manifests = [m for m in load_manifests() if m.scenario in SCENARIOS]
    if not manifests:
        print("no dumps: run python -m vmcores.build first", file=sys.stderr)
        return 2
    for m in manifests:
        prog = open_vmcore(str(m.path("vmcore")), str(m.path("vmlinux")))
        snap = inspect(
            prog,
            source={"kind": "vmcore", "dump": f"{m.kernel_release}/{m.scenario}"},
        )
        path = out / f"{m.series}-{m.scenario}.json"
        path.write_text(snap.dumps())
        print(f"{path.relative_to(ROOT)}: {m.kernel_release} {m.scenario}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
