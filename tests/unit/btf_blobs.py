# SPDX-License-Identifier: GPL-2.0-or-later
"""Write BTF blobs for the reader's unit and fuzz tests, record by record as in
include/uapi/linux/btf.h (struct btf_header, struct btf_type and the per-kind data)."""

from __future__ import annotations

import struct

__all__ = ["BtfWriter", "sample_blob"]


class BtfWriter:
    """Append types (ids from 1, in call order) and strings; :meth:`blob` packs them."""

    def __init__(self, order: str = "<") -> None:
        self.order = order
        self.strings = bytearray(b"\0")
        self.records: list[bytes] = []

    def s(self, name: str) -> int:
        if not name:
            return 0
        raw = name.encode() + b"\0"
        at = self.strings.find(b"\0" + raw)
        if at >= 0:
            return at + 1
        off = len(self.strings)
        self.strings += raw
        return off

    def _add(self, name: str, kind: int, vlen: int, word: int, extra: bytes = b"",
             kflag: bool = False) -> int:  # fmt: skip
        info = (int(kflag) << 31) | (kind << 24) | vlen
        self.records.append(struct.pack(self.order + "III", self.s(name), info, word) + extra)
        return len(self.records)

    def int_(self, name: str, size: int, signed: bool = False, bits: int | None = None,
             encoding: int | None = None) -> int:  # fmt: skip
        enc = encoding if encoding is not None else int(signed)
        nbits = size * 8 if bits is None else bits
        return self._add(name, 1, 0, size, struct.pack(self.order + "I", (enc << 24) | nbits))

    def ptr(self, ref: int) -> int:
        return self._add("", 2, 0, ref)

    def array(self, elem: int, index: int, nelems: int) -> int:
        return self._add("", 3, 0, 0, struct.pack(self.order + "III", elem, index, nelems))

    def struct(self, name: str, size: int, members: list[tuple[str, int, int, int]],
               union: bool = False) -> int:  # fmt: skip
        """members: (name, type id, bit offset, bit field size)."""
        kflag = any(m[3] for m in members)
        extra = b"".join(
            struct.pack(self.order + "III", self.s(n), t,
                        (bs << 24 | off) if kflag else off)  # fmt: skip
            for n, t, off, bs in members
        )
        return self._add(name, 5 if union else 4, len(members), size, extra, kflag)

    def enum(
        self, name: str, size: int, values: list[tuple[str, int]], signed: bool = False
    ) -> int:
        extra = b"".join(
            struct.pack(self.order + ("Ii" if signed else "II"), self.s(n), v) for n, v in values
        )
        return self._add(name, 6, len(values), size, extra, signed)

    def enum64(self, name: str, values: list[tuple[str, int]], signed: bool = False) -> int:
        extra = b"".join(
            struct.pack(self.order + "III", self.s(n), v & 0xFFFFFFFF, (v >> 32) & 0xFFFFFFFF)
            for n, v in values
        )
        return self._add(name, 19, len(values), 8, extra, signed)

    def fwd(self, name: str, union: bool = False) -> int:
        return self._add(name, 7, 0, 0, kflag=union)

    def typedef(self, name: str, ref: int) -> int:
        return self._add(name, 8, 0, ref)

    def qual(self, kind: str, ref: int) -> int:
        return self._add("", {"volatile": 9, "const": 10, "restrict": 11}[kind], 0, ref)

    def func_proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        extra = b"".join(struct.pack(self.order + "II", self.s(n), t) for n, t in params)
        return self._add("", 13, len(params), ret, extra)

    def func(self, name: str, proto: int) -> int:
        return self._add(name, 12, 1, proto)

    def var(self, name: str, ref: int) -> int:
        return self._add(name, 14, 0, ref, struct.pack(self.order + "I", 1))

    def datasec(self, name: str, entries: list[tuple[int, int, int]]) -> int:
        extra = b"".join(struct.pack(self.order + "III", *e) for e in entries)
        return self._add(name, 15, len(entries), 0, extra)

    def float_(self, name: str, size: int) -> int:
        return self._add(name, 16, 0, size)

    def decl_tag(self, name: str, ref: int, component: int = -1) -> int:
        return self._add(name, 17, 0, ref, struct.pack(self.order + "i", component))

    def type_tag(self, name: str, ref: int) -> int:
        return self._add(name, 18, 0, ref)

    def blob(self) -> bytes:
        types = b"".join(self.records)
        strs = bytes(self.strings)
        header = struct.pack(self.order + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types),
                             len(types), len(strs))  # fmt: skip
        return header + types + strs


def sample_blob(order: str = "<") -> bytes:
    """Every kind, shaped like the kernel types the collectors read."""
    w = BtfWriter(order)
    ulong = w.int_("long unsigned int", 8)  # 1
    int_ = w.int_("int", 4, signed=True)  # 2
    char = w.int_("char", 1, encoding=0)  # 3
    u64 = w.typedef("u64", ulong)  # 4
    phys = w.typedef("phys_addr_t", u64)  # 5
    cchar = w.qual("const", char)  # 6
    name_ptr = w.ptr(cchar)  # 7
    ops_fwd = w.fwd("reserved_mem_ops")  # 8
    ops_ptr = w.ptr(ops_fwd)  # 9
    void_ptr = w.ptr(0)  # 10
    rm = w.struct("reserved_mem", 40, [("name", name_ptr, 0, 0), ("ops", ops_ptr, 64, 0),
                                       ("base", phys, 128, 0), ("size", phys, 192, 0),
                                       ("priv", void_ptr, 256, 0)])  # fmt: skip  # 11
    lh_fwd_ptr_target = len(w.records) + 2  # the list_head defined just after its pointer
    lh_ptr = w.ptr(lh_fwd_ptr_target)  # 12
    w.struct("list_head", 16, [("next", lh_ptr, 0, 0), ("prev", lh_ptr, 64, 0)])  # 13
    flags = w.enum("memblock_flags", 4, [("MEMBLOCK_NONE", 0), ("MEMBLOCK_HOTPLUG", 1),
                                         ("MEMBLOCK_NOMAP", 4)])  # fmt: skip  # 14
    w.struct("bits", 4, [("a", int_, 0, 3), ("b", int_, 3, 5), ("c", flags, 8, 24)])  # 15
    w.array(rm, int_, 64)  # 16
    proto = w.func_proto(int_, [("rmem", w.ptr(rm)), ("", 0)])  # 18 (ptr is 17)
    w.func("rmem_init", proto)  # 19
    w.struct("reserved_mem_ops", 8, [("node_init", w.ptr(proto), 0, 0)])  # 21 (ptr 20)
    w.struct("u", 8, [("x", ulong, 0, 0), ("y", int_, 0, 0)], union=True)  # 22
    w.enum64("big", [("BIG_NEG", -2), ("BIG_HUGE", 1 << 40)], signed=True)  # 23
    w.float_("double", 8)  # 24
    v = w.var("reserved_mem_count", int_)  # 25
    w.datasec(".bss", [(v, 0, 4)])  # 26
    w.decl_tag("tag", rm, 0)  # 27
    w.type_tag("rcu", void_ptr)  # 28
    w.qual("volatile", w.qual("restrict", lh_ptr))  # 30 (restrict 29)
    w.fwd("sock_common", union=True)  # 31
    return w.blob()
