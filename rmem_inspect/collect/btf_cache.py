# SPDX-License-Identifier: GPL-2.0-or-later
"""
btf_cache
---------

The BTF index (:mod:`rmem_inspect.formats.btf_index`: where each of the ~100,000
type records starts, type ids by name, enumerators by name, and the strings looked
up) kept per kernel build in the user's cache directory
(``$XDG_CACHE_HOME/rmem-inspect/btf-index/<build-id>.idx``), so a second look at
any dump of the same kernel neither walks the type section nor searches the string
section for the names it has asked before.

A file is used only when it names the same build-id and was written for the same
blob (size and CRC-32, checked by :func:`~rmem_inspect.formats.btf_index.unpack_index`);
a truncated, damaged or foreign file is ignored and rewritten. It is written when
the :class:`Btf` is done with (collected, or at exit), and only when new names were
looked up. The directory is bounded (:data:`MAX_FILES`, :data:`MAX_BYTES`: the
oldest go first). Nothing is read or written when caching is off (``--no-cache``:
:data:`ENABLED`) and nothing is written where the directory is not writable; the
report never depends on the cache.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import weakref
from contextvars import ContextVar

from rmem_inspect.formats.btf import Btf
from rmem_inspect.formats.btf_index import (
    BtfIndex,
    IndexMismatch,
    blob_key,
    complete,
    pack_index,
    unpack_index,
)

__all__ = ["ENABLED", "MAX_BYTES", "MAX_FILES", "cache_dir", "flush", "load_btf"]

#: Whether the index cache is read and written (``--no-cache`` sets it False).
ENABLED: ContextVar[bool] = ContextVar("rmem_inspect_btf_cache", default=True)
#: Bounds of the cache directory (an index is about 3 MiB per kernel build).
MAX_FILES = 32
MAX_BYTES = 128 << 20
_BUILD_ID = re.compile(r"[0-9a-f]{8,128}")
#: Writes waiting for their Btf to be done with.
_PENDING: list[weakref.finalize] = []


def cache_dir() -> str:
    """``$XDG_CACHE_HOME/rmem-inspect/btf-index`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "rmem-inspect", "btf-index")


def _path(build_id: str) -> str | None:
    if not _BUILD_ID.fullmatch(build_id):
        return None
    return os.path.join(cache_dir(), f"{build_id}.idx")


def load_btf(blob: bytes, build_id: str | None, pointer_size: int = 8) -> tuple[Btf, str]:
    """A :class:`Btf` of ``blob``, with its index from the cache when one fits.

    :returns: the Btf and one sentence saying where its index came from.
    :raises BtfError: the blob is not valid BTF.
    """
    bid = (build_id or "").lower()
    path = _path(bid) if bid and ENABLED.get() else None
    if path is None:  # one use: the lookups scan the sections
        return Btf(blob, pointer_size), (
            "BTF index: built (cache off)" if bid else "BTF index: built"
        )
    key = blob_key(blob)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES)
        head, _, rest = data.partition(b"\n")
        if head.decode(errors="replace") != bid:
            raise IndexMismatch("the index names another build-id")
        btf = Btf(blob, pointer_size, index=unpack_index(rest, key))
        how = f"BTF index: cached for build-id {bid} ({path})"
        known = len(btf.index.strings)
    except (OSError, IndexMismatch):  # absent, truncated, damaged or foreign
        btf = Btf(blob, pointer_size)
        complete(btf.index, btf.types_section, btf.byte_order)
        how = f"BTF index: built, cached in {path} when done"
        known = -1
    _PENDING.append(weakref.finalize(btf, _save, path, bid, btf.index, key, known))
    return btf, how


def flush() -> None:
    """Write the indexes whose Btf objects are still alive (tests; the rest are
    written when collected or at exit)."""
    while _PENDING:
        _PENDING.pop()()


def _save(path: str, build_id: str, index: BtfIndex, key: tuple[int, int], known: int) -> None:
    if len(index.strings) > known:
        _write(path, build_id.encode() + b"\n" + pack_index(index, key))


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
