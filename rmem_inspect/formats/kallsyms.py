# SPDX-License-Identifier: GPL-2.0-or-later
"""
kallsyms reader
---------------

Find kernel symbols in the kernel's own compressed symbol table, reading only
what a lookup needs, as kernel/kallsyms.c does: ``kallsyms_lookup_names()``
binary-searches ``kallsyms_seqs_of_names`` (symbol numbers in name order, three
bytes each, big end first: ``get_symbol_seq()``) and decodes about 18 names;
``get_symbol_pos()`` binary-searches the addresses. Nothing is decoded in bulk.

The tables (scripts/kallsyms.c ``write_src()``), in a dump found through the
addresses VMCOREINFO lists (kernel/vmcore_info.c: ``kallsyms_names``,
``kallsyms_num_syms``, ``kallsyms_token_table``, ``kallsyms_token_index``,
``kallsyms_offsets`` and, where it exists, ``kallsyms_relative_base``):

- ``kallsyms_names``: per symbol a token count (one byte; two, low 7 bits first,
  when the first has bit 7 set: "big" symbols, 6.1+) then that many token numbers;
  the first decoded character is the nm type letter.
- ``kallsyms_markers``: u32 offset into names of every 256th symbol.
- ``kallsyms_token_table`` / ``kallsyms_token_index``: 256 NUL-terminated tokens
  and their u16 offsets.
- ``kallsyms_offsets``: one s32 per symbol, in address order. With
  ``kallsyms_relative_base`` (through 6.12 on arm64, where
  CONFIG_KALLSYMS_ABSOLUTE_PERCPU is off) the address is base + (u32)offset;
  without it (7.x, ``kallsyms_sym_address()`` = ``offset_to_ptr()``) the address
  is the entry's own address + offset.

VMCOREINFO does not list ``kallsyms_markers`` and ``kallsyms_seqs_of_names``;
``write_src()`` emits every array in a fixed order, each aligned, so they are
found from their neighbours. The orders (checked with ``nm -n`` on Debian's
cloud-arm64 vmlinux files; :data:`LAYOUTS`):

- 6.1:  offsets, relative_base, num_syms, names, markers, seqs_of_names,
  token_table, token_index (8-byte alignment);
- 6.12: num_syms, names, markers, token_table, token_index, offsets,
  relative_base, seqs_of_names (8-byte alignment);
- 7.x:  num_syms, names, markers, token_table, token_index, offsets,
  seqs_of_names (4-byte alignment, no relative_base).

The tables come out of a crash dump, so nothing is trusted: every array must fit
the gap its neighbours leave, every index and offset is bounded, a name longer than
KSYM_NAME_LEN is an error, and each found array is checked (``_stext`` must
resolve to the address VMCOREINFO gives). Every problem raises
:class:`KallsymsError` with one sentence; reads go through the caller's
``read(address, size)``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "KSYM_NAME_LEN",
    "LAYOUTS",
    "MAX_SYMBOL_SIZE",
    "Kallsyms",
    "KallsymsError",
    "KallsymsSymbol",
    "Layout",
    "locate",
]

#: include/linux/kallsyms.h (512 since 6.1).
KSYM_NAME_LEN = 512
#: Largest symbol count believed (Debian's 7.3 kernel has 187,455).
MAX_SYMS = 1 << 22
#: Symbols farther apart than this get size 0, as drgn's kallsyms finder does
#: (libdrgn/kallsyms.c MAX_SYMBOL_LENGTH), so results match drgn's own loader.
MAX_SYMBOL_SIZE = 0x10000
#: Symbols per kallsyms_markers entry (scripts/kallsyms.c: ``(i & 0xFF) == 0``).
MARKER_STRIDE = 256

Reader = Callable[[int, int], bytes]


class KallsymsError(ValueError):
    """kallsyms tables that cannot be read or do not make sense."""


@dataclass(frozen=True)
class Layout:
    """One generation's array order as scripts/kallsyms.c writes it."""

    name: str
    #: Array names in address order.
    order: tuple[str, ...]
    #: The ALGN of write_src() on 64-bit.
    align: int


#: Array orders of the generations read here (scripts/kallsyms.c write_src()).
LAYOUTS = (
    Layout(
        "6.1",
        ("offsets", "relative_base", "num_syms", "names", "markers", "seqs_of_names",
         "token_table", "token_index"),  # fmt: skip
        8,
    ),
    Layout(
        "6.12",
        ("num_syms", "names", "markers", "token_table", "token_index", "offsets",
         "relative_base", "seqs_of_names"),  # fmt: skip
        8,
    ),
    Layout(
        "7.x",
        ("num_syms", "names", "markers", "token_table", "token_index", "offsets",
         "seqs_of_names"),  # fmt: skip
        4,
    ),
)
#: The arrays VMCOREINFO lists (kernel/vmcore_info.c, kernel/crash_core.c before 6.9).
LISTED = ("num_syms", "names", "token_table", "token_index", "offsets", "relative_base")


