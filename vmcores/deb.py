# SPDX-License-Identifier: GPL-2.0-or-later
"""
Build the project's Debian package (debian/) with Debian's own tooling, for the
tiers that install it (the live guest) and for CI.

The files git knows (tracked, or new and not ignored) are copied to a scratch
tree and built there with ``dpkg-buildpackage -A -us -uc`` (debhelper, dh-python's
pybuild with the pyproject plugin; tools/setup.sh installs them). The .deb is kept
in the cache under a hash of those files, so an unchanged tree is not rebuilt::

    python -m vmcores.deb          # prints the .deb's path
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from vmcores.manifest import default_cache

__all__ = ["build_deb", "source_files"]

ROOT = Path(__file__).resolve().parent.parent


def source_files(root: Path = ROOT) -> list[str]:
    """What goes into the package's source: git's tracked and new, unignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(f for f in out.split("\0") if f and (root / f).is_file())


def build_deb(cache: Path | None = None, root: Path = ROOT) -> Path:
    """The .deb built from ``root`` (reused when the sources did not change)."""
    cache = cache or default_cache()
    files = source_files(root)
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode() + b"\0" + (root / f).read_bytes())
    out_dir = cache / "deb" / h.hexdigest()[:16]
    found = sorted(out_dir.glob("rmem-inspect_*_all.deb"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(prefix="rmem-deb-") as tmp:
        src = Path(tmp) / "rmem-inspect"
        for f in files:
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, src / f)
        # Debian's python3, not a virtual environment's or pyenv's first in PATH.
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        p = subprocess.run(
            ["dpkg-buildpackage", "-A", "-us", "-uc"],
            cwd=src,
            capture_output=True,
            text=True,
            env=env,
        )
        if p.returncode != 0:
            tail = "\n".join((p.stdout + p.stderr).splitlines()[-30:])
            raise RuntimeError(f"dpkg-buildpackage failed ({p.returncode}):\n{tail}")
        debs = sorted(Path(tmp).glob("rmem-inspect_*_all.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"dpkg-buildpackage made {debs}, expected one _all.deb")
        out_dir.mkdir(parents=True, exist_ok=True)
        part = out_dir / (debs[0].name + ".part")
        shutil.copy2(debs[0], part)
        part.replace(out_dir / debs[0].name)
    return out_dir / debs[0].name


if __name__ == "__main__":
    print(build_deb())
    sys.exit(0)
