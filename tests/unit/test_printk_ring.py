# SPDX-License-Identifier: GPL-2.0-or-later
"""
collect/kmsg.py's reader of the lockless printk ring against drgn's own
get_printk_records(), on a ring built in memory: the kernel's types (as in
kernel/printk/printk_ringbuffer.h, 64-bit little-endian) from a type finder, the
arrays and the text ring from memory segments. The factory dumps' rings never
wrap at boot; here the descriptor ids run past the ring, and the records include
a wrapped data block, a truncated one, a data-less one, one not yet committed,
one finalized and a descriptor reused for a newer id. Both readers must return
the same records, in the same order.
"""

from __future__ import annotations

import struct

import drgn
import pytest
from drgn import Architecture, Platform, PlatformFlags, Program, TypeMember

from rmem_inspect.collect.kmsg import lockless_records

pytestmark = pytest.mark.unit

LE64 = Platform(Architecture.AARCH64, PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN)

COUNT_BITS = 3  # 8 descriptors
SIZE_BITS = 8  # 256-byte text ring
DESCS, INFOS, DATA, PRB = 0x10000, 0x20000, 0x30000, 0x40000
SV_SHIFT = 62
ID_MASK = ~(3 << SV_SHIFT) & (1 << 64) - 1
RESERVED, COMMITTED, FINALIZED, REUSABLE = 0, 1, 2, 3


def _types(prog: Program) -> dict[str, drgn.Type]:
    long_t = prog.int_type("long", 8, True)
    ulong = prog.int_type("unsigned long", 8, False)
    uint = prog.int_type("unsigned int", 4, False)
    u8 = prog.int_type("unsigned char", 1, False)
    u16 = prog.int_type("unsigned short", 2, False)
    u32 = prog.int_type("unsigned int", 4, False)
    u64 = prog.int_type("unsigned long long", 8, False)
    char = prog.int_type("char", 1, True)
    atomic = prog.typedef_type(
        "atomic_long_t", prog.struct_type(None, 8, [TypeMember(long_t, "counter", 0)])
    )
    lpos = prog.struct_type(
        "prb_data_blk_lpos", 16, [TypeMember(ulong, "begin", 0), TypeMember(ulong, "next", 64)]
    )
    desc = prog.struct_type(
        "prb_desc", 24, [TypeMember(atomic, "state_var", 0), TypeMember(lpos, "text_blk_lpos", 64)]
    )
    dev_info = prog.struct_type(
        "dev_printk_info",
        64,
        [
            TypeMember(prog.array_type(char, 16), "subsystem", 0),
            TypeMember(prog.array_type(char, 48), "device", 128),
        ],
    )
    info = prog.struct_type(
        "printk_info",
        88,
        [
            TypeMember(u64, "seq", 0),
            TypeMember(u64, "ts_nsec", 64),
            TypeMember(u16, "text_len", 128),
            TypeMember(u8, "facility", 144),
            TypeMember(drgn.Object(prog, u8, bit_field_size=5), "flags", 152),
            TypeMember(drgn.Object(prog, u8, bit_field_size=3), "level", 157),
            TypeMember(u32, "caller_id", 160),
            TypeMember(dev_info, "dev_info", 192),
        ],
    )
    desc_ring = prog.struct_type(
        "prb_desc_ring",
        48,
        [
            TypeMember(uint, "count_bits", 0),
            TypeMember(prog.pointer_type(desc), "descs", 64),
            TypeMember(prog.pointer_type(info), "infos", 128),
            TypeMember(atomic, "head_id", 192),
            TypeMember(atomic, "tail_id", 256),
            TypeMember(atomic, "last_finalized_seq", 320),
        ],
    )
    data_ring = prog.struct_type(
        "prb_data_ring",
        32,
        [
            TypeMember(uint, "size_bits", 0),
            TypeMember(prog.pointer_type(char), "data", 64),
            TypeMember(atomic, "head_lpos", 128),
            TypeMember(atomic, "tail_lpos", 192),
        ],
    )
    ring = prog.struct_type(
        "printk_ringbuffer",
        88,
        [
            TypeMember(desc_ring, "desc_ring", 0),
            TypeMember(data_ring, "text_data_ring", 384),
            TypeMember(atomic, "fail", 640),
        ],
    )
    return {
        "prb_desc": desc,
        "printk_info": info,
        "printk_ringbuffer": ring,
        "unsigned long": ulong,
    }


