# SPDX-License-Identifier: GPL-2.0-or-later
"""
kernel_btf
----------

Read a kernel without its vmlinux: symbol addresses from the kernel's own
kallsyms (:mod:`rmem_inspect.collect.kallsyms_finder`: the tables
located through VMCOREINFO in a dump, /proc/kallsyms live) and type layouts from
its BTF (``__start_BTF``..``__stop_BTF`` in the image, /sys/kernel/btf/vmlinux
live), read by :mod:`rmem_inspect.formats.btf`.

BTF describes types, not variables (only per-CPU ones), so the collectors'
globals are declared here with their C types as the kernel source declares them
(:data:`DECLARATIONS`), and an object finder gives drgn ``Object(prog, type,
address=symbol)`` for them: the collectors keep using ``prog["x"]`` and
``prog.variable("x", "file.c")`` unchanged.

Two statics share a name: ``reserved_mem_count`` of drivers/of/of_reserved_mem.c
and of mm/memblock.c (6.12+, reserve_mem=). kallsyms has no file names, but its
order is the link order, so the symbols next to each candidate tell which object
file it belongs to; :func:`disambiguate` decides from them and keeps the
evidence for the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import drgn
from drgn import (
    FindObjectFlags,
    Object,
    Program,
    Qualifiers,
    Type,
    TypeEnumerator,
    TypeKind,
    TypeMember,
    TypeParameter,
)

from rmem_inspect.formats import btf as fmt
from rmem_inspect.formats.btf import Btf, BtfError

__all__ = [
    "CACHE_KEY",
    "DECLARATIONS",
    "BtfTypeBuilder",
    "Declaration",
    "KernelSymbols",
    "btf_blob_from_image",
    "disambiguate",
    "install",
]

#: Where the install() summary is kept in ``prog.cache``.
CACHE_KEY = "rmem_inspect.btf"
#: MAX_RESERVED_REGIONS (drivers/of/of_reserved_mem.c, 6.1 through 7.3).
MAX_RESERVED_REGIONS = 64


@dataclass(frozen=True)
class Declaration:
    """A global's C declaration: its source file and type (``[]``: length from kallsyms)."""

    file: str
    ctype: str


#: The globals the collectors and drgn's helpers read, declared as in the kernel source.
DECLARATIONS: dict[str, Declaration] = {
    # init/version.c, init/main.c (drgn's virt_to_phys() reads saved_command_line)
    "init_uts_ns": Declaration("init/version.c", "struct uts_namespace"),
    "saved_command_line": Declaration("init/main.c", "char *"),
    # drivers/of/fdt.c, drivers/of/base.c
    "initial_boot_params": Declaration("drivers/of/fdt.c", "void *"),
    "of_root": Declaration("drivers/of/base.c", "struct device_node *"),
    # drivers/of/of_reserved_mem.c (6.12+: reserved_mem is a pointer, see install())
    "reserved_mem_array": Declaration(
        "drivers/of/of_reserved_mem.c", f"struct reserved_mem [{MAX_RESERVED_REGIONS}]"
    ),
    "total_reserved_mem_cnt": Declaration("drivers/of/of_reserved_mem.c", "int"),
    "reserved_mem_count": Declaration("drivers/of/of_reserved_mem.c", "int"),
    "of_rmem_assigned_device_list": Declaration("drivers/of/of_reserved_mem.c", "struct list_head"),
    # mm/memblock.c
    "memblock": Declaration("mm/memblock.c", "struct memblock"),
    "memblock_memory": Declaration("mm/memblock.c", "struct memblock_type *"),
    # mm/cma.c: struct cma cma_areas[MAX_CMA_AREAS]; unsigned cma_area_count;
    "cma_areas": Declaration("mm/cma.c", "struct cma []"),
    "cma_area_count": Declaration("mm/cma.c", "unsigned int"),
    # kernel/dma/contiguous.c, kernel/dma/swiotlb.c
    "dma_contiguous_default_area": Declaration("kernel/dma/contiguous.c", "struct cma *"),
    "io_tlb_default_mem": Declaration("kernel/dma/swiotlb.c", "struct io_tlb_mem"),
    # drivers/base/core.c
    "devices_kset": Declaration("drivers/base/core.c", "struct kset *"),
    # kernel/printk/printk.c
    "prb": Declaration("kernel/printk/printk.c", "struct printk_ringbuffer *"),
    # mm/init-mm.c, arch/arm64/mm/mmu.c
    "init_mm": Declaration("mm/init-mm.c", "struct mm_struct"),
    "kimage_voffset": Declaration("arch/arm64/mm/mmu.c", "u64"),
    "memstart_addr": Declaration("arch/arm64/mm/init.c", "s64"),
    "vabits_actual": Declaration("arch/arm64/mm/init.c", "u64"),
    # mm/sparse.c (CONFIG_SPARSEMEM_EXTREME): drgn's vmemmap and pfn_to_page() use it
    "mem_section": Declaration("mm/sparse.c", "struct mem_section **"),
}
#: reserved_mem's declaration by layout (drivers/of/of_reserved_mem.c; 6.12 commit
#: 00c9a452a235 made it a pointer and added reserved_mem_array).
RESERVED_MEM_STATIC = f"struct reserved_mem [{MAX_RESERVED_REGIONS}]"
RESERVED_MEM_DYNAMIC = "struct reserved_mem *"

