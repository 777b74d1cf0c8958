# SPDX-License-Identifier: GPL-2.0-or-later
"""
Devicetree decoding
-------------------

Decode a raw devicetree (:class:`RawNode`: node names and undecoded property
values) into the :class:`~rmem_inspect.model.DtInfo` model, whichever source the
tree came from: a flattened blob (:mod:`rmem_inspect.formats.fdt`), the kernel's
unflattened ``of_root`` tree (:mod:`rmem_inspect.collect.of_tree`) or
/sys/firmware/devicetree/base.

The /reserved-memory children are validated the way the kernel validates them
in drivers/of/of_reserved_mem.c (6.12): a property with a length the kernel
rejects is reported in :attr:`~rmem_inspect.model.DtRegion.invalid` and left
empty. Decoding never raises on bad data: every problem becomes a note.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from rmem_inspect.model import Consumer, DtInfo, DtRegion

__all__ = [
    "RawNode",
    "decode_cells",
    "decode_pairs",
    "decode_string",
    "decode_strings",
    "decode_tree",
    "decode_u32",
    "decode_u32_list",
    "iter_nodes",
    "node_path",
]

#: Default cell sizes of the root node as Linux applies them
#: (OF_ROOT_NODE_ADDR_CELLS_DEFAULT / OF_ROOT_NODE_SIZE_CELLS_DEFAULT in
#: include/linux/of.h, 1 on every architecture but SPARC); the Devicetree
#: Specification says 2 for #address-cells, but the kernel's verdicts are what we check.
ROOT_ADDRESS_CELLS_DEFAULT = 1
ROOT_SIZE_CELLS_DEFAULT = 1

_U64_MASK = (1 << 64) - 1


@dataclass
class RawNode:
    """A devicetree node with undecoded property values."""

    #: Full node name with unit address (``vpu@50400000``); ``""`` for the root.
    name: str
    #: Property name -> raw (big-endian) value, in the order the source lists them.
    props: dict[str, bytes]
    children: list[RawNode]


# --------------------------------------------------------------------------
# Property value helpers. They raise ValueError on malformed values; the tree
# decoder turns that into notes.


def decode_u32(value: bytes) -> int:
    """Decode a one-cell property (``#address-cells``, ``phandle``)."""
    if len(value) != 4:
        raise ValueError(f"length {len(value)} is not 4")
    return int.from_bytes(value, "big")


def decode_u32_list(value: bytes) -> list[int]:
    """Decode a list of big-endian u32 cells (a phandle list, for example)."""
    if len(value) % 4:
        raise ValueError(f"length {len(value)} is not a multiple of 4")
    return list(struct.unpack(f">{len(value) // 4}I", value))


def decode_cells(value: bytes) -> int:
    """
    Decode a number made of any number of cells, keeping the low 64 bits like
    the kernel's ``of_read_number()`` does.
    """
    if len(value) % 4:
        raise ValueError(f"length {len(value)} is not a multiple of 4")
    return int.from_bytes(value, "big") & _U64_MASK


def decode_pairs(
    value: bytes, address_cells: int, size_cells: int, prop: str = "reg"
) -> list[tuple[int, int]]:
    """
    Decode a ``reg``-like list of (address, size) entries.

    :raises ValueError: ``"<prop> length N is not a multiple of M"`` (or the cell
        sizes cannot describe an entry at all).
    """
    entry = (address_cells + size_cells) * 4
    if address_cells < 0 or size_cells < 0 or entry == 0:
        raise ValueError(
            f"{prop} cannot be decoded with #address-cells {address_cells} and "
            f"#size-cells {size_cells}"
        )
    if len(value) % entry:
        raise ValueError(f"{prop} length {len(value)} is not a multiple of {entry}")
    split = address_cells * 4
    return [
        (decode_cells(value[i : i + split]), decode_cells(value[i + split : i + entry]))
        for i in range(0, len(value), entry)
    ]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def decode_string(value: bytes) -> str:
    """
    Decode a string property (``status``, ``device_type``): the text up to the
    first NUL.

    :raises ValueError: if the value has no terminating NUL.
    """
    end = value.find(b"\0")
    if end < 0:
        raise ValueError("string is not NUL-terminated")
    return _text(value[:end])


def decode_strings(value: bytes) -> list[str]:
    """
    Decode a string-list property (``compatible``, ``memory-region-names``).

    :raises ValueError: if a non-empty value does not end with a NUL.
    """
    if not value:
        return []
    if not value.endswith(b"\0"):
        raise ValueError("string list is not NUL-terminated")
    return [_text(s) for s in value[:-1].split(b"\0")]


def node_path(parent: str, name: str) -> str:
    """The path of child ``name`` of the node at ``parent``."""
    return ("" if parent == "/" else parent) + "/" + name


def iter_nodes(root: RawNode, errors: list[str] | None = None) -> Iterator[tuple[str, RawNode]]:
    """
    Yield (path, node) for every node of the tree in pre-order (the order of an
    FDT blob), iteratively. A node object reached a second time (a cyclic tree
    built from corrupt data) is not walked again; that is noted in ``errors``.
    """
    seen: set[int] = set()
    stack: list[tuple[str, RawNode]] = [("/", root)]
    while stack:
        path, node = stack.pop()
        if id(node) in seen:
            if errors is not None:
                errors.append(f"{path}: node reached a second time (cyclic tree); skipped")
            continue
        seen.add(id(node))
        yield path, node
        stack.extend((node_path(path, c.name), c) for c in reversed(node.children))


# --------------------------------------------------------------------------
# Lenient decoding used by decode_tree(): best effort plus a note.


def _string(node: RawNode, prop: str, path: str, errors: list[str]) -> str | None:
    value = node.props.get(prop)
    if value is None:
        return None
    try:
        return decode_string(value)
    except ValueError as e:
        errors.append(f"{path}: {prop}: {e}")
        return _text(value)


def _strings(node: RawNode, prop: str, path: str, errors: list[str]) -> list[str]:
    value = node.props.get(prop)
    if value is None:
        return []
    try:
        return decode_strings(value)
    except ValueError as e:
        errors.append(f"{path}: {prop}: {e}; the unterminated tail is ignored")
        # Like fdt_stringlist_contains(): only the terminated strings count.
        return [_text(s) for s in value.split(b"\0")[:-1]]


def _cells(node: RawNode, prop: str, path: str, errors: list[str]) -> int | None:
    value = node.props.get(prop)
    if value is None:
        return None
    try:
        return decode_u32(value)
    except ValueError as e:
        errors.append(f"{path}: {prop}: {e}; ignored")
        return None


def _status(node: RawNode, path: str, errors: list[str]) -> str:
    status = _string(node, "status", path, errors)
    return "okay" if status is None else status


def _phandle(node: RawNode, path: str, errors: list[str]) -> int | None:
    """
    The node's phandle: like the kernel's unflattening code, the first
    ``phandle`` or ``linux,phandle`` property in property order that holds a
    valid phandle (0 and 0xffffffff are not: Devicetree Specification 2.3.3).
    """
    for prop, value in node.props.items():
        if prop not in ("phandle", "linux,phandle"):
            continue
        try:
            phandle = decode_u32(value)
        except ValueError as e:
            errors.append(f"{path}: {prop}: {e}; ignored")
            continue
        if phandle in (0, 0xFFFFFFFF):
            errors.append(f"{path}: {prop}: {phandle:#x} is not a valid phandle; ignored")
            continue
        return phandle
    return None


def _wide_cells_notes(address_cells: int, size_cells: int, props: dict[str, bytes]) -> list[str]:
    notes = []
    if address_cells > 2 and any(p in props for p in ("reg", "alignment", "alloc-ranges")):
        notes.append(
            f"#address-cells {address_cells} is more than 2: addresses keep their low 64 bits"
        )
    if size_cells > 2 and any(p in props for p in ("reg", "size", "alloc-ranges")):
        notes.append(f"#size-cells {size_cells} is more than 2: sizes keep their low 64 bits")
    return notes


def _decode_region(
    node: RawNode,
    path: str,
    index: int,
    address_cells: int,
    size_cells: int,
    errors: list[str],
) -> DtRegion:
    props = node.props
    region = DtRegion(path=path, name=node.name, index=index)
    region.status = _status(node, path, errors)
    region.compatible = _strings(node, "compatible", path, errors)
    region.nomap = "no-map" in props
    region.reusable = "reusable" in props
    region.cma_default = "linux,cma-default" in props
    # Phandle problems are reported once, by decode_tree()'s phandle map.
    region.phandle = _phandle(node, path, [])
    invalid = region.invalid
    invalid.extend(_wide_cells_notes(address_cells, size_cells, props))

    reg = props.get("reg")
    if reg is not None and not reg:
        # __reserved_mem_reserve_reg() accepts it and reserves nothing, but
        # 6.12's fdt_scan_reserved_mem_reg_nodes() then reads cells past it.
        invalid.append("reg is empty")
    elif reg is not None:
        try:
            region.reg = decode_pairs(reg, address_cells, size_cells, "reg")
        except ValueError as e:
            invalid.append(str(e))

    # __reserved_mem_alloc_size()
    size = props.get("size")
    if size is not None:
        if len(size) != size_cells * 4:
            invalid.append(f"size length {len(size)} is not {size_cells * 4} (#size-cells)")
        else:
            region.size = decode_cells(size)
    alignment = props.get("alignment")
    if alignment is not None:
        # Sic: the kernel reads alignment with the address cell count.
        if len(alignment) != address_cells * 4:
            invalid.append(
                f"alignment length {len(alignment)} is not {address_cells * 4} (#address-cells)"
            )
        else:
            region.alignment = decode_cells(alignment)
    ranges = props.get("alloc-ranges")
    if ranges is not None:
        try:
            region.alloc_ranges = decode_pairs(ranges, address_cells, size_cells, "alloc-ranges")
        except ValueError as e:
            invalid.append(str(e))

    if reg is None and size is None:
        invalid.append("neither reg nor size: the kernel skips the node")
    return region


def _find_reserved_memory(root: RawNode, errors: list[str]) -> RawNode | None:
    """
    /reserved-memory as the kernel's early scan finds it: libfdt's
    ``fdt_path_offset()`` takes the first child of the root named
    ``reserved-memory`` or ``reserved-memory@<unit>``.
    """
    found = [
        c
        for c in root.children
        if c.name == "reserved-memory" or c.name.startswith("reserved-memory@")
    ]
    if len(found) > 1:
        errors.append(
            f"{len(found)} /reserved-memory nodes: only the first, {found[0].name}, is decoded"
        )
    return found[0] if found else None


def _decode_memory(root: RawNode, info: DtInfo) -> None:
    """
    ``reg`` of the memory nodes, as early_init_dt_scan_memory() (6.12) reads
    them: available children of the root with ``device_type = "memory"``.
    Trailing bytes that do not make a whole entry are ignored, like the kernel
    does.
    """
    errors = info.errors
    entry = (info.root_address_cells + info.root_size_cells) * 4
    for child in root.children:
        path = node_path("/", child.name)
        if _string(child, "device_type", path, errors) != "memory":
            continue
        if _status(child, path, errors) not in ("okay", "ok"):
            continue
        reg = child.props.get("reg")
        if reg is None:
            continue
        if entry == 0:
            errors.append(f"{path}: reg cannot be decoded with root cells 0 and 0")
            continue
        whole = len(reg) - len(reg) % entry
        if whole != len(reg):
            errors.append(
                f"{path}: reg length {len(reg)} is not a multiple of {entry}; "
                "the trailing bytes are ignored"
            )
        info.memory.extend(decode_pairs(reg[:whole], info.root_address_cells, info.root_size_cells))


def _decode_consumer(
    path: str, node: RawNode, phandles: dict[int, str], errors: list[str]
) -> Consumer:
    consumer = Consumer(path=path)
    consumer.compatible = _strings(node, "compatible", path, errors)
    consumer.status = _status(node, path, errors)
    value = node.props["memory-region"]
    whole = len(value) - len(value) % 4
    if whole != len(value):
        errors.append(
            f"{path}: memory-region length {len(value)} is not a multiple of 4; "
            "the trailing bytes are ignored"
        )
    consumer.phandles = decode_u32_list(value[:whole])
    consumer.targets = [phandles.get(p) for p in consumer.phandles]
    if "memory-region-names" in node.props:
        consumer.names = _strings(node, "memory-region-names", path, errors)
        if len(consumer.names) != len(consumer.phandles):
            errors.append(
                f"{path}: memory-region-names has {len(consumer.names)} names for "
                f"{len(consumer.phandles)} phandles"
            )
    return consumer


def decode_tree(root: RawNode, source: str) -> DtInfo:
    """
    Decode a raw devicetree into :class:`~rmem_inspect.model.DtInfo`.

    :param root: The root node (its name is ignored).
    :param source: :attr:`~rmem_inspect.model.DtInfo.source` (``of_root``,
        ``fdt``, ``sysfs``).
    """
    info = DtInfo(source=source)
    errors = info.errors

    address_cells = _cells(root, "#address-cells", "/", errors)
    size_cells = _cells(root, "#size-cells", "/", errors)
    info.root_address_cells = ROOT_ADDRESS_CELLS_DEFAULT if address_cells is None else address_cells
    info.root_size_cells = ROOT_SIZE_CELLS_DEFAULT if size_cells is None else size_cells

    nodes = list(iter_nodes(root, errors))

    # Like of_find_node_by_phandle(), the first node in tree order wins.
    phandles: dict[int, str] = {}
    for path, node in nodes:
        phandle = _phandle(node, path, errors)
        if phandle is None:
            continue
        if phandle in phandles:
            errors.append(
                f"{path}: phandle {phandle:#x} is already used by {phandles[phandle]}, "
                "which references resolve to"
            )
            continue
        phandles[phandle] = path

    _decode_memory(root, info)

    rmem = _find_reserved_memory(root, errors)
    if rmem is not None:
        rmem_path = node_path("/", rmem.name)
        info.has_reserved_memory = True
        info.reserved_memory_address_cells = _cells(rmem, "#address-cells", rmem_path, errors)
        info.reserved_memory_size_cells = _cells(rmem, "#size-cells", rmem_path, errors)
        info.reserved_memory_has_ranges = "ranges" in rmem.props
        rmem_address_cells = (
            info.root_address_cells
            if info.reserved_memory_address_cells is None
            else info.reserved_memory_address_cells
        )
        rmem_size_cells = (
            info.root_size_cells
            if info.reserved_memory_size_cells is None
            else info.reserved_memory_size_cells
        )
        for index, child in enumerate(rmem.children):
            path = node_path(rmem_path, child.name)
            info.regions.append(
                _decode_region(child, path, index, rmem_address_cells, rmem_size_cells, errors)
            )

    info.consumers = [
        _decode_consumer(path, node, phandles, errors)
        for path, node in nodes
        if "memory-region" in node.props
    ]
    return info
