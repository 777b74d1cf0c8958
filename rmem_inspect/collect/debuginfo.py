# SPDX-License-Identifier: GPL-2.0-or-later
"""
debuginfo
---------

Where the vmlinux with debug info of a kernel is, when ``--vmlinux`` is not given:
on disk, looked up by release and build-id (:func:`find_vmlinux`, in drgn's standard
places, Debian -dbg layouts, ``$RMEM_INSPECT_DEBUG_DIRS`` and the vmcore factory's
cache), and, when ``$DEBUGINFOD_URLS`` is set, on those debuginfod servers
(:func:`debuginfod_vmlinux`). Whatever is found is vetted like a given one
(:func:`rmem_inspect.collect.vetting.vet_vmlinux`).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import drgn

from rmem_inspect.formats.elf import NT_GNU_BUILD_ID, ElfError, parse_notes, read_elf

__all__ = [
    "debug_search_paths",
    "debuginfod_note",
    "debuginfod_vmlinux",
    "fetch_debuginfod",
    "find_vmlinux",
    "running_build_id",
]


def debug_search_paths(release: str, build_id: str | None = None) -> list[str]:
    """Where a vmlinux for ``release`` may be: drgn's standard places, Debian -dbg
    layouts, ``$RMEM_INSPECT_DEBUG_DIRS`` (colon-separated roots) and the vmcore
    factory's cache."""
    roots = ["/"]
    roots += [r for r in os.environ.get("RMEM_INSPECT_DEBUG_DIRS", "").split(":") if r]
    cache = os.environ.get("RMEM_INSPECT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rmem-inspect"
    )
    roots.append(os.path.join(cache, "kernels", release, "dbg"))
    rel = [
        f"usr/lib/debug/boot/vmlinux-{release}",
        f"usr/lib/debug/lib/modules/{release}/vmlinux",
        f"usr/lib/debug/usr/lib/modules/{release}/vmlinux",
        f"lib/modules/{release}/build/vmlinux",
        f"boot/vmlinux-{release}",
    ]
    if build_id and len(build_id) > 2:
        rel.insert(0, f"usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug")
    return [os.path.join(root, r) for root in roots for r in rel]


def find_vmlinux(release: str, build_id: str | None, extra: Iterable[str] = ()) -> str | None:
    """The first candidate vmlinux whose build-id matches (or, without one, that exists)."""
    for path in [*extra, *debug_search_paths(release, build_id)]:
        for p in glob.glob(path):
            if not os.path.isfile(p):
                continue
            if build_id is None:
                return p
            try:
                if read_elf(p, sections=True).build_id == build_id:
                    return p
            except (OSError, ElfError):
                continue
    return None


def debuginfod_vmlinux(
    build_id: str | None, attach: Callable[[drgn.Program], None] | None = None
) -> str | None:
    """The vmlinux with ``build_id`` from the servers in ``$DEBUGINFOD_URLS``, or None.

    drgn's own ``debuginfod`` debug info finder (libdebuginfod) when this drgn has
    one (``Program.registered_debug_info_finders``, drgn 0.0.31+) and ``attach`` can
    point a Program at the kernel; otherwise, or when it finds nothing, the
    debuginfod web API (:func:`fetch_debuginfod`).
    """
    urls = os.environ.get("DEBUGINFOD_URLS", "").split()
    if not urls or not build_id:
        return None
    if attach is not None:
        path = _drgn_debuginfod(attach)
        if path is not None:
            return path
    return fetch_debuginfod(build_id, urls)


def _drgn_debuginfod(attach: Callable[[drgn.Program], None]) -> str | None:
    prog = drgn.Program()
    try:
        if "debuginfod" not in prog.registered_debug_info_finders():
            return None
    except AttributeError:  # drgn < 0.0.31: no debug info finder API
        return None
    log = logging.getLogger("drgn")
    level = log.level
    log.setLevel(logging.CRITICAL)  # "missing debugging symbols": we say it ourselves
    try:
        attach(prog)
        prog.set_enabled_debug_info_finders(["debuginfod"])
        try:
            prog.load_debug_info(main=True)
        except drgn.MissingDebugInfoError:
            pass
        path = prog.main_module().debug_file_path
    except Exception:  # any failure here only means: try the web API
        return None
    finally:
        log.setLevel(level)
    return path if isinstance(path, str) else None


def fetch_debuginfod(build_id: str, urls: Iterable[str], timeout: float = 90.0) -> str | None:
    """GET ``URL/buildid/BUILD_ID/debuginfo`` from each server in turn (the debuginfod
    web API, debuginfod(8)) into the client cache libdebuginfod uses
    (``$DEBUGINFOD_CACHE_PATH``, else ~/.cache/debuginfod_client); the path, or None."""
    if not re.fullmatch(r"[0-9a-f]{8,128}", build_id):
        return None
    cache = os.environ.get("DEBUGINFOD_CACHE_PATH") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "debuginfod_client"
    )
    path = os.path.join(cache, build_id, "debuginfo")
    if os.path.isfile(path) and os.path.getsize(path) > 0:  # empty: libdebuginfod's "404"
        return path
    for url in urls:
        try:
            with urllib.request.urlopen(
                f"{url.rstrip('/')}/buildid/{build_id}/debuginfo", timeout=timeout
            ) as resp:
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                tmp = f"{path}.{os.getpid()}.part"
                with open(tmp, "wb") as f:
                    while chunk := resp.read(1 << 20):
                        f.write(chunk)
                os.replace(tmp, path)
                return path
        except (urllib.error.URLError, OSError, ValueError):
            continue
    return None


def debuginfod_note() -> str:
    """Where the vmlinux was looked for besides the disk, for the error that none was found."""
    urls = os.environ.get("DEBUGINFOD_URLS", "").split()
    if urls:
        return " on disk or on the debuginfod servers " + " ".join(urls)
    return " (set DEBUGINFOD_URLS to ask debuginfod servers too)"


def running_build_id() -> str | None:
    """The running kernel's build-id, from its ELF notes in /sys/kernel/notes, or None."""
    path = Path("/sys/kernel/notes")
    try:
        data = path.read_bytes()
    except OSError:
        return None
    for name, ntype, desc in parse_notes(data, little=True):
        if name == "GNU" and ntype == NT_GNU_BUILD_ID:
            return desc.hex()
    return None