#: Names of symbols linked from each candidate object file, for the neighbour test:
#: drivers/of/ (base.c, fdt.c, of_reserved_mem.c link together) and mm/memblock.c.
_NEIGHBOURS = {
    "drivers/of/of_reserved_mem.c": ("of_",),
    "mm/memblock.c": ("memblock", "reserve_mem", "reserved_mem_table"),
}
#: How many symbols on each side of a candidate are looked at.
NEIGHBOUR_SPAN = 4


class BtfTypeBuilder:
    """drgn types built lazily from a :class:`Btf` (struct members on first use)."""

    def __init__(self, prog: Program, btf: Btf) -> None:
        self.prog = prog
        self.btf = btf
        self._types: dict[int, Type] = {}
        self._building: set[int] = set()
        self._found: dict[tuple[TypeKind, str], Type | None] = {}

    def type(self, tid: int) -> Type:
        """The drgn type of BTF type ``tid`` (0: void).

        :raises BtfError: invalid BTF, or a type-id loop not broken by a pointer
            or a struct member.
        """
        try:
            return self._types[tid]
        except KeyError:
            pass
        if tid in self._building:
            raise BtfError(f"BTF type {tid} refers to itself")
        self._building.add(tid)
        try:
            tp = self._build(tid)
        finally:
            self._building.discard(tid)
        self._types[tid] = tp
        return tp

    def _lazy(self, tid: int) -> Callable[[], Type]:
        return lambda: self.type(tid)

    def _lazy_member(self, tid: int, bit_size: int) -> Callable[[], Type | Object]:
        if not bit_size:
            return self._lazy(tid)
        # a bit field is given to drgn as an absent Object with bit_field_size
        return lambda: Object(self.prog, self.type(tid), bit_field_size=bit_size)

    def _build(self, tid: int) -> Type:
        prog = self.prog
        if tid == 0:
            return prog.void_type()
        t = self.btf.type(tid)
        kind = t.kind
        if kind == fmt.KIND_INT:
            if t.encoding & fmt.INT_BOOL:
                return prog.bool_type(t.name, t.size)
            return prog.int_type(t.name, t.size, bool(t.encoding & fmt.INT_SIGNED))
        if kind == fmt.KIND_FLOAT:
            return prog.float_type(t.name, t.size)
        if kind == fmt.KIND_PTR:
            return prog.pointer_type(self.type(t.ref), self.btf.pointer_size)
        if kind == fmt.KIND_ARRAY:
            # BTF writes a flexible array member (x[]) as 0 elements; the kernel has
            # replaced [0] arrays by flexible ones, so 0 is read as incomplete, as DWARF says
            return prog.array_type(self.type(t.ref), t.nelems or None)
        if kind in (fmt.KIND_STRUCT, fmt.KIND_UNION):
            members = [
                TypeMember(self._lazy_member(m.type_id, m.bit_size), m.name or None, m.bit_offset)
                for m in t.members
            ]
            make = prog.struct_type if kind == fmt.KIND_STRUCT else prog.union_type
            return make(t.name or None, t.size, members)
        if kind in (fmt.KIND_ENUM, fmt.KIND_ENUM64):
            signed = t.kind_flag or any(m.value < 0 for m in t.members)
            compat = prog.int_type("int" if signed else "unsigned int", t.size, signed)
            enumerators = [TypeEnumerator(m.name, m.value) for m in t.members]
            return prog.enum_type(t.name or None, compat, enumerators)
        if kind == fmt.KIND_FWD:
            return (prog.union_type if t.kind_flag else prog.struct_type)(t.name, None, None)
        if kind == fmt.KIND_TYPEDEF:
            return prog.typedef_type(t.name, self.type(t.ref))
        if kind in (fmt.KIND_CONST, fmt.KIND_VOLATILE, fmt.KIND_RESTRICT):
            flag = {
                fmt.KIND_CONST: Qualifiers.CONST,
                fmt.KIND_VOLATILE: Qualifiers.VOLATILE,
                fmt.KIND_RESTRICT: Qualifiers.RESTRICT,
            }[kind]
            inner = self.type(t.ref)
            return inner.qualified(inner.qualifiers | flag)
        if kind == fmt.KIND_TYPE_TAG:  # an annotation (__user, __rcu): transparent
            return self.type(t.ref)
        if kind == fmt.KIND_FUNC_PROTO:
            params = list(t.members)
            variadic = bool(params) and params[-1].type_id == 0
            if variadic:
                params.pop()
            return prog.function_type(
                self.type(t.ref),
                [TypeParameter(self._lazy(p.type_id), p.name or None) for p in params],
                variadic,
            )
        raise BtfError(f"BTF type {tid} is a {t.kind_name}, not a C type")

    def find(self, kind: TypeKind, name: str) -> Type | None:
        """The type ``name`` of drgn ``kind``, or None when BTF has none."""
        namespace = {
            TypeKind.STRUCT: "struct",
            TypeKind.UNION: "union",
            TypeKind.ENUM: "enum",
            TypeKind.TYPEDEF: "typedef",
            TypeKind.INT: "int",
            TypeKind.BOOL: "int",
            TypeKind.FLOAT: "float",
        }.get(kind)
        if namespace is None:
            return None
        key = (kind, name)
        if key in self._found:  # drgn asks again for every container_of() and cast
            return self._found[key]
        found = None
        for tid in self.btf.find(namespace, name):
            tp = self.type(tid)
            if tp.kind == kind:
                found = tp
                break
        self._found[key] = found
        return found


