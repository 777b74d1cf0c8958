# SPDX-License-Identifier: GPL-2.0-or-later
"""
reserved_mem
------------

Read the kernel's ``reserved_mem`` array (drivers/of/of_reserved_mem.c) in all
three layouts found in the field, detected from the debug info:

- static array (<= 6.11): ``struct reserved_mem reserved_mem[MAX_RESERVED_REGIONS]``;
- dynamic array (6.12+, commit 00c9a452a235 "of: reserved_mem: Add code to
  dynamically allocate reserved_mem array"): ``struct reserved_mem *reserved_mem``
  pointing at a memblock allocation of ``total_reserved_mem_cnt`` entries, with
  the init-time ``reserved_mem_array[MAX_RESERVED_REGIONS] __initdata``;
- 7.x drops ``fdt_node`` from the struct and gives ``struct reserved_mem_ops``
  node_validate/node_fixup/node_init.

All globals are ``static`` and the name ``reserved_mem_count`` exists twice on
6.12+ (mm/memblock.c has its own, for reserve_mem=), so every lookup is
qualified with the file name.
"""

from __future__ import annotations

from drgn import FaultError, Object, Program

from rmem_inspect.collect.reading import (
    BlockCache,
    RawStruct,
    has_member,
    read_cstr,
    symbol_name,
)
from rmem_inspect.kernel.arch import kimage_to_phys, linear_to_phys
from rmem_inspect.kernel.layouts import LAYOUT_RECORDS, Layout, detect_layout
from rmem_inspect.model import ReservedMemState, RmemEntry

__all__ = [
    "ENTRY_READ_CAP",
    "NoReservedMem",
    "for_each_reserved_mem",
    "kernel_maps",
    "read_reserved_mem",
    "reserved_mem_variable",
]

FILE = "of_reserved_mem.c"
#: Never read more entries than this, whatever count the kernel claims.
ENTRY_READ_CAP = 65536


class NoReservedMem(LookupError):
    """The kernel has no reserved_mem (CONFIG_OF_RESERVED_MEM is off)."""


def reserved_mem_variable(prog: Program, name: str) -> Object:
    """A static variable of of_reserved_mem.c, looked up with its file name."""
    return prog.variable(name, FILE)


def for_each_reserved_mem(prog: Program) -> list[Object]:
    """The ``struct reserved_mem`` objects in use (bounded by capacity and a hard cap)."""
    state = read_reserved_mem(prog)
    tp = prog.type("struct reserved_mem")
    return [Object(prog, tp, address=e.address) for e in state.entries]


def read_reserved_mem(prog: Program) -> ReservedMemState:
    """Read the array, its count and capacity, and the dynamic-array evidence.

    :raises NoReservedMem: the kernel was built without CONFIG_OF_RESERVED_MEM.
    """
    try:
        rm = reserved_mem_variable(prog, "reserved_mem")
    except LookupError as e:
        raise NoReservedMem(str(e)) from e
    entry_type = prog.type("struct reserved_mem")
    entry_size = entry_type.size or 0
    ops_type = prog.type("struct reserved_mem_ops")
    # the generation, from reserved_mem's type and the ops' members (kernel/layouts.py)
    record = LAYOUT_RECORDS[
        detect_layout(
            dynamic_array=rm.type_.kind.name != "ARRAY",
            node_hooks=has_member(ops_type, "node_init"),
        )
    ]
    ops_layout = record.ops_layout.value
    errors: list[str] = []

    count: int | None
    try:
        count = reserved_mem_variable(prog, "reserved_mem_count").value_()
    except (LookupError, FaultError) as e:
        errors.append(f"reserved_mem_count unreadable: {e}")
        count = None

    if record.array is Layout.STATIC_ARRAY:
        max_regions = rm.type_.length or 0
        state = ReservedMemState(
            layout=Layout.STATIC_ARRAY.value,
            ops_layout=ops_layout,
            count=count,
            capacity=max_regions,
            max_regions=max_regions,
            array_address=rm.address_ or 0,
            entry_size=entry_size,
        )
    else:
        state = _read_dynamic(prog, rm, ops_layout, count, entry_size, errors)
    state.errors = errors
    state.entries = _read_entries(prog, state)
    return state


def _read_dynamic(
    prog: Program,
    rm: Object,
    ops_layout: str,
    count: int | None,
    entry_size: int,
    errors: list[str],
) -> ReservedMemState:
    try:
        array_address = rm.value_()
    except FaultError as e:
        errors.append(f"reserved_mem pointer unreadable: {e}")
        array_address = 0
    capacity: int | None
    try:
        capacity = reserved_mem_variable(prog, "total_reserved_mem_cnt").value_()
    except (LookupError, FaultError) as e:
        errors.append(f"total_reserved_mem_cnt unreadable: {e}")
        capacity = None
    init_addr: int | None = None
    max_regions = 64
    try:
        ra = reserved_mem_variable(prog, "reserved_mem_array")
        init_addr = ra.address_
        max_regions = ra.type_.length or max_regions
    except LookupError:
        errors.append("reserved_mem_array (the init-time array) not found in the debug info")
    state = ReservedMemState(
        layout=Layout.DYNAMIC_ARRAY.value,
        ops_layout=ops_layout,
        count=count,
        capacity=capacity,
        max_regions=max_regions,
        array_address=array_address,
        entry_size=entry_size,
        init_array_address=init_addr,
        init_array_bytes=max_regions * entry_size,
    )
    if init_addr is not None:
        _init_array_evidence(prog, state)
    if array_address:
        try:
            from drgn.helpers.linux.mm import virt_to_phys

            state.array_phys = virt_to_phys(Object(prog, "void *", array_address)).value_()
        except NotImplementedError:
            # drgn has no translation for this architecture: that is no fault of the
            # kernel's. The array is memblock_alloc()ed, so it lies in the linear map.
            try:
                state.array_phys = linear_to_phys(prog, array_address)
            except (LookupError, FaultError):
                pass  # unknown placement: the check that needs it is skipped
        except (FaultError, LookupError, ValueError) as e:
            errors.append(f"cannot translate reserved_mem {array_address:#x} to physical: {e}")
    return state


