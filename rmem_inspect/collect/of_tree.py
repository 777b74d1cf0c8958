# SPDX-License-Identifier: GPL-2.0-or-later
"""
of_tree
-------

Convert the kernel's unflattened devicetree (``of_root``, ``struct
device_node``) into :class:`~rmem_inspect.collect.devicetree.RawNode` trees,
the same shape the FDT reader produces, so one decoder serves both. The walk is
iterative and bounded: a corrupt sibling/child/property chain cannot loop, and a
tree that could not be read completely (faults, absurd lengths, cycles, caps hit)
raises :class:`OfTreeUnreadable` instead of passing for the kernel's tree.
"""

from __future__ import annotations

from drgn import FaultError, Object, Program

from rmem_inspect.collect._util import read_cstr
from rmem_inspect.collect.devicetree import RawNode

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


def _props(prog: Program, np: Object, errors: list[str]) -> dict[str, bytes]:
    props: dict[str, bytes] = {}
    try:
        pp = np.properties.read_()
    except FaultError as e:
        errors.append(f"properties of node at {np.value_():#x} unreadable: {e}")
        return props
    seen = 0
    while pp.value_() and seen < MAX_PROPS:
        seen += 1
        try:
            name = read_cstr(prog, pp.name.value_()) or f"<unreadable@{pp.name.value_():#x}>"
            length = pp.length.value_()
            if length < 0 or length > MAX_PROP_LEN:
                errors.append(f"property {name}: absurd length {length}")
                value = b""
            else:
                value = prog.read(pp.value.value_(), length) if length else b""
            props[name] = value
            pp = pp.next.read_()
        except FaultError as e:
            errors.append(f"property at {pp.value_():#x} unreadable: {e}")
            break
    if seen >= MAX_PROPS:
        errors.append(f"node at {np.value_():#x}: more than {MAX_PROPS} properties, stopped")
    return props


def read_of_tree(prog: Program, errors: list[str]) -> RawNode | None:
    """The unflattened tree from ``of_root`` (None when the kernel has no tree).

    :raises OfTreeUnreadable: a node, property or link faulted or was absurd; the
        problems are also appended to ``errors``.
    """
    try:
        root = prog["of_root"].read_()
    except (LookupError, FaultError) as e:
        errors.append(f"of_root unreadable: {e}")
        return None
    if not root.value_():
        return None
    first = len(errors)
    out_root = RawNode(name="", props=_props(prog, root, errors), children=[])
    # (kernel node, its RawNode): walk children iteratively.
    stack: list[tuple[Object, RawNode]] = [(root, out_root)]
    visited = {root.value_()}
    count = 1
    while stack:
        np, raw = stack.pop()
        try:
            child = np.child.read_()
        except FaultError as e:
            errors.append(f"children of node at {np.value_():#x} unreadable: {e}")
            continue
        while child.value_():
            addr = child.value_()
            if addr in visited:
                errors.append(f"devicetree node {addr:#x} reached twice: corrupt tree")
                break
            visited.add(addr)
            count += 1
            if count > MAX_NODES:
                errors.append(f"more than {MAX_NODES} devicetree nodes: stopped")
                raise _incomplete(errors, first, count - 1)
            try:
                name = read_cstr(prog, child.full_name.value_()) or f"<unreadable@{addr:#x}>"
            except FaultError:
                name = f"<unreadable@{addr:#x}>"
            node = RawNode(name=name, props=_props(prog, child, errors), children=[])
            raw.children.append(node)
            stack.append((child, node))
            try:
                child = child.sibling.read_()
            except FaultError as e:
                errors.append(f"sibling of node at {addr:#x} unreadable: {e}")
                break
    if len(errors) > first:
        raise _incomplete(errors, first, count)
    return out_root