@dataclass
class KernelSymbols:
    """What :func:`install` set up, for the report header and the findings."""

    types: str = "btf"
    symbols: str = "kallsyms"
    #: Where the BTF blob was read (the image's section or /sys/kernel/btf/vmlinux).
    btf_source: str = ""
    btf_bytes: int = 0
    btf_types: int = 0
    #: name -> chosen address, for names kallsyms holds more than once.
    chosen: dict[str, int] = field(default_factory=dict)
    #: One sentence per decision, with the neighbouring symbols seen.
    evidence: list[str] = field(default_factory=list)


def _neighbours(prog: Program, sym: drgn.Symbol) -> list[str]:
    """Names of up to NEIGHBOUR_SPAN symbols before and after ``sym`` in address order."""
    out: list[str] = []
    at = sym.address
    for _ in range(NEIGHBOUR_SPAN):
        try:
            prev = prog.symbol(at - 1)
        except LookupError:
            break
        out.append(prev.name)
        at = prev.address
    at = sym.address + max(sym.size, 1)
    for _ in range(NEIGHBOUR_SPAN):
        try:
            nxt = prog.symbol(at)
        except LookupError:
            break
        out.append(nxt.name)
        at = nxt.address + max(nxt.size, 1)
    return out


def disambiguate(prog: Program, name: str, file: str) -> tuple[int, str]:
    """Address of the static ``name`` of ``file`` among same-named kallsyms symbols.

    kallsyms lists symbols in link order, so a static's neighbours are the other
    symbols of its object file or directory: the candidate with neighbours of
    ``file`` (and none of the other candidate files) wins.

    :returns: (address, one sentence of evidence)
    :raises LookupError: no candidate, or the neighbours do not decide.
    """
    syms = sorted(prog.symbols(name), key=lambda s: s.address)
    if not syms:
        raise LookupError(f"kallsyms has no symbol {name!r}")
    if len(syms) == 1:
        return syms[0].address, f"{name}: one symbol in kallsyms, at {syms[0].address:#x}"
    scored = []
    for s in syms:
        near = _neighbours(prog, s)
        score = {
            f: sum(1 for n in near if any(n.startswith(p) for p in prefixes))
            for f, prefixes in _NEIGHBOURS.items()
        }
        scored.append((s, near, score))
    mine = [
        (s, near, score)
        for s, near, score in scored
        if score.get(file, 0) > 0 and all(v == 0 for f, v in score.items() if f != file)
    ]
    described = "; ".join(f"{s.address:#x} beside {', '.join(near)}" for s, near, _ in scored)
    if len(mine) != 1:
        raise LookupError(
            f"kallsyms has {len(syms)} symbols {name!r} and their neighbours do not tell "
            f"which is {file}'s ({described})"
        )
    s = mine[0][0]
    return s.address, (
        f"{name}: kallsyms has {len(syms)}; {file}'s is the one at {s.address:#x}, whose "
        f"neighbours are {file}'s directory's symbols ({described})"
    )


