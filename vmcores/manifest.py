# SPDX-License-Identifier: GPL-2.0-or-later
"""
The manifest written next to every dump the factory builds.

One ``manifest.json`` per (kernel release, scenario), in
``$CACHE/dumps/<release>/<scenario>/``. Paths in it are relative to that
directory, so the cache can move. The format is versioned by ``format``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

__all__ = [
    "FORMAT",
    "DumpManifest",
    "default_cache",
    "load_manifests",
]

FORMAT = 1


def default_cache() -> Path:
    """``$RMEM_INSPECT_CACHE``, else ``$XDG_CACHE_HOME/rmem-inspect`` (``~/.cache``)."""
    env = os.environ.get("RMEM_INSPECT_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "rmem-inspect"


@dataclass
class DumpManifest:
    scenario: str
    series: str
    kernel_release: str
    #: Debian packages the kernel came from: name, version, sha256, file.
    packages: list[dict]
    busybox: dict
    dtb_sha256: str
    qemu_version: str
    qemu_command: list[str]
    #: Relative to the manifest's directory.
    paths: dict[str, str]
    vmcore_bytes: int
    vmcore_allocated_bytes: int
    boot_seconds: float
    dump_seconds: float
    built_at: str
    #: Hash of every input; the dump is rebuilt only when it changes.
    key: str
    format: int = FORMAT
    #: What the dump file is: "elf" (QEMU's dump-guest-memory, /proc/vmcore, makedumpfile
    #: -E) or "kdump" (makedumpfile's compressed format), its page compression and the
    #: makedumpfile dump level (None: not filtered).
    dump_format: str = "elf"
    compression: str = "none"
    dump_level: int | None = None
    #: How it was made: "qemu" (dump-guest-memory) or "kdump:<job>" (vmcores/kdump.py).
    capture: str = "qemu"
    #: The capture kernel's userland packages (kexec-tools, makedumpfile, libraries).
    capture_tools: list[dict] = field(default_factory=list)
    #: Where this manifest was loaded from (not stored).
    directory: str = field(default="", compare=False)

    def path(self, name: str) -> Path:
        """Absolute path of ``paths[name]``."""
        return (Path(self.directory) / self.paths[name]).resolve()

    def save(self, directory: Path) -> None:
        d = asdict(self)
        d.pop("directory")
        tmp = directory / "manifest.json.tmp"
        tmp.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
        tmp.replace(directory / "manifest.json")

    @classmethod
    def load(cls, path: Path) -> DumpManifest:
        d = json.loads(path.read_text())
        if d.get("format") != FORMAT:
            raise ValueError(f"{path}: manifest format {d.get('format')}, expected {FORMAT}")
        d["directory"] = str(path.parent)
        # the cache is shared by checkouts of different ages: a newer builder's extra
        # fields are not this one's business (the dump itself is judged by its key)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def load_manifests(cache: Path | None = None) -> list[DumpManifest]:
    """Every dump manifest in the cache, sorted by (series, scenario)."""
    root = (cache or default_cache()) / "dumps"
    out = [DumpManifest.load(p) for p in sorted(root.glob("*/*/manifest.json"))]
    return sorted(out, key=lambda m: (m.series, m.scenario))