def kernel_maps(prog: Program, addr: int) -> bool | None:
    """Whether the kernel's own page tables (``init_mm``) map ``addr``; None if they
    cannot be walked.

    Not whether the dump happens to hold bytes at ``addr``: kexec-tools puts a PT_LOAD
    for the whole kernel image (``_text`` to ``_end``) into the elfcorehdr
    (kexec/arch/arm64/crashdump-arm64.c), so on an ELF kdump dump the init section
    that free_initmem() unmapped (arch/arm64/mm/init.c: ``vunmap_range(__init_begin,
    __init_end)``) still reads back. drgn's follow_phys()
    walks the tables themselves, as the MMU would.
    """
    try:
        from drgn.helpers.linux.mm import follow_phys

        follow_phys(prog["init_mm"].address_of_(), addr)
    except FaultError:
        return False
    except (ImportError, LookupError, ValueError, NotImplementedError):
        return None
    return True


def _init_array_evidence(prog: Program, state: ReservedMemState) -> None:
    """Is the init array in the freed init section, unmapped, its pages given back?"""
    assert state.init_array_address is not None
    addr = state.init_array_address
    state.points_to_init_array = state.array_address == addr
    try:
        begin = prog.symbol("__init_begin").address
        end = prog.symbol("__init_end").address
        state.init_section = (begin, end)
        state.init_array_in_init_section = begin <= addr < end
    except LookupError:
        pass
    state.init_array_readable = kernel_maps(prog, addr)
    # Page frames behind the array: PG_reserved is set on every memblock-reserved
    # page at boot and cleared when free_initmem() hands init pages back.
    try:
        from drgn.helpers.linux.mm import pfn_to_page

        page_size = prog["PAGE_SIZE"].value_()
        # __pa_symbol(): each architecture records its own kernel-image offset
        phys = kimage_to_phys(prog, addr)
    except (LookupError, FaultError, ImportError) as e:
        state.init_array_page_evidence.append(f"cannot locate the init array's pages: {e}")
        return
    first = phys // page_size
    last = (phys + max(state.init_array_bytes, 1) - 1) // page_size
    state.init_array_pages = last - first + 1
    freed = 0
    for pfn in range(first, last + 1):
        try:
            page = pfn_to_page(prog, pfn)
            flags = page.flags
            if has_member(flags, "f"):  # memdesc_flags_t (7.x): drgn <= 0.0.31 cannot "&" it
                flags = flags.f
            reserved = bool(flags.value_() & (1 << prog.constant("PG_reserved").value_()))
            refcount = page._refcount.counter.value_()
        except (FaultError, LookupError) as e:
            state.init_array_page_evidence.append(f"pfn {pfn:#x}: page struct unreadable ({e})")
            state.init_array_pages_freed = None
            return
        if not reserved:
            freed += 1
        state.init_array_page_evidence.append(
            f"pfn {pfn:#x} (phys {pfn * page_size:#x}): PG_reserved={int(reserved)} "
            f"_refcount={refcount}"
        )
    state.init_array_pages_freed = freed


def _read_entries(prog: Program, state: ReservedMemState) -> list[RmemEntry]:
    n = state.count if state.count is not None else 0
    limit = min(max(n, 0), ENTRY_READ_CAP)
    if state.capacity is not None and 0 <= state.capacity:
        limit = min(limit, state.capacity)
    if state.layout == Layout.STATIC_ARRAY:
        limit = min(limit, state.max_regions)
    if not state.array_address:
        return []
    tp = prog.type("struct reserved_mem")
    members = ["name", "base", "size", "ops", "priv"]
    # fdt_node went away in 7.x; phandle is there on every series we know, probe both
    optional = [m for m in ("fdt_node", "phandle") if has_member(tp, m)]
    layout = RawStruct(prog, "struct reserved_mem", members + optional)
    ops_names: dict[int, str | None] = {}  # a 1,000-entry array names a handful of ops
    mem = BlockCache(prog)  # the array is contiguous and the names are in the FDT blob
    entries = []
    for i in range(limit):
        address = state.array_address + i * state.entry_size
        try:
            values = layout.read(mem, address)
        except FaultError as e:
            entries.append(
                RmemEntry(index=i, address=address, name=None, base=0, size=0, error=str(e))
            )
            continue
        name_ptr, base, size, ops_address, priv = values[:5]
        extra = dict(zip(optional, values[5:], strict=True))
        name = read_cstr(mem, name_ptr)
        if ops_address not in ops_names:
            ops_names[ops_address] = symbol_name(prog, ops_address)
        entries.append(
            RmemEntry(
                index=i,
                address=address,
                name=name,
                base=base,
                size=size,
                ops=ops_names[ops_address],
                ops_address=ops_address,
                fdt_node=extra.get("fdt_node"),
                phandle=extra.get("phandle"),
                priv=priv,
                error=(
                    f"name pointer {name_ptr:#x} unreadable" if name is None and name_ptr else None
                ),
            )
        )
    return entries
