# SPDX-License-Identifier: GPL-2.0-or-later
"""
btf_cache
---------

The BTF index (:mod:`rmem_inspect.formats.btf_index`: where each of the ~100,000
type records starts) kept per kernel build in the user's cache directory
(``$XDG_CACHE_HOME/rmem-inspect/btf-index/<build-id>.idx``), so a second look at
any dump of the same kernel skips the pass over the type section.

A file is used only when it names the same build-id and was written for the same
blob (size and CRC-32, checked by :func:`~rmem_inspect.formats.btf_index.unpack_index`);
a truncated, damaged or foreign file is ignored and rewritten. The directory is
bounded (:data:`MAX_FILES`, :data:`MAX_BYTES`: the oldest go first). Nothing is
written when caching is off (``--no-cache``: :data:`ENABLED`) or the directory is
not writable; the report never depends on the cache.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from contextvars import ContextVar

from rmem_inspect.formats.btf import Btf
from rmem_inspect.formats.btf_index import IndexMismatch, complete, pack_index, unpack_index

__all__ = ["ENABLED", "MAX_BYTES", "MAX_FILES", "cache_dir", "load_btf"]

#: Whether the index cache is read and written (``--no-cache`` sets it False).
ENABLED: ContextVar[bool] = ContextVar("rmem_inspect_btf_cache", default=True)
#: Bounds of the cache directory (an index is about 1 MiB per kernel build).
MAX_FILES = 32
MAX_BYTES = 64 << 20
_BUILD_ID = re.compile(r"[0-9a-f]{8,128}")


def cache_dir() -> str:
    """``$XDG_CACHE_HOME/rmem-inspect/btf-index`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "rmem-inspect", "btf-index")


def _path(build_id: str) -> str | None:
    build_id = build_id.lower()
    if not _BUILD_ID.fullmatch(build_id):
        return None
    return os.path.join(cache_dir(), f"{build_id}.idx")


def load_btf(blob: bytes, build_id: str | None, pointer_size: int = 8) -> tuple[Btf, str]:
    """A :class:`Btf` of ``blob``, with its index from the cache when one fits.

    :returns: the Btf and one sentence saying where its index came from.
    :raises BtfError: the blob is not valid BTF.
    """
    path = _path(build_id) if build_id and ENABLED.get() else None
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_BYTES)
            head, _, rest = data.partition(b"\n")
            if head.decode(errors="replace") != build_id.lower():  # type: ignore[union-attr]
                raise IndexMismatch("the index names another build-id")
            btf = Btf(blob, pointer_size, index=unpack_index(rest, blob))
            return btf, f"BTF index: cached for build-id {build_id} ({path})"
        except (OSError, IndexMismatch):
            pass  # absent, truncated, damaged or foreign: walk again and rewrite
    btf = Btf(blob, pointer_size)
    if path is None:  # one use: the lookups scan the sections instead
        return btf, "BTF index: built (cache off)" if build_id else "BTF index: built"
    complete(btf.index, btf.types_section, btf.strings_section, btf.byte_order)
    written = _write(path, build_id.lower().encode() + b"\n" + pack_index(btf.index, blob))  # type: ignore[union-attr]
    return btf, f"BTF index: built{', cached in ' + path if written else ''}"


def _write(path: str, data: bytes) -> bool:
    """Write ``path`` atomically, then bound the directory; False when it cannot."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".btf-index-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return False
    _bound(directory)
    return True


def _bound(directory: str) -> None:
    """Remove the least recently written index files beyond MAX_FILES / MAX_BYTES."""
    try:
        entries = []
        for e in os.scandir(directory):
            if e.name.endswith(".idx") and e.is_file(follow_symlinks=False):
                st = e.stat(follow_symlinks=False)
                entries.append((st.st_mtime, st.st_size, e.path))
    except OSError:
        return
    entries.sort(reverse=True)
    total = 0
    for n, (_, size, path) in enumerate(entries):
        total += size
        if n >= MAX_FILES or total > MAX_BYTES:
            with contextlib.suppress(OSError):
                os.unlink(path)
