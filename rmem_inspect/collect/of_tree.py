# SPDX-License-Identifier: GPL-2.0-or-later
"""
of_tree
-------

Convert the kernel's unflattened devicetree (``of_root``, ``struct
device_node``) into :class:`~rmem_inspect.formats.devicetree.RawNode` trees,
the same shape the FDT reader produces, so one decoder serves both. The walk is
iterative and bounded: a corrupt sibling/child/property chain cannot loop, and a
tree that could not be read completely (faults, absurd lengths, cycles, caps hit)
raises :class:`OfTreeUnreadable` instead of passing for the kernel's tree.
"""

from __future__ import annotations

from drgn import FaultError, Program

from rmem_inspect.collect.reading import BlockCache, RawStruct, Reader, read_cstr
from rmem_inspect.formats.devicetree import RawNode

__all__ = ["MAX_NODES", "MAX_PROPS", "MAX_PROP_LEN", "OfTreeUnreadable", "read_of_tree"]

MAX_NODES = 100_000
MAX_PROPS = 4096
MAX_PROP_LEN = 1 << 20


class OfTreeUnreadable(ValueError):
    """Part of the unflattened tree did not read: what was read is not the kernel's tree."""


def _incomplete(errors: list[str], first: int, nodes: int) -> OfTreeUnreadable:
    bad = errors[first:]
    return OfTreeUnreadable(
        f"the unflattened devicetree did not read completely ({nodes} nodes read, "
        f"{len(bad)} problems; first: {bad[0]})"
    )


class _Layouts:
    """``struct device_node`` and ``struct property`` members the walk reads, and the
    property names read so far: unflatten_dt_nodes() points every property's name
    into the FDT's strings block, where dtc stores each name once."""

    def __init__(self, prog: Program) -> None:
        self.names: dict[int, str] = {}
        self.node = RawStruct(
            prog, "struct device_node", ["full_name", "properties", "child", "sibling"]
        )
        self.prop = RawStruct(prog, "struct property", ["name", "length", "value", "next"])


def _props(mem: Reader, layouts: _Layouts, np: int, pp: int, errors: list[str]) -> dict[str, bytes]:
    """The properties of the node at ``np``, from its first ``struct property *`` ``pp``."""
    props: dict[str, bytes] = {}
    seen = 0
    while pp and seen < MAX_PROPS:
        seen += 1
        try:
            name_ptr, length, value_ptr, next_pp = layouts.prop.read(mem, pp)
            name = layouts.names.get(name_ptr)
            if name is None:
                name = read_cstr(mem, name_ptr) or f"<unreadable@{name_ptr:#x}>"
                layouts.names[name_ptr] = name
            if length < 0 or length > MAX_PROP_LEN:
                errors.append(f"property {name}: absurd length {length}")
                value = b""
            else:
                value = mem.read(value_ptr, length) if length else b""
            props[name] = value
            pp = next_pp
        except FaultError as e:
            errors.append(f"property at {pp:#x} unreadable: {e}")
            break
    if seen >= MAX_PROPS:
        errors.append(f"node at {np:#x}: more than {MAX_PROPS} properties, stopped")
    return props


def read_of_tree(prog: Program, errors: list[str]) -> RawNode | None:
    """The unflattened tree from ``of_root`` (None when the kernel has no tree).

    :raises OfTreeUnreadable: a node, property or link faulted or was absurd; the
        problems are also appended to ``errors``.
    """
    try:
        root = prog["of_root"].value_()
    except (LookupError, FaultError) as e:
        errors.append(f"of_root unreadable: {e}")
        return None
    if not root:
        return None
    layouts = _Layouts(prog)
    mem = BlockCache(prog)  # the tree is one allocation; names and values are in the FDT
    first = len(errors)
    try:
        _, properties, child, _ = layouts.node.read(mem, root)
    except FaultError as e:
        errors.append(f"root node at {root:#x} unreadable: {e}")
        raise _incomplete(errors, first, 0) from e
    out_root = RawNode(name="", props=_props(mem, layouts, root, properties, errors), children=[])
    # (first child of a node, the node's RawNode): walk children iteratively.
    stack: list[tuple[int, RawNode]] = [(child, out_root)]
    visited = {root}
    count = 1
    while stack:
        child, raw = stack.pop()
        while child:
            addr = child
            if addr in visited:
                errors.append(f"devicetree node {addr:#x} reached twice: corrupt tree")
                break
            visited.add(addr)
            count += 1
            if count > MAX_NODES:
                errors.append(f"more than {MAX_NODES} devicetree nodes: stopped")
                raise _incomplete(errors, first, count - 1)
            try:
                full_name, properties, grandchild, child = layouts.node.read(mem, addr)
            except FaultError as e:
                errors.append(f"devicetree node at {addr:#x} unreadable: {e}")
                break
            try:
                name = read_cstr(mem, full_name) or f"<unreadable@{addr:#x}>"
            except FaultError:
                name = f"<unreadable@{addr:#x}>"
            node = RawNode(
                name=name, props=_props(mem, layouts, addr, properties, errors), children=[]
            )
            raw.children.append(node)
            stack.append((grandchild, node))
    if len(errors) > first:
        raise _incomplete(errors, first, count)
    return out_root