def btf_blob_from_image(prog: Program) -> bytes:
    """The BTF blob between ``__start_BTF`` and ``__stop_BTF`` (kallsyms addresses).

    :raises LookupError: the symbols are missing (no CONFIG_DEBUG_INFO_BTF).
    :raises BtfError: the extent is absurd.
    :raises drgn.FaultError: the section is not in the dump.
    """
    start = prog.symbol("__start_BTF").address
    stop = prog.symbol("__stop_BTF").address
    if not 0 < stop - start <= fmt.MAX_BTF_SIZE:
        raise BtfError(f"__stop_BTF - __start_BTF is {stop - start} bytes")
    return prog.read(start, stop - start)


def _same_file(declared: str, asked: str | None) -> bool:
    if not asked:
        return True
    asked = asked.lstrip("./")
    return declared.endswith(asked) or os.path.basename(declared) == os.path.basename(asked)


def install(prog: Program, btf: Btf, info: KernelSymbols) -> None:
    """Register the BTF type finder and the declared-globals object finder on ``prog``.

    Expects kallsyms to be registered already. Records ``info`` in
    ``prog.cache[CACHE_KEY]``.
    """
    builder = BtfTypeBuilder(prog, btf)
    info.btf_types = btf.count
    declarations = dict(DECLARATIONS)
    # The layout decides reserved_mem's C type: reserved_mem_array exists only
    # with the dynamic array (drivers/of/of_reserved_mem.c, 6.12+).
    try:
        prog.symbol("reserved_mem_array")
        rm_type = RESERVED_MEM_DYNAMIC
        info.evidence.append(
            "reserved_mem is 'struct reserved_mem *': kallsyms has reserved_mem_array, which "
            "exists only with the dynamic array (of_reserved_mem.c since 6.12)"
        )
    except LookupError:
        rm_type = RESERVED_MEM_STATIC
        info.evidence.append(
            "reserved_mem is 'struct reserved_mem [64]': kallsyms has no reserved_mem_array"
        )
    declarations["reserved_mem"] = Declaration("drivers/of/of_reserved_mem.c", rm_type)
    addresses: dict[str, int] = {}
    for name, decl in declarations.items():
        if len(prog.symbols(name)) > 1:
            try:
                addresses[name], why = disambiguate(prog, name, decl.file)
                info.chosen[name] = addresses[name]
            except LookupError as e:
                why = str(e)
            info.evidence.append(why)

    def find_type(kind: TypeKind, name: str, filename: str | None) -> Type | None:
        # Invalid BTF raises BtfError (a ValueError), not LookupError: corrupt kernel
        # data must not read as "the kernel has no such type" (inspect() records it).
        return builder.find(kind, name)

    def find_object(
        prog: Program, name: str, flags: FindObjectFlags, filename: str | None
    ) -> Object | None:
        if flags & FindObjectFlags.CONSTANT:
            found = btf.find_enumerator(name)
            if found is not None:
                return Object(prog, builder.type(found[0]), found[1])
        if flags & FindObjectFlags.FUNCTION:
            # BTF has every function's prototype (BTF_KIND_FUNC); kallsyms its address
            syms = prog.symbols(name)
            funcs = btf.find("func", name)
            if len(syms) == 1 and funcs:
                proto = builder.type(btf.type(funcs[0]).ref)
                return Object(prog, proto, address=syms[0].address)
        if not flags & FindObjectFlags.VARIABLE:
            return None
        decl = declarations.get(name)
        if decl is None or not _same_file(decl.file, filename):
            return None
        address = addresses.get(name)
        sym = None
        if address is None:
            syms = prog.symbols(name)
            if len(syms) != 1:
                return None
            sym = syms[0]
            address = sym.address
        try:
            if decl.ctype.endswith("[]"):
                elem = prog.type(decl.ctype[:-2].strip())
                size = sym.size if sym is not None else 0
                # kallsyms' size is the distance to the next symbol: whole elements only
                tp = prog.array_type(elem, size // (elem.size or 1))
            else:
                tp = prog.type(decl.ctype)
        except LookupError as e:
            raise LookupError(
                f"{name}: type {decl.ctype!r} not in the kernel's BTF ({e})"
            ) from None
        return Object(prog, tp, address=address)

    _register_type_finder(prog, find_type)
    _register_object_finder(prog, find_object)
    prog.cache[CACHE_KEY] = info


def _register_type_finder(prog: Program, fn: Callable[[TypeKind, str, str | None], Any]) -> None:
    if hasattr(prog, "register_type_finder"):  # drgn 0.0.27+: a set of kinds per call

        def finder(prog: Program, kinds: Any, name: str, filename: str | None) -> Type | None:
            for kind in kinds:
                tp = fn(kind, name, filename)
                if tp is not None:
                    return tp
            return None

        # A drgn with a BTF type finder of its own (proposed upstream) registers it by
        # itself: prefer it, and ask ours only for what it does not find.
        enabled = list(getattr(prog, "enabled_type_finders", lambda: [])())
        theirs = [n for n in enabled if "btf" in n.lower()]
        where = len(enabled) if theirs else 0
        prog.register_type_finder("rmem_inspect_btf", finder, enable_index=where)
    else:
        prog.add_type_finder(fn)


def _register_object_finder(
    prog: Program, fn: Callable[[Program, str, FindObjectFlags, str | None], Object | None]
) -> None:
    if hasattr(prog, "register_object_finder"):
        prog.register_object_finder("rmem_inspect_btf", fn, enable_index=0)
    else:
        prog.add_object_finder(fn)
