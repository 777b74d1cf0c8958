# SPDX-License-Identifier: GPL-2.0-or-later
"""
Snapshot model
--------------

Plain dataclasses holding everything the collectors read from a kernel. A
:class:`Snapshot` is JSON-serialisable (:meth:`Snapshot.to_json`) and loads
back (:meth:`Snapshot.from_json`); the checks run on a snapshot alone and never
touch drgn. ``None`` in a field means "this source was not read" (the reason is
in :attr:`Snapshot.missing`), as opposed to an empty list, which means "read,
and empty".
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "SCHEMA_VERSION",
    "AssignedDevice",
    "CmaArea",
    "Consumer",
    "DeviceMemory",
    "DtInfo",
    "DtRegion",
    "KernelInfo",
    "LinearMapCheck",
    "LogLine",
    "MemblockRegion",
    "MemblockState",
    "ReservedMemState",
    "RmemEntry",
    "RmemHandler",
    "Snapshot",
    "SnapshotError",
]

#: Bump on incompatible changes; :meth:`Snapshot.from_json` refuses other versions.
SCHEMA_VERSION = 1


class SnapshotError(ValueError):
    """A snapshot file that is not valid JSON of this schema."""


@dataclass
class RmemHandler:
    """One entry of the kernel's ``__reservedmem_of_table`` (a RESERVEDMEM_OF_DECLARE())."""

    #: The entry's symbol without ``__of_table_`` (the macro's first argument).
    name: str | None
    #: ``.compatible``; None when only the symbol was read (kallsyms).
    compatible: str | None
    #: What ``.data`` points at (init function up to 7.0, ops struct from 7.1 on).
    data: str | None = None


@dataclass
class KernelInfo:
    release: str
    arch: str
    page_size: int = 4096
    build_id: str | None = None
    #: drgn version that read the snapshot (empty for non-drgn sources).
    drgn_version: str = ""
    #: The kernel command line (``saved_command_line``, /proc/cmdline); None: not read.
    cmdline: str | None = None
    #: Kernel options this tool probed and found off (``CONFIG_CMA``: no ``cma_areas``).
    features_missing: list[str] = field(default_factory=list)
    #: The kernel's reserved-memory handlers (``__reservedmem_of_table``); None: not read.
    #: Where they were read: ``Snapshot.source["rmem_handlers"]``.
    rmem_handlers: list[RmemHandler] | None = None


@dataclass(slots=True)
class RmemEntry:
    """One ``struct reserved_mem`` entry of the kernel's ``reserved_mem`` array."""

    index: int
    #: Address of the struct in the kernel.
    address: int
    name: str | None
    base: int
    size: int
    #: Symbol the ``ops`` pointer resolves to (``rmem_cma_ops``), None when NULL.
    ops: str | None = None
    ops_address: int = 0
    #: Offset of the node in the FDT blob (``fdt_node``, up to 6.12), if present.
    fdt_node: int | None = None
    #: ``phandle`` member (up to 6.11), if present.
    phandle: int | None = None
    priv: int = 0
    #: Why this entry could not be read completely, if it could not.
    error: str | None = None


