# SPDX-License-Identifier: GPL-2.0-or-later
"""
Flattened devicetree reader
---------------------------

A small, strict reader for flattened devicetree blobs (DTB, the format of the
kernel's ``initial_boot_params``), after the Devicetree Specification v0.4,
chapter 5. Only versions 16 and 17 are read.

The reader is meant for blobs read out of a crash dump, so it trusts nothing:
every offset and length is checked, any problem raises :class:`FdtError` with
one sentence that says what is wrong and where, and no input makes it raise
anything else, loop, recurse or use memory out of proportion to the input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rmem_inspect.formats.devicetree import RawNode

__all__ = ["FdtBlob", "FdtError", "header_total_size", "parse_fdt"]

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE = 0x1
FDT_END_NODE = 0x2
FDT_PROP = 0x3
FDT_NOP = 0x4
FDT_END = 0x9

#: Size of the version 17 header; version 16 lacks the last field (size_dt_struct).
FDT_V17_HEADER_SIZE = 40
FDT_V16_HEADER_SIZE = 36
#: Largest blob libfdt accepts (INT_MAX).
FDT_MAX_TOTAL_SIZE = 0x7FFFFFFF
#: Longest node or property name accepted, in bytes. The specification allows
#: 31 characters for node and property names (plus the unit address for nodes);
#: the limit bounds the time and memory spent on corrupt names.
MAX_NAME_LENGTH = 255

#: Characters allowed in names: printable ASCII without "/" (deleting them leaves nothing).
_NAME_CHARS = bytes(c for c in range(0x21, 0x7F) if c != 0x2F)
_U32 = struct.Struct(">I")
_RSV_ENTRY = struct.Struct(">QQ")
_PROP_HEADER = struct.Struct(">II")


class FdtError(ValueError):
    """A flattened devicetree blob that is not valid."""


@dataclass
class FdtBlob:
    """A parsed flattened devicetree blob."""

    version: int
    last_comp_version: int
    boot_cpuid: int
    #: ``totalsize`` from the header: the bytes of the blob that were read.
    total_size: int
    #: Memory reservation block entries (address, size), in order.
    mem_reserve: list[tuple[int, int]]
    root: RawNode


@dataclass(frozen=True)
class _Header:
    total_size: int
    off_dt_struct: int
    off_dt_strings: int
    off_mem_rsvmap: int
    version: int
    last_comp_version: int
    boot_cpuid: int
    size_dt_strings: int
    #: None for version 16, whose struct block runs up to totalsize.
    size_dt_struct: int | None
    header_size: int


def _u32(blob: bytes, offset: int) -> int:
    return _U32.unpack_from(blob, offset)[0]


def _check_block(name: str, field: int, offset: int, size: int, header: int, total: int) -> None:
    if offset < header or offset > total:
        raise FdtError(
            f"{name} offset {offset:#x} (header field at {field:#x}) is outside the blob "
            f"area [{header:#x}, {total:#x}]"
        )
    if size > total - offset:
        raise FdtError(f"{name} at offset {offset:#x} with size {size} ends past totalsize {total}")


def _parse_header(blob: bytes, max_size: int) -> _Header:
    """Read and check the header; only needs the header's bytes."""
    if len(blob) < 4:
        raise FdtError(f"blob is {len(blob)} bytes, too short to hold the FDT magic at offset 0")
    magic = _u32(blob, 0)
    if magic != FDT_MAGIC:
        raise FdtError(f"bad magic {magic:#010x} at offset 0x0 (expected {FDT_MAGIC:#010x})")
    if len(blob) < 28:
        raise FdtError(
            f"blob is {len(blob)} bytes, shorter than the smallest FDT header "
            f"({FDT_V16_HEADER_SIZE} bytes)"
        )
    version = _u32(blob, 20)
    last_comp_version = _u32(blob, 24)
    if version not in (16, 17):
        raise FdtError(f"unsupported FDT version {version} at offset 0x14 (16 and 17 are read)")
    if last_comp_version > 17 or last_comp_version > version:
        raise FdtError(
            f"last compatible version {last_comp_version} at offset 0x18 is newer than "
            f"{min(version, 17)}"
        )
    header_size = FDT_V16_HEADER_SIZE if version == 16 else FDT_V17_HEADER_SIZE
    if len(blob) < header_size:
        raise FdtError(
            f"blob is {len(blob)} bytes, shorter than the {header_size}-byte version "
            f"{version} header"
        )
    (
        _,
        total_size,
        off_dt_struct,
        off_dt_strings,
        off_mem_rsvmap,
        _,
        _,
        boot_cpuid,
        size_dt_strings,
    ) = struct.unpack_from(">9I", blob, 0)
    size_dt_struct = _u32(blob, 36) if version >= 17 else None

    if total_size < header_size:
        raise FdtError(
            f"totalsize {total_size} at offset 0x4 is smaller than the {header_size}-byte header"
        )
    if total_size > max_size:
        raise FdtError(
            f"totalsize {total_size} at offset 0x4 is larger than the limit of {max_size} bytes"
        )
    # The memory reservation block has no size field: it ends at its
    # terminating entry, which the parser looks for.
    _check_block("memory reservation block", 0x10, off_mem_rsvmap, 0, header_size, total_size)
    if off_mem_rsvmap % 8:
        raise FdtError(
            f"memory reservation block offset {off_mem_rsvmap:#x} (header field at 0x10) "
            "is not 8-byte aligned"
        )
    _check_block("struct block", 0x8, off_dt_struct, size_dt_struct or 0, header_size, total_size)
    if off_dt_struct % 4:
        raise FdtError(
            f"struct block offset {off_dt_struct:#x} (header field at 0x8) is not 4-byte aligned"
        )
    _check_block("strings block", 0xC, off_dt_strings, size_dt_strings, header_size, total_size)
    return _Header(
        total_size=total_size,
        off_dt_struct=off_dt_struct,
        off_dt_strings=off_dt_strings,
        off_mem_rsvmap=off_mem_rsvmap,
        version=version,
        last_comp_version=last_comp_version,
        boot_cpuid=boot_cpuid,
        size_dt_strings=size_dt_strings,
        size_dt_struct=size_dt_struct,
        header_size=header_size,
    )


