# SPDX-License-Identifier: GPL-2.0-or-later
"""The Debian package built from debian/ with dpkg-buildpackage (vmcores/deb.py):
what a board installs. The live tier installs it into the arm64 trixie guest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vmcores.deb import build_deb

pytestmark = pytest.mark.vmcore

ROOT = Path(__file__).resolve().parent.parent.parent


def _field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_deb_builds_with_debian_tooling() -> None:
    deb = build_deb()
    assert deb.name.endswith("_all.deb")
    assert _field(deb, "Package") == "rmem-inspect"
    assert _field(deb, "Architecture") == "all"
    depends = {d.strip().split()[0] for d in _field(deb, "Depends").split(",")}
    assert {"python3-drgn", "python3-tabulate"} <= depends
    assert "bpfcc-tools" in _field(deb, "Recommends")
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    assert "/usr/bin/rmem-inspect" in paths
    # Every module of the source tree, the man pages and the example transcripts.
    for p in sorted((ROOT / "rmem_inspect").rglob("*.py")):
        rel = p.relative_to(ROOT)
        assert f"/usr/lib/python3/dist-packages/{rel}" in paths, rel
    for p in sorted((ROOT / "man").glob("*.8")):
        assert f"/usr/share/man/man8/{p.name}.gz" in paths
    for p in sorted((ROOT / "man").glob("*_example.txt")):
        assert f"/usr/share/doc/rmem-inspect/examples/{p.name}" in paths