@dataclass
class ReservedMemState:
    """The ``reserved_mem`` array of drivers/of/of_reserved_mem.c."""

    #: ``static-array`` (<= 6.11) or ``dynamic-array`` (6.12+, commit 00c9a452a235
    #: "of: reserved_mem: Add code to dynamically allocate reserved_mem array").
    layout: str
    #: ``device`` (ops = device_init/device_release) or ``node`` (7.x adds
    #: node_validate/node_fixup/node_init).
    ops_layout: str
    #: ``reserved_mem_count`` (of_reserved_mem.c); None when unreadable.
    count: int | None
    #: Entries the array can hold: 64 for the static array, ``total_reserved_mem_cnt``
    #: for the dynamic one.
    capacity: int | None
    #: MAX_RESERVED_REGIONS, the length of the static (or init-time) array.
    max_regions: int
    #: Where ``reserved_mem`` points (the static array itself for static-array kernels).
    array_address: int
    entry_size: int
    #: ``reserved_mem_array`` (the __initdata array), dynamic kernels only.
    init_array_address: int | None = None
    init_array_bytes: int = 0
    points_to_init_array: bool | None = None
    #: [__init_begin, __init_end) of the kernel image.
    init_section: tuple[int, int] | None = None
    init_array_in_init_section: bool | None = None
    #: Could the init array's memory be read from the dump/kernel at all?
    init_array_readable: bool | None = None
    #: Pages of the init array that are back in the page allocator / total pages.
    init_array_pages_freed: int | None = None
    init_array_pages: int = 0
    #: How the init array's page frames were judged (evidence).
    init_array_page_evidence: list[str] = field(default_factory=list)
    #: The memblock.reserved range (base, size) that contains the dynamic array.
    array_reserved_range: tuple[int, int] | None = None
    #: Physical address of the dynamic array.
    array_phys: int | None = None
    entries: list[RmemEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: When every error above is data the dump does not hold (a page makedumpfile
    #: excluded, an address no bank or segment covers): what is not in it.
    not_in_dump: str | None = None


@dataclass(slots=True)
class MemblockRegion:
    base: int
    size: int
    flags: int = 0
    flag_names: list[str] = field(default_factory=list)
    nid: int | None = None


@dataclass
class MemblockState:
    #: False when the architecture freed the memblock arrays after boot.
    available: bool
    memory: list[MemblockRegion] = field(default_factory=list)
    reserved: list[MemblockRegion] = field(default_factory=list)
    #: ``enum memblock_flags`` as read from the debug info (name -> value).
    flag_values: dict[str, int] = field(default_factory=dict)
    note: str | None = None


@dataclass(slots=True)
class DtRegion:
    """A child of /reserved-memory, decoded with the parent's cell sizes."""

    path: str
    #: Node name with unit address; the kernel uses it as ``reserved_mem.name``.
    name: str
    #: Position among the /reserved-memory children (the kernel's scan order).
    index: int
    status: str = "okay"
    reg: list[tuple[int, int]] = field(default_factory=list)
    size: int | None = None
    alignment: int | None = None
    alloc_ranges: list[tuple[int, int]] = field(default_factory=list)
    compatible: list[str] = field(default_factory=list)
    nomap: bool = False
    reusable: bool = False
    cma_default: bool = False
    phandle: int | None = None
    #: Property problems found while decoding (the kernel rejects such nodes).
    invalid: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``static`` (has reg), ``dynamic`` (has size) or ``invalid``."""
        if self.reg:
            return "static"
        if self.size is not None:
            return "dynamic"
        return "invalid"

    @property
    def available(self) -> bool:
        """The kernel's of_fdt_device_is_available(): status absent, "okay" or "ok"."""
        return self.status in ("okay", "ok")


@dataclass
class Consumer:
    """A node anywhere in the tree with a ``memory-region`` property."""

    path: str
    compatible: list[str] = field(default_factory=list)
    status: str = "okay"
    phandles: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    #: Path of the node each phandle resolves to (None: dangling phandle).
    targets: list[str | None] = field(default_factory=list)


@dataclass
class DtInfo:
    """What one devicetree source (unflattened tree, FDT blob, sysfs) says."""

    #: ``of_root``, ``fdt`` (initial_boot_params) or ``sysfs``.
    source: str
    root_address_cells: int = 2
    root_size_cells: int = 1
    #: False: the tree has no /reserved-memory node.
    has_reserved_memory: bool = False
    #: #address-cells, #size-cells and ranges of /reserved-memory, as found.
    reserved_memory_address_cells: int | None = None
    reserved_memory_size_cells: int | None = None
    reserved_memory_has_ranges: bool = False
    regions: list[DtRegion] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    #: reg of the /memory nodes.
    memory: list[tuple[int, int]] = field(default_factory=list)
    #: /memreserve/ entries of the FDT header (base, size): memblock-reserved by
    #: early_init_fdt_scan_reserved_mem() (drivers/of/fdt.c), before the
    #: reserved-memory scan up to 6.11, after it from 6.12 on.
    mem_reserve: list[tuple[int, int]] = field(default_factory=list)
    #: Address of the blob (fdt) and its totalsize, for evidence.
    address: int | None = None
    total_size: int | None = None
    errors: list[str] = field(default_factory=list)


@dataclass
class CmaArea:
    name: str
    base: int
    size: int
    address: int = 0
    order_per_bit: int = 0
    #: Pages in use according to the area's bitmap (None: bitmap unreadable).
    used_pages: int | None = None
    is_default: bool = False


@dataclass
class AssignedDevice:
    """An entry of ``of_rmem_assigned_device_list``."""

    device: str
    region: str | None
    region_base: int | None = None


@dataclass
class DeviceMemory:
    """A device with a per-device CMA area, coherent pool or restricted swiotlb."""

    device: str
    of_node: str | None = None
    cma_area: str | None = None
    dma_mem: tuple[int, int] | None = None
    swiotlb: tuple[int, int] | None = None


@dataclass(slots=True)
class LogLine:
    text: str
    timestamp: float | None = None
    #: Name of the region the line speaks of, when it names one.
    region: str | None = None


@dataclass
class LinearMapCheck:
    """Result of walking the kernel page tables over a no-map region's linear-map range."""

    region: str
    base: int
    size: int
    virt: int
    checked_pages: int
    mapped_pages: int
    first_mapped: int | None = None
    error: str | None = None


@dataclass
class Snapshot:
    """Everything read from one kernel, the input of the checks."""

    kernel: KernelInfo
    #: ``vmcore``, ``live``, ``qemu`` or ``sysfs``; with path and vmlinux.
    source: dict[str, Any] = field(default_factory=dict)
    reserved_mem: ReservedMemState | None = None
    memblock: MemblockState | None = None
    dt: DtInfo | None = None
    fdt: DtInfo | None = None
    cma: list[CmaArea] | None = None
    assigned: list[AssignedDevice] | None = None
    devices: list[DeviceMemory] | None = None
    log: list[LogLine] | None = None
    linear_map: list[LinearMapCheck] | None = None
    #: Source name -> why it was not read.
    missing: dict[str, str] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    tool_version: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _to_json(self)
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, data: Any) -> Snapshot:
        if not isinstance(data, dict):
            raise SnapshotError("snapshot is not a JSON object")
        schema = data.get("schema")
        if schema != SCHEMA_VERSION:
            raise SnapshotError(f"snapshot schema {schema!r}, this tool reads {SCHEMA_VERSION}")
        return _from_json(cls, data, "snapshot")

    @classmethod
    def loads(cls, text: str) -> Snapshot:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise SnapshotError(f"not JSON: {e}") from e
        return cls.from_json(data)


def _to_json(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [_to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _to_json(v) for k, v in obj.items()}
    return obj


T = TypeVar("T")
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _from_json(tp: Any, value: Any, where: str) -> Any:
    """Rebuild ``value`` as type ``tp``, checking shapes; SnapshotError on mismatch."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _from_json(a, value, where)
            except SnapshotError as e:
                errors.append(str(e))
        raise SnapshotError(errors[0] if errors else f"{where}: unexpected null")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise SnapshotError(f"{where}: expected an object")
        hints = _hints(tp)
        kwargs = {}
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(value) - names
        if unknown:
            raise SnapshotError(f"{where}: unknown keys {sorted(unknown)}")
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _from_json(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SnapshotError(f"{where}: missing key {f.name!r}")
        return tp(**kwargs)
    if origin is list:
        if not isinstance(value, list):
            raise SnapshotError(f"{where}: expected a list")
        return [_from_json(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list) or len(value) != len(args):
            raise SnapshotError(f"{where}: expected a list of {len(args)}")
        return tuple(
            _from_json(a, v, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise SnapshotError(f"{where}: expected an object")
        return {k: _from_json(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise SnapshotError(f"{where}: expected true/false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SnapshotError(f"{where}: expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SnapshotError(f"{where}: expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SnapshotError(f"{where}: expected a string")
        return value
    raise SnapshotError(f"{where}: unsupported type {tp!r}")