def header_total_size(blob: bytes, *, max_size: int = FDT_MAX_TOTAL_SIZE) -> int:
    """
    Check an FDT header and return the blob's ``totalsize``.

    Only the header is needed (40 bytes cover both versions), so a caller can
    read the header first and then exactly the blob.

    :param max_size: Largest ``totalsize`` accepted.
    :raises FdtError: if the header is not valid.
    """
    return _parse_header(blob, max_size).total_size


def _mem_reserve(blob: bytes, header: _Header) -> list[tuple[int, int]]:
    # Like libfdt's fdt_num_mem_rsv() and the kernel, the first entry with a
    # size of 0 ends the block (the specification's terminator is (0, 0)).
    entries: list[tuple[int, int]] = []
    offset = header.off_mem_rsvmap
    while True:
        if offset + 16 > header.total_size:
            raise FdtError(
                f"memory reservation block at offset {header.off_mem_rsvmap:#x} has no "
                f"terminating entry before totalsize {header.total_size}"
            )
        address, size = _RSV_ENTRY.unpack_from(blob, offset)
        offset += 16
        if size == 0:
            return entries
        entries.append((address, size))


def _name(blob: bytes, offset: int, end: int, what: str) -> str:
    """Read a NUL-terminated name at ``offset`` that must end before ``end``."""
    limit = min(end, offset + MAX_NAME_LENGTH + 1)
    nul = blob.find(b"\0", offset, limit)
    if nul < 0:
        if limit < end:
            raise FdtError(f"{what} at offset {offset:#x} is longer than {MAX_NAME_LENGTH} bytes")
        raise FdtError(f"{what} at offset {offset:#x} is not NUL-terminated within its block")
    raw = blob[offset:nul]
    # Printable ASCII without "/": node names become path components, property
    # names file names under /sys/firmware/devicetree.
    if raw.translate(None, _NAME_CHARS):
        raise FdtError(f"{what} at offset {offset:#x} has characters that are not allowed")
    return raw.decode("ascii")


def _align4(offset: int) -> int:
    return (offset + 3) & ~3


def _path(stack: list[RawNode]) -> str:
    return "/" + "/".join(n.name for n in stack[1:])


