# SPDX-License-Identifier: GPL-2.0-or-later
"""
cma
---

CMA areas (``cma_areas[cma_area_count]``, mm/cma.c), the default area
(``dma_contiguous_default_area``), devices bound to carveouts
(``of_rmem_assigned_device_list``) and per-device memory (``dev->cma_area``,
``dev->dma_mem``, ``dev->dma_io_tlb_mem``).

``struct cma`` changed in 6.15 (commit c009da4258f9 "mm, cma: support multiple
contiguous ranges, if requested"): base_pfn/bitmap moved into ``ranges[]``;
both shapes are probed.
"""

from __future__ import annotations

from drgn import FaultError, Object, Program, cast, container_of

from rmem_inspect.collect.reading import has_member, read_cstr
from rmem_inspect.model import AssignedDevice, CmaArea, DeviceMemory

__all__ = [
    "MAX_DEVICES",
    "for_each_device",
    "read_assigned_devices",
    "read_cma_areas",
    "read_device_memory",
]

MAX_DEVICES = 100_000
MAX_BITMAP_BYTES = 16 << 20


def _popcount_bitmap(prog: Program, address: int, nbits: int) -> int | None:
    nbytes = (nbits + 7) // 8
    if not address or nbytes > MAX_BITMAP_BYTES:
        return None
    try:
        data = prog.read(address, nbytes)
    except FaultError:
        return None
    total = int.from_bytes(data, "little")
    if nbits % 8:
        total &= (1 << nbits) - 1
    return total.bit_count()


def read_cma_areas(prog: Program, errors: list[str]) -> list[CmaArea]:
    """Every CMA area, with pages in use from its bitmap(s)."""
    try:
        areas = prog["cma_areas"]
    except LookupError:
        # mm/cma.c is built only with CONFIG_CMA: no cma_areas, no CMA areas at all
        # (inspect() records the missing feature; checks name it as the root cause).
        return []
    try:
        count = prog["cma_area_count"].value_()
    except (LookupError, FaultError) as e:
        errors.append(f"cma_areas unreadable: {e}")
        return []
    length = areas.type_.length or 0
    if count > length:
        errors.append(f"cma_area_count {count} exceeds cma_areas[{length}]")
        count = length
    try:
        default = prog["dma_contiguous_default_area"].value_()
    except (LookupError, FaultError):
        default = 0
    page_size = prog["PAGE_SIZE"].value_()
    multi = has_member(areas[0], "ranges")
    out: list[CmaArea] = []
    for i in range(count):
        cma = areas[i]
        try:
            name = cma.name.string_().decode(errors="replace")
            order = cma.order_per_bit.value_()
            pages = cma.count.value_()
            used: int | None = 0
            if multi:
                nranges = min(cma.nranges.value_(), cma.ranges.type_.length or 0)
                ranges = [cma.ranges[j] for j in range(nranges)]
                base_pfn = min((r.base_pfn.value_() for r in ranges), default=0)
            else:
                ranges = [cma]
                base_pfn = cma.base_pfn.value_()
            for r in ranges:
                n = _popcount_bitmap(prog, r.bitmap.value_(), r.count.value_() >> order)
                used = None if n is None or used is None else used + (n << order)
        except FaultError as e:
            errors.append(f"cma_areas[{i}] unreadable: {e}")
            continue
        out.append(
            CmaArea(
                name=name,
                base=base_pfn * page_size,
                size=pages * page_size,
                address=cma.address_ or 0,
                order_per_bit=order,
                used_pages=used,
                is_default=cma.address_ == default,
            )
        )
    return out


def for_each_device(prog: Program, errors: list[str]) -> list[Object]:
    """Every ``struct device *`` registered (devices_kset), bounded."""
    try:
        head = prog["devices_kset"].list.address_of_()
    except (LookupError, FaultError) as e:
        errors.append(f"devices_kset unreadable: {e}")
        return []
    out: list[Object] = []
    try:
        pos = head.next.read_()
        while pos.value_() != head.value_():
            if len(out) >= MAX_DEVICES:
                errors.append(f"more than {MAX_DEVICES} devices: stopped")
                break
            kobj = container_of(pos, "struct kobject", "entry")
            out.append(container_of(kobj, "struct device", "kobj"))
            pos = pos.next.read_()
    except FaultError as e:
        errors.append(f"device list unreadable: {e}")
    return out