def _ring(records: list[tuple[int, int, int, int, bytes, int]], tail: int, head: int) -> Program:
    """A program whose ``prb`` holds ``records``: (id, state, begin, next, text, text_len)."""
    prog = Program(LE64)
    types = _types(prog)
    state_t = prog.enum_type(
        "desc_state",
        prog.int_type("int", 4, True),
        [
            drgn.TypeEnumerator("desc_reserved", RESERVED),
            drgn.TypeEnumerator("desc_committed", COMMITTED),
            drgn.TypeEnumerator("desc_finalized", FINALIZED),
            drgn.TypeEnumerator("desc_reusable", REUSABLE),
        ],
    )
    flags_t = prog.enum_type(
        "printk_info_flags",
        prog.int_type("int", 4, True),
        [drgn.TypeEnumerator("LOG_NEWLINE", 2), drgn.TypeEnumerator("LOG_CONT", 8)],
    )

    def find_type(
        prog: Program, kinds: drgn.TypeKindSet, name: str, filename: str | None
    ) -> drgn.Type | None:
        return types.get(name)

    def find_object(
        prog: Program, name: str, flags: drgn.FindObjectFlags, filename: str | None
    ) -> drgn.Object | None:
        if name == "prb":
            ptr = prog.pointer_type(types["printk_ringbuffer"])
            return drgn.Object(prog, ptr, value=PRB)
        for enum in (state_t, flags_t):
            for e in enum.enumerators or ():
                if e.name == name:
                    return drgn.Object(prog, enum, value=e.value)
        return None

    prog.register_type_finder("ring", find_type, enable_index=0)
    prog.register_object_finder("ring", find_object, enable_index=0)

    count = 1 << COUNT_BITS
    descs = bytearray(24 * count)
    infos = bytearray(88 * count)
    data = bytearray(b"." * (1 << SIZE_BITS))
    for i, (rid, state, begin, next_, text, text_len) in enumerate(records):
        idx = rid & (count - 1)
        struct.pack_into("<QQQ", descs, idx * 24, (state << SV_SHIFT) | rid, begin, next_)
        struct.pack_into("<QQHBBI", infos, idx * 88, i, 1_000_000 * (i + 1), text_len, 0, 0, 0)
        at = (begin & 0xFF) + 8
        if at > (next_ & 0xFF):
            at = 0  # a wrapped block: its text is where both readers look
        data[at : at + len(text)] = text
    prb = struct.pack("<I4xQQqqq", COUNT_BITS, DESCS, INFOS, head, tail, 0)
    prb += struct.pack("<I4xQqq", SIZE_BITS, DATA, 0, 0) + struct.pack("<q", 0)
    for address, blob in ((DESCS, descs), (INFOS, infos), (DATA, data), (PRB, prb)):
        prog.add_memory_segment(
            address, len(blob), lambda a, n, off, phys, b=bytes(blob): b[off : off + n]
        )
    return prog


def _drgn(prog: Program) -> list[tuple[bytes, int]]:
    from drgn.helpers.linux.printk import get_printk_records

    return [(r.text, r.timestamp) for r in get_printk_records(prog)]


def test_ring_with_every_kind_of_record() -> None:
    base = 0x1_0000  # logical positions, well past the ring size
    records = [
        # ids 13..21 run past the 8 descriptors (tail 13 and head 21 share slot 5)
        (13, REUSABLE, base + 104, base + 128, b"gone", 4),  # overwritten by 21 below
        (14, FINALIZED, base + 128, base + 152, b"first line", 10),
        (15, COMMITTED, base + 152, base + 176, b"second", 6),
        (16, RESERVED, base + 176, base + 200, b"not yet", 7),  # not committed: skipped
        (17, FINALIZED, base + 200, base + 208, b"", 0),  # data-less: begin + 8 == next
        (18, FINALIZED, base + 208, base + 224, b"truncated here", 14),  # 8 bytes of room
        (19, FINALIZED, base + 250, base + 256 + 20, b"wrapped", 7),  # wraps past the end
        (20, COMMITTED, base + 276, base + 300, b"after wrap", 10),
        (21, FINALIZED, base + 300, base + 330, b"newest", 6),  # reuses 13's descriptor
    ]
    prog = _ring(records, tail=13, head=21)
    want = _drgn(prog)
    # the ring is as meant: 16 uncommitted and 17 data-less are skipped, 18 cut to its
    # block, 19's text read from the ring's start, 13's slot holds 21
    assert [t for t, _ in want] == [
        b"first line", b"second", b"truncate", b"wrapped", b"after wrap", b"newest",
    ]  # fmt: skip
    assert lockless_records(prog) == want


def test_a_single_record_ring() -> None:
    prog = _ring([(5, FINALIZED, 0x400, 0x420, b"only", 4)], tail=5, head=5)
    assert lockless_records(prog) == _drgn(prog) == [(b"only", 1_000_000)]


def test_ids_that_never_reach_the_head_fall_back() -> None:
    """A head id the walk cannot reach (corrupt) gives None: drgn's helper decides."""
    prog = _ring([(5, FINALIZED, 0x400, 0x420, b"only", 4)], tail=5, head=5 + (1 << 40))
    assert lockless_records(prog) is None


def test_no_printk_ring_falls_back() -> None:
    assert lockless_records(Program(LE64)) is None
