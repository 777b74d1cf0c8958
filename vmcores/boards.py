# SPDX-License-Identifier: GPL-2.0-or-later
"""
The board DTBs engineers really have: every upstream board DTB that Debian's generic arm64
kernel package ships (``linux-image-VER-arm64``, /usr/lib/linux-image-VER/VENDOR/*.dtb),
fetched with the factory's private apt configuration (trixie) and unpacked once into the
shared cache under ``boards/VER/``. The preflight sweep (tests/vmcore/test_board_dtbs.py)
replays each of them on every kernel generation.

    python -m vmcores.boards        # prints the directory holding the DTBs
"""

from __future__ import annotations

import fcntl
import re
import subprocess
import sys
from pathlib import Path

from vmcores.debian import FetchError, PrivateApt, host_mirror
from vmcores.manifest import default_cache

__all__ = ["SUITE", "board_dtbs", "fetch_board_dtbs"]

SUITE = "trixie"
META = "linux-image-arm64"


def fetch_board_dtbs(cache: Path | None = None) -> Path:
    """The directory holding the board DTBs (VENDOR/*.dtb) of the newest generic arm64
    image package of :data:`SUITE`; downloaded and unpacked only when not there yet."""
    cache = cache or default_cache()
    apt = PrivateApt(cache / "apt", SUITE, host_mirror())
    meta = apt.show(META)
    m = re.search(r"\b(linux-image-\S+-arm64)(?:-unsigned)?\b", (meta or {}).get("Depends", ""))
    if not m:
        raise FetchError(f"cannot resolve the kernel behind {META} in {SUITE}")
    package = m.group(1)
    release = package.removeprefix("linux-image-")
    out = cache / "boards" / release
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{release}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = out / ".complete"
        if not done.exists():
            (deb,) = apt.download([package], cache / "debs")
            tmp = out.with_name(out.name + ".tmp")
            subprocess.run(["rm", "-rf", str(tmp)], check=True)
            tmp.mkdir(parents=True)
            subprocess.run(
                f"dpkg-deb --fsys-tarfile '{deb.file}' | tar -x -C '{tmp}' --wildcards "
                f"'./usr/lib/linux-image-{release}/*'",
                shell=True,
                check=True,
            )
            subprocess.run(["rm", "-rf", str(out)], check=True)
            (tmp / "usr" / "lib" / f"linux-image-{release}").rename(out)
            subprocess.run(["rm", "-rf", str(tmp)], check=True)
            (out / ".complete").write_text(f"{deb.name} {deb.version} {deb.sha256}\n")
    return out


def board_dtbs(root: Path) -> list[Path]:
    """Every board DTB under ``root`` (VENDOR/[SUBDIR/]*.dtb), sorted."""
    return sorted(root.rglob("*.dtb"))


def main() -> int:
    try:
        root = fetch_board_dtbs()
    except FetchError as e:
        print(f"boards: {e}", file=sys.stderr)
        return 2
    print(f"{root}: {len(board_dtbs(root))} board DTBs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
