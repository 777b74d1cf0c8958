# SPDX-License-Identifier: GPL-2.0-or-later
"""
pack
----

The pure reader of board packs: the tar (ustar, GNU or pax; optionally gzip'ed)
or cpio newc archive that ``rmem-inspect collect-script`` makes on a board.
Archives come from boards and may be malformed or hostile, so the reader works
on bytes in memory and never extracts anything: every member is checked
(relative path without ``..``, a regular file or directory, no duplicates,
within the archive's bounds) and sizes are capped (:data:`MAX_MEMBER`,
:data:`MAX_TOTAL`, :data:`MAX_MEMBERS`). Any violation is a :class:`PackError`
with one sentence.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "MAX_MEMBER",
    "MAX_MEMBERS",
    "MAX_TOTAL",
    "Pack",
    "PackError",
    "parse_pack",
]

#: The largest member read (a kernel's BTF is ~6 MiB, its kallsyms ~10 MiB).
MAX_MEMBER = 64 << 20
#: The most bytes all members (and a gzip'ed archive once inflated) may hold.
MAX_TOTAL = 512 << 20
#: The most members (a board's devicetree has some thousands of properties).
MAX_MEMBERS = 200_000

_CPIO_MAGICS = (b"070701", b"070702")
_S_IFMT, _S_IFDIR, _S_IFREG = 0o170000, 0o040000, 0o100000


class PackError(ValueError):
    """The archive is not a board pack this reader accepts (one sentence)."""


@dataclass
class Pack:
    """The members of a board pack: file path (relative, ``/``-separated) -> bytes."""

    files: dict[str, bytes] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    #: ``tar`` or ``cpio``.
    kind: str = ""

    def read(self, path: str) -> bytes:
        """The bytes of member ``path`` (a leading ``/`` is ignored); KeyError if absent."""
        return self.files[path.strip("/")]

    def text(self, path: str) -> str | None:
        """Member ``path`` as text, or None when the pack lacks it."""
        data = self.files.get(path.strip("/"))
        return None if data is None else data.decode(errors="replace")

    def is_dir(self, path: str) -> bool:
        return path.strip("/") in self.dirs

    def children(self, path: str) -> list[tuple[str, bool]]:
        """(name, is_dir) of the direct members under directory ``path``, sorted by name."""
        prefix = path.strip("/") + "/"
        out = {}
        for p in self.files:
            if p.startswith(prefix) and "/" not in p[len(prefix) :]:
                out[p[len(prefix) :]] = False
        for d in self.dirs:
            if d.startswith(prefix) and "/" not in d[len(prefix) :]:
                out[d[len(prefix) :]] = True
        return sorted(out.items())


def _clean(name: str) -> str:
    """A member name made relative (``./`` dropped); PackError for escaping paths."""
    if "\0" in name or "\\" in name:
        raise PackError(f"member name {name!r} holds a NUL or backslash")
    if name.startswith("/"):
        raise PackError(f"member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PackError(f"member {name!r} points outside the archive ('..')")
    return "/".join(parts)


def _add(pack: Pack, name: str, is_dir: bool, data: bytes, total: list[int]) -> None:
    path = _clean(name)
    if not path:
        return  # "." itself
    if len(pack.files) + len(pack.dirs) >= MAX_MEMBERS:
        raise PackError(f"more than {MAX_MEMBERS} members")
    if is_dir:
        if path in pack.files:
            raise PackError(f"member {path!r} is both a file and a directory")
        pack.dirs.add(path)
    else:
        if path in pack.files or path in pack.dirs:
            raise PackError(f"member {path!r} appears twice")
        total[0] += len(data)
        if total[0] > MAX_TOTAL:
            raise PackError(f"members hold more than {MAX_TOTAL >> 20} MiB")
        pack.files[path] = data
    parent = path.rpartition("/")[0]
    while parent and parent not in pack.dirs:  # cpio may list files before their dirs
        pack.dirs.add(parent)
        parent = parent.rpartition("/")[0]


def _check_size(name: str, size: int) -> None:
    if size > MAX_MEMBER:
        raise PackError(f"member {name!r} is {size} bytes, over the {MAX_MEMBER >> 20} MiB cap")


def _tar(data: bytes, pack: Pack) -> None:
    total = [0]
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in _members(tar):
                if m.isdir():
                    _add(pack, m.name, True, b"", total)
                    continue
                if not m.isreg():
                    raise PackError(f"member {m.name!r} is not a regular file or directory")
                _check_size(m.name, m.size)
                if m.offset_data + m.size > len(data):
                    raise PackError(f"archive truncated inside member {m.name!r}")
                _add(pack, m.name, False, data[m.offset_data : m.offset_data + m.size], total)
            end = data[tar.offset : tar.offset + 512]
            if len(end) < 512 or end.strip(b"\0"):
                raise PackError(f"tar archive truncated or damaged at byte {tar.offset}")
    except PackError:
        raise
    except (tarfile.TarError, EOFError, ValueError, UnicodeError, OverflowError) as e:
        raise PackError(f"not a readable tar archive ({e})") from None


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    n = 0
    while True:
        m = tar.next()
        if m is None:
            return
        n += 1
        if n > MAX_MEMBERS:
            raise PackError(f"more than {MAX_MEMBERS} members")
        yield m


def _cpio(data: bytes, pack: Pack) -> None:
    total = [0]
    pos = 0
    while True:
        head = data[pos : pos + 110]
        if len(head) < 110:
            raise PackError("cpio archive truncated (no TRAILER!!! entry)")
        if head[:6] not in _CPIO_MAGICS:
            raise PackError(f"bad cpio header at byte {pos} (only newc is read)")
        try:
            fields = [int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise PackError(f"bad cpio header at byte {pos}: non-hex field") from None
        mode, filesize, namesize = fields[1], fields[6], fields[11]
        name_end = pos + 110 + namesize
        if namesize == 0 or name_end > len(data):
            raise PackError(f"cpio archive truncated in the name at byte {pos}")
        raw = data[pos + 110 : name_end - 1]
        try:
            name = raw.decode()
        except UnicodeDecodeError:
            raise PackError(f"cpio member name at byte {pos} is not UTF-8") from None
        start = (name_end + 3) & ~3
        if name == "TRAILER!!!":
            return
        _check_size(name, filesize)
        if start + filesize > len(data):
            raise PackError(f"archive truncated inside member {name!r}")
        kind = mode & _S_IFMT
        if kind == _S_IFDIR:
            _add(pack, name, True, b"", total)
        elif kind == _S_IFREG:
            _add(pack, name, False, data[start : start + filesize], total)
        else:
            raise PackError(f"member {name!r} is not a regular file or directory")
        pos = (start + filesize + 3) & ~3


def _gunzip(data: bytes) -> bytes:
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(data, MAX_TOTAL + 1)
    except zlib.error as e:
        raise PackError(f"corrupt gzip data ({e})") from None
    if len(out) > MAX_TOTAL:
        raise PackError(f"gzip'ed archive inflates beyond {MAX_TOTAL >> 20} MiB")
    if not d.eof:
        raise PackError("gzip'ed archive truncated")
    return out


def parse_pack(data: bytes) -> Pack:
    """The members of a board pack (tar, tar.gz or cpio newc), read in memory.

    :raises PackError: malformed, truncated, oversized or hostile archive.
    """
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data)
    pack = Pack()
    if data[:6] in _CPIO_MAGICS:
        pack.kind = "cpio"
        _cpio(data, pack)
    elif len(data) >= 512 and data[257:262] == b"ustar":
        pack.kind = "tar"
        _tar(data, pack)
    else:
        raise PackError("neither a tar nor a cpio newc archive")
    return pack
