# SPDX-License-Identifier: GPL-2.0-or-later
"""
kmsg
----

The kernel log lines that explain reserved-memory decisions, read from the
printk ring buffer with drgn's printk helpers. Attribution of a line to a region
happens in the checks (they know the region names); here we only select.
"""

from __future__ import annotations

import re

from drgn import FaultError, Program, sizeof

from rmem_inspect.collect.reading import RawStruct
from rmem_inspect.model import LogLine

__all__ = ["RELEVANT", "is_relevant", "lockless_records", "read_kernel_log"]

#: Lines worth keeping: reserved-memory, CMA, coherent pools, DMA pools, memblock, mem=.
RELEVANT = re.compile(
    r"OF: reserved mem:|OF: fdt:|Reserved memory:|reserved mem|^cma:|\bcma: |"
    r"overlaps with|assigned reserved memory node|DMA memory pool|CMA memory pool|"
    r"^Memory: \d+K/|NUMA: |memblock|"
    # arm64 early_mem() (mem=), reserve_crashkernel(): reservations beside reserved_mem
    r"^Memory limited to \d+MB|^crashkernel reserved: |"
    # kernel/dma/contiguous.c (7.x): the DT default CMA pool gives way to cma=
    r"^Skipping dt linux,cma-default node"
)


def is_relevant(text: str) -> bool:
    return bool(RELEVANT.search(text))


def read_kernel_log(prog: Program, errors: list[str], keep_all: bool = False) -> list[LogLine]:
    """Relevant kernel log lines (all lines when ``keep_all``)."""
    records = lockless_records(prog)
    if records is None:
        try:
            from drgn.helpers.linux.printk import get_printk_records
        except ImportError as e:  # pragma: no cover - every supported drgn has it
            errors.append(f"drgn has no printk helpers: {e}")
            return []
        try:
            records = [(r.text, r.timestamp) for r in get_printk_records(prog)]
        except (FaultError, LookupError, ValueError) as e:
            errors.append(f"kernel log unreadable: {e}")
            return []
    out = []
    for raw, timestamp in records:
        text = raw.decode(errors="replace")
        # A record may hold continuation lines (OVERLAP DETECTED!\n<a> overlaps with <b>).
        for line in text.splitlines() or [""]:
            if keep_all or is_relevant(line):
                out.append(LogLine(text=line, timestamp=timestamp / 1e9))
    return out


#: Largest printk ring read whole (CONFIG_LOG_BUF_SHIFT is at most 25).
MAX_RING_BYTES = 1 << 25


def lockless_records(prog: Program) -> list[tuple[bytes, int]] | None:
    """(text, ts_nsec) of each committed record of the lockless printk ring (5.10+),
    in ring order: what drgn's ``get_printk_records()`` returns for it, read with one
    read per array instead of an Object per member (1,243 records: ~30 -> ~3 ms).

    None when the kernel has no such ring, its layout is not the expected one, or a
    read fails: the caller then asks drgn's helper, whose answer (or error) stands.
    The ring logic is that helper's (kernel/printk/printk_ringbuffer.h).
    """
    try:
        prb = prog["prb"]
        desc_ring = prb.desc_ring
        count_bits = desc_ring.count_bits.value_()
        size_bits = prb.text_data_ring.size_bits.value_()
        if not (0 < count_bits <= 24 and 0 < size_bits and 1 << size_bits <= MAX_RING_BYTES):
            return None
        count = 1 << count_bits
        desc = RawStruct(
            prog,
            "struct prb_desc",
            ["state_var.counter", "text_blk_lpos.begin", "text_blk_lpos.next"],
        )
        info = RawStruct(prog, "struct printk_info", ["ts_nsec", "text_len"])
        descs = prog.read(desc_ring.descs.value_(), desc.size * count)
        infos = prog.read(desc_ring.infos.value_(), info.size * count)
        data = prog.read(prb.text_data_ring.data.value_(), 1 << size_bits)
        ulong_size = sizeof(prog.type("unsigned long"))
        committed = (prog["desc_committed"].value_(), prog["desc_finalized"].value_())
        head_id = desc_ring.head_id.counter.value_()
        current_id = desc_ring.tail_id.counter.value_()
    except (FaultError, LookupError, ValueError, TypeError, OverflowError, AttributeError):
        return None
    sv_bits = ulong_size * 8
    flags_shift = sv_bits - 2
    id_mask = (3 << flags_shift) ^ ((1 << sv_bits) - 1)
    desc_mask = count - 1
    text_mask = (1 << size_bits) - 1
    out = []
    for _ in range(count + 1):  # tail..head: at most the ring, whatever the ids say
        idx = current_id & desc_mask
        state_var, begin, next_ = desc.unpack(descs, idx * desc.size)
        if (state_var & id_mask) == current_id and (3 & (state_var >> flags_shift)) in committed:
            lpos_begin = (begin & text_mask) + ulong_size
            lpos_next = next_ & text_mask
            if lpos_begin != lpos_next:  # else a data-less record
                if lpos_begin > lpos_next:
                    lpos_begin = 0  # data wrapped (drgn's helper does the same)
                ts_nsec, text_len = info.unpack(infos, idx * info.size)
                text_len = min(text_len, lpos_next - lpos_begin)  # truncated record
                out.append((data[lpos_begin : lpos_begin + text_len], ts_nsec))
        if current_id == head_id:
            return out
        current_id = (current_id + 1) & id_mask
    return None  # head never reached: ids corrupt; let drgn's helper say so