def _struct(blob: bytes, header: _Header, max_nodes: int, max_depth: int) -> RawNode:
    """Walk the struct block iteratively, building the node tree."""
    start = header.off_dt_struct
    if header.size_dt_struct is None:
        end = header.total_size
    else:
        end = start + header.size_dt_struct
    strings = header.off_dt_strings
    strings_end = strings + header.size_dt_strings
    # Property names by strings-block offset: each is read and checked once.
    prop_names: dict[int, str] = {}

    root: RawNode | None = None
    stack: list[RawNode] = []
    # Per open node: has it got a subnode yet? (Properties must come first.)
    has_child: list[bool] = []
    nodes = 0
    offset = start
    while True:
        if offset + 4 > end:
            raise FdtError(
                f"struct block ends at offset {end:#x} before the FDT_END token "
                f"(struct block starts at {start:#x})"
            )
        token = _u32(blob, offset)
        token_offset = offset
        offset += 4
        if token_offset == start and token != FDT_BEGIN_NODE:
            # libfdt (and so the kernel) expects the root node at offset 0.
            raise FdtError(
                f"struct block at offset {start:#x} starts with token {token:#x} instead of "
                "FDT_BEGIN_NODE"
            )
        if token == FDT_BEGIN_NODE:
            if root is not None and not stack:
                raise FdtError(f"second root node at offset {token_offset:#x}")
            name = _name(blob, offset, end, "node name")
            offset = _align4(offset + len(name) + 1)
            nodes += 1
            if nodes > max_nodes:
                raise FdtError(
                    f"node at offset {token_offset:#x} is more than the limit of "
                    f"{max_nodes} nodes"
                )
            if len(stack) >= max_depth:
                raise FdtError(
                    f"node at offset {token_offset:#x} is nested deeper than the limit of "
                    f"{max_depth} levels"
                )
            node = RawNode(name=name, props={}, children=[])
            if stack:
                if not name:
                    raise FdtError(
                        f"node at offset {token_offset:#x} under {_path(stack)} has an empty name"
                    )
                stack[-1].children.append(node)
                has_child[-1] = True
            else:
                if name:
                    raise FdtError(
                        f"root node at offset {token_offset:#x} has name {name!r} "
                        "instead of an empty one"
                    )
                root = node
            stack.append(node)
            has_child.append(False)
        elif token == FDT_END_NODE:
            if not stack:
                raise FdtError(
                    f"FDT_END_NODE at offset {token_offset:#x} has no matching FDT_BEGIN_NODE"
                )
            stack.pop()
            has_child.pop()
        elif token == FDT_PROP:
            if not stack:
                raise FdtError(f"FDT_PROP at offset {token_offset:#x} is outside any node")
            if offset + 8 > end:
                raise FdtError(
                    f"property header at offset {token_offset:#x} runs past the struct block "
                    f"end at {end:#x}"
                )
            length, name_offset = _PROP_HEADER.unpack_from(blob, offset)
            offset += 8
            if length > end - offset:
                raise FdtError(
                    f"property at offset {token_offset:#x} has length {length}, which runs "
                    f"past the struct block end at {end:#x}"
                )
            if has_child[-1]:
                raise FdtError(
                    f"property at offset {token_offset:#x} of node {_path(stack)} follows "
                    "a subnode"
                )
            prop_name = prop_names.get(name_offset)
            if prop_name is None:
                if name_offset >= header.size_dt_strings:
                    raise FdtError(
                        f"property at offset {token_offset:#x} has name offset {name_offset:#x} "
                        f"outside the {header.size_dt_strings}-byte strings block"
                    )
                prop_name = _name(blob, strings + name_offset, strings_end, "property name")
                if not prop_name:
                    raise FdtError(
                        f"property at offset {token_offset:#x} has an empty name "
                        f"(strings block offset {name_offset:#x})"
                    )
                prop_names[name_offset] = prop_name
            props = stack[-1].props
            if prop_name in props:
                raise FdtError(
                    f"property {prop_name!r} at offset {token_offset:#x} appears twice in "
                    f"node {_path(stack)}"
                )
            props[prop_name] = blob[offset : offset + length]
            offset = _align4(offset + length)
        elif token == FDT_NOP:
            pass
        elif token == FDT_END:
            if stack:
                raise FdtError(
                    f"FDT_END at offset {token_offset:#x} inside node {_path(stack)} "
                    f"({len(stack)} nodes left open)"
                )
            if root is None:
                raise FdtError(f"FDT_END at offset {token_offset:#x} comes before any node")
            return root
        else:
            raise FdtError(f"unknown token {token:#x} at offset {token_offset:#x}")


def parse_fdt(blob: bytes, *, max_nodes: int = 100_000, max_depth: int = 64) -> FdtBlob:
    """
    Parse a flattened devicetree blob. Bytes after ``totalsize`` are ignored.

    :param max_nodes: Most nodes accepted, root included.
    :param max_depth: Most levels of nodes accepted, root included.
    :raises FdtError: if the blob is not valid or exceeds a limit.
    """
    blob = bytes(blob)
    header = _parse_header(blob, FDT_MAX_TOTAL_SIZE)
    if header.total_size > len(blob):
        raise FdtError(
            f"blob is truncated: header totalsize is {header.total_size} bytes but only "
            f"{len(blob)} bytes were given"
        )
    mem_reserve = _mem_reserve(blob, header)
    root = _struct(blob, header, max_nodes, max_depth)
    return FdtBlob(
        version=header.version,
        last_comp_version=header.last_comp_version,
        boot_cpuid=header.boot_cpuid,
        total_size=header.total_size,
        mem_reserve=mem_reserve,
        root=root,
    )