@dataclass(frozen=True)
class KallsymsSymbol:
    """One symbol: what drgn's kallsyms finder gives (size to the next address)."""

    name: str
    address: int
    size: int
    #: The nm type letter ("T", "d", ...).
    type: str
    #: Position in address order.
    index: int


def _align_down(x: int, a: int) -> int:
    return x - (x % a)


def _align_up(x: int, a: int) -> int:
    return -(-x // a) * a


def locate(listed: dict[str, int], num_syms: int) -> tuple[Layout, dict[str, int]]:
    """The generation whose array order ``listed`` (VMCOREINFO's addresses, keys as
    in :data:`LISTED`) follows, and every array's address including the unlisted
    ``markers`` and ``seqs_of_names``.

    :raises KallsymsError: the addresses follow none of :data:`LAYOUTS`.
    """
    if not 0 < num_syms <= MAX_SYMS:
        raise KallsymsError(f"kallsyms_num_syms is {num_syms}")
    n_markers = -(-num_syms // MARKER_STRIDE)
    for layout in LAYOUTS:
        if set(listed) != set(layout.order) - {"markers", "seqs_of_names"}:
            continue
        known = [listed[a] for a in layout.order if a in listed]
        if known != sorted(known) or len(set(known)) != len(known):
            continue
        a = layout.align
        at = dict(listed)
        # markers sit between names and the array after them (seqs_of_names or
        # token_table): start aligned, end padded to the next array.
        if layout.name == "6.1":
            at["seqs_of_names"] = _align_down(at["token_table"] - 3 * num_syms, a)
            at["markers"] = _align_down(at["seqs_of_names"] - 4 * n_markers, a)
        else:
            at["markers"] = _align_down(at["token_table"] - 4 * n_markers, a)
            after = "relative_base" if "relative_base" in at else "offsets"
            size = 8 if after == "relative_base" else 4 * num_syms
            at["seqs_of_names"] = _align_up(at[after] + size, a)
        placed = [at[x] for x in layout.order]
        if placed == sorted(placed) and at["markers"] > at["names"]:
            return layout, at
    raise KallsymsError(
        "the kallsyms arrays VMCOREINFO lists are in no order scripts/kallsyms.c writes "
        f"(6.1, 6.12, 7.x): {', '.join(f'{k} {v:#x}' for k, v in sorted(listed.items()))}"
    )


class Kallsyms:
    """A kernel's kallsyms tables, read on demand through ``read``.

    :param read: ``read(address, size) -> bytes`` of kernel memory; it may raise
        anything, which becomes :class:`KallsymsError`.
    :param listed: VMCOREINFO's ``SYMBOL(kallsyms_*)`` addresses, keyed without the
        ``kallsyms_`` prefix.
    :param stext: VMCOREINFO's ``SYMBOL(_stext)``, to check the tables (None: skip).
    :raises KallsymsError: the tables are not in a known layout or do not check.
    """

    def __init__(
        self,
        read: Reader,
        listed: dict[str, int],
        stext: int | None = None,
        little: bool = True,
        pointer_size: int = 8,
    ) -> None:
        self._read_fn = read
        self._o = "<" if little else ">"
        self._ptr = pointer_size
        if "num_syms" not in listed:
            raise KallsymsError("VMCOREINFO lists no kallsyms_num_syms")
        (n,) = struct.unpack(self._o + "I", self._read(listed["num_syms"], 4))
        self.layout, self.at = locate(listed, n)
        self.count = n
        at = self.at
        # names: up to the markers; every offset into it must stay inside
        self._names_size = at["markers"] - at["names"]
        n_markers = -(-n // MARKER_STRIDE)
        self._markers = struct.unpack(
            f"{self._o}{n_markers}I", self._read(at["markers"], 4 * n_markers)
        )
        if self._markers[0] != 0 or any(
            b <= a for a, b in zip(self._markers, self._markers[1:], strict=False)
        ):
            raise KallsymsError(
                f"kallsyms_markers at {at['markers']:#x} do not start at 0 and increase"
            )
        if self._markers[-1] >= self._names_size:
            raise KallsymsError(
                f"kallsyms_markers point past kallsyms_names ({self._names_size} bytes)"
            )
        # the token table runs up to the token index (every layout writes them so)
        table = self._read(at["token_table"], at["token_index"] - at["token_table"])
        index = struct.unpack(self._o + "256H", self._read(at["token_index"], 512))
        tokens = []
        for i, off in enumerate(index):
            nul = table.find(b"\0", off) if off < len(table) else -1
            if nul < 0:
                raise KallsymsError(
                    f"kallsyms token {i} at offset {off} does not end inside the token table"
                )
            tokens.append(table[off:nul])
        self._tokens = tokens
        self._groups: dict[int, tuple[bytes, list[int]]] = {}
        self._names: dict[int, bytes] = {}
        self._offsets: tuple[int, ...] | None = None
        self._base = 0
        if "relative_base" in at:
            fmt = self._o + ("Q" if pointer_size == 8 else "I")
            (self._base,) = struct.unpack(fmt, self._read(at["relative_base"], pointer_size))
        if stext is not None:
            found = [s.address for s in self.lookup("_stext")]
            if stext not in found:
                raise KallsymsError(
                    f"kallsyms ({self.layout.name} layout) gives _stext at "
                    f"{', '.join(hex(a) for a in found) or 'no address'}, VMCOREINFO at "
                    f"{stext:#x}"
                )

    # -- memory ---------------------------------------------------------------------

    def _read(self, address: int, size: int) -> bytes:
        if size < 0 or size > 64 << 20:
            raise KallsymsError(f"kallsyms read of {size} bytes at {address:#x}")
        try:
            data = self._read_fn(address, size)
        except KallsymsError:
            raise
        except Exception as e:  # the caller's reader: FaultError, OSError, ...
            raise KallsymsError(f"cannot read kallsyms at {address:#x}: {e}") from None
        if len(data) != size:
            raise KallsymsError(f"kallsyms read at {address:#x} gave {len(data)} of {size} bytes")
        return data

    # -- names ----------------------------------------------------------------------

    def _group(self, g: int) -> tuple[bytes, list[int]]:
        """The names block of symbols 256*g .. 256*g+255 and where each entry starts
        (kernel/kallsyms.c get_symbol_offset() skips entries the same way)."""
        try:
            return self._groups[g]
        except KeyError:
            pass
        start = self._markers[g]
        end = self._markers[g + 1] if g + 1 < len(self._markers) else self._names_size
        block = self._read(self.at["names"] + start, end - start)
        starts: list[int] = []
        at = 0
        size = len(block)
        for _ in range(min(MARKER_STRIDE, self.count - g * MARKER_STRIDE)):
            if at >= size:
                raise KallsymsError(
                    f"kallsyms_names entry {g * MARKER_STRIDE + len(starts)} runs past its block"
                )
            starts.append(at)
            length = block[at]
            if length & 0x80:  # a "big" symbol: two bytes (kallsyms_expand_symbol())
                length = ((length & 0x7F) | (block[at + 1] << 7 if at + 1 < size else 0)) + 1
            at += length + 1
        if at > size or (at != size and g + 1 < len(self._markers)):
            raise KallsymsError(
                f"kallsyms_markers[{g + 1}] is {end}, the 256 names before it end at {start + at}"
            )
        self._groups[g] = (block, starts)
        return block, starts

    def _raw_name(self, i: int) -> bytes:
        """Type letter and name of symbol ``i`` (kallsyms_expand_symbol())."""
        try:
            return self._names[i]
        except KeyError:
            pass
        block, starts = self._group(i // MARKER_STRIDE)
        at = starts[i % MARKER_STRIDE]
        length = block[at]
        head = 1
        if length & 0x80:
            length = (length & 0x7F) | (block[at + 1] << 7)
            head = 2
        tokens = self._tokens
        name = b"".join([tokens[t] for t in block[at + head : at + head + length]])
        if len(name) < 2 or len(name) > KSYM_NAME_LEN:
            raise KallsymsError(
                f"kallsyms symbol {i} decodes to {len(name)} bytes (KSYM_NAME_LEN is "
                f"{KSYM_NAME_LEN})"
            )
        self._names[i] = name
        return name

    def name(self, i: int) -> str:
        """Name of symbol ``i`` (address order), without its type letter."""
        self._check_index(i)
        return self._raw_name(i)[1:].decode(errors="replace")

    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.count:
            raise KallsymsError(f"kallsyms symbol {i} is outside 0..{self.count - 1}")

    # -- addresses ------------------------------------------------------------------

    def _offset_values(self) -> tuple[int, ...]:
        if self._offsets is None:
            self._offsets = struct.unpack(
                f"{self._o}{self.count}i", self._read(self.at["offsets"], 4 * self.count)
            )
        return self._offsets

    def _address_at(self, i: int, value: int) -> int:
        mask = (1 << (8 * self._ptr)) - 1
        if "relative_base" in self.at:
            return (self._base + (value & 0xFFFFFFFF)) & mask
        return (self.at["offsets"] + 4 * i + value) & mask

    def address(self, i: int) -> int:
        """Address of symbol ``i`` (kernel/kallsyms.c kallsyms_sym_address())."""
        self._check_index(i)
        if self._offsets is not None:
            return self._address_at(i, self._offsets[i])
        (value,) = struct.unpack(self._o + "i", self._read(self.at["offsets"] + 4 * i, 4))
        return self._address_at(i, value)

    def symbol(self, i: int) -> KallsymsSymbol:
        """Symbol ``i``; its size is the distance to the next symbol's address, 0 when
        that exceeds :data:`MAX_SYMBOL_SIZE` or for the last symbol."""
        self._check_index(i)
        raw = self._raw_name(i)
        address = self.address(i)
        size = self.address(i + 1) - address if i + 1 < self.count else 0
        if not 0 <= size < MAX_SYMBOL_SIZE:
            size = 0
        return KallsymsSymbol(raw[1:].decode(errors="replace"), address, size,
                              chr(raw[0]), i)  # fmt: skip

    def at_address(self, address: int) -> KallsymsSymbol | None:
        """The symbol containing ``address`` (symbol address <= ``address`` < address +
        size), as drgn's symbol index answers over the same sizes: sizes run to the next
        address, so at most one symbol contains an address; none in a gap."""
        offs = self._offset_values()
        addr = self._address_at
        lo, hi = 0, self.count
        while lo < hi:  # bisect_right over the addresses (kernel: get_symbol_pos())
            mid = (lo + hi) // 2
            if address < addr(mid, offs[mid]):
                hi = mid
            else:
                lo = mid + 1
        if lo == 0:
            return None
        sym = self.symbol(lo - 1)
        return sym if sym.address <= address < sym.address + sym.size else None

    # -- by name --------------------------------------------------------------------

    def _seq(self, k: int) -> int:
        b = self._read(self.at["seqs_of_names"] + 3 * k, 3)
        seq = (b[0] << 16) | (b[1] << 8) | b[2]
        if seq >= self.count:
            raise KallsymsError(f"kallsyms_seqs_of_names[{k}] is {seq}, past {self.count}")
        return seq

    def lookup(self, name: str) -> list[KallsymsSymbol]:
        """Every symbol called ``name``, as kernel/kallsyms.c kallsyms_lookup_names()
        finds them: a binary search over kallsyms_seqs_of_names, then its neighbours."""
        key = name.encode()
        lo, hi = 0, self.count - 1
        found = -1
        for _ in range(64):  # log2(MAX_SYMS) + slack: a bound, never a hang
            if lo > hi:
                break
            mid = lo + (hi - lo) // 2
            got = self._raw_name(self._seq(mid))[1:]
            if key > got:
                lo = mid + 1
            elif key < got:
                hi = mid - 1
            else:
                found = mid
                break
        else:
            raise KallsymsError("kallsyms_seqs_of_names is not in name order")
        if found < 0:
            return []
        first = last = found
        while first > 0 and self._raw_name(self._seq(first - 1))[1:] == key:
            first -= 1
        while last < self.count - 1 and self._raw_name(self._seq(last + 1))[1:] == key:
            last += 1
        return [self.symbol(self._seq(k)) for k in range(first, last + 1)]

    def with_prefix(self, prefix: str) -> list[KallsymsSymbol]:
        """Every symbol whose name starts with ``prefix``, in name order: the names are
        sorted in kallsyms_seqs_of_names (scripts/kallsyms.c sort_symbols_by_name()), so
        a binary search for the first name not below ``prefix``, then the names after it
        while they match; only those names are decoded."""
        key = prefix.encode()
        lo, hi = 0, self.count
        for _ in range(64):  # log2(MAX_SYMS) + slack: a bound, never a hang
            if lo >= hi:
                break
            mid = (lo + hi) // 2
            if self._raw_name(self._seq(mid))[1:] < key:
                lo = mid + 1
            else:
                hi = mid
        else:
            raise KallsymsError("kallsyms_seqs_of_names is not in name order")
        out = []
        for k in range(lo, self.count):
            seq = self._seq(k)
            if not self._raw_name(seq)[1:].startswith(key):
                break
            out.append(self.symbol(seq))
        return out

    def __iter__(self) -> Iterator[KallsymsSymbol]:
        """Every symbol in address order (decodes everything: for listing only)."""
        for i in range(self.count):
            yield self.symbol(i)