def _dev_name(prog: Program, dev: Object) -> str:
    for ptr in (dev.init_name, dev.kobj.name):
        try:
            name = read_cstr(prog, ptr.value_())
        except FaultError:
            name = None
        if name:
            return name
    return f"device@{dev.value_():#x}"


def _of_node_path(prog: Program, dev: Object) -> str | None:
    parts = []
    try:
        np = dev.of_node.read_()
        for _ in range(64):
            if not np.value_() or not np.parent.value_():
                break
            parts.append(read_cstr(prog, np.full_name.value_()) or "?")
            np = np.parent.read_()
    except FaultError:
        return None
    if not parts and not dev.of_node.value_():
        return None
    return "/" + "/".join(reversed(parts))


def read_assigned_devices(prog: Program, errors: list[str]) -> list[AssignedDevice]:
    """``of_rmem_assigned_device_list``: devices that of_reserved_mem_device_init() bound."""
    try:
        head = prog.variable("of_rmem_assigned_device_list", "of_reserved_mem.c").address_of_()
    except LookupError as e:
        errors.append(f"of_rmem_assigned_device_list not found: {e}")
        return []
    out: list[AssignedDevice] = []
    try:
        pos = head.next.read_()
        for _ in range(MAX_DEVICES):
            if pos.value_() == head.value_():
                break
            rd = container_of(pos, "struct rmem_assigned_device", "list")
            rmem = rd.rmem.read_()
            out.append(
                AssignedDevice(
                    device=_dev_name(prog, rd.dev.read_()),
                    region=read_cstr(prog, rmem.name.value_()) if rmem.value_() else None,
                    region_base=rmem.base.value_() if rmem.value_() else None,
                )
            )
            pos = pos.next.read_()
    except FaultError as e:
        errors.append(f"of_rmem_assigned_device_list unreadable: {e}")
    return out


def read_device_memory(prog: Program, cma: list[CmaArea], errors: list[str]) -> list[DeviceMemory]:
    """Devices with their own CMA area, coherent pool or restricted swiotlb."""
    by_addr = {a.address: a.name for a in cma}
    page_size = prog["PAGE_SIZE"].value_()
    out: list[DeviceMemory] = []
    devs = for_each_device(prog, errors)
    if not devs:
        return out
    has_cma = has_member(devs[0], "cma_area")
    has_dma_mem = has_member(devs[0], "dma_mem")
    has_tlb = has_member(devs[0], "dma_io_tlb_mem")
    try:
        default_tlb = prog["io_tlb_default_mem"].address_ if has_tlb else None
    except LookupError:
        default_tlb = None
    for dev in devs:
        try:
            cma_addr = dev.cma_area.value_() if has_cma else 0
            dma_mem = dev.dma_mem.read_() if has_dma_mem else None
            tlb = dev.dma_io_tlb_mem.value_() if has_tlb else 0
            pool = None
            if dma_mem is not None and dma_mem.value_():
                mem = dma_mem[0]
                pool = (mem.pfn_base.value_() * page_size, mem.size.value_() * page_size)
            swiotlb = None
            if tlb and tlb != default_tlb:
                t = cast("struct io_tlb_mem *", tlb)[0]
                swiotlb = (
                    t.defpool.start.value_(),
                    t.defpool.end.value_() - t.defpool.start.value_(),
                )
        except (FaultError, LookupError, AttributeError) as e:
            errors.append(f"device at {dev.value_():#x} unreadable: {e}")
            continue
        if not (cma_addr or pool or swiotlb):
            continue
        out.append(
            DeviceMemory(
                device=_dev_name(prog, dev),
                of_node=_of_node_path(prog, dev),
                cma_area=by_addr.get(cma_addr, f"cma@{cma_addr:#x}") if cma_addr else None,
                dma_mem=pool,
                swiotlb=swiotlb,
            )
        )
    return out
