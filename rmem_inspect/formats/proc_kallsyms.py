# SPDX-License-Identifier: GPL-2.0-or-later
"""
/proc/kallsyms reader
---------------------

The running kernel's symbols as /proc/kallsyms prints them (kernel/kallsyms.c
``s_show()``: ``address type name``, module symbols with ``\\t[module]``), searched
for the names asked and bisected for addresses, never parsed whole. Symbols come
out as :class:`~rmem_inspect.formats.kallsyms.KallsymsSymbol` with the sizes drgn
gives them; every problem is one :class:`~rmem_inspect.formats.kallsyms.KallsymsError`.
"""

from __future__ import annotations

from collections.abc import Iterator

from rmem_inspect.formats.kallsyms import MAX_SYMBOL_SIZE, KallsymsError, KallsymsSymbol

__all__ = ["ProcKallsyms"]


class ProcKallsyms:
    """The text of /proc/kallsyms (``address type name``, then module symbols with
    ``\\t[module]``), searched for the names asked, never parsed whole.

    Lines are in kallsyms order (address order for vmlinux, kernel/kallsyms.c
    ``s_show()``); module lines are left out, as drgn's loader does. Sizes run to the
    next line's address as in :meth:`Kallsyms.symbol`.

    :raises KallsymsError: no vmlinux symbol lines.
    """

    def __init__(self, text: bytes) -> None:
        module = text.find(b"\t[")
        if module >= 0:
            text = text[: text.rfind(b"\n", 0, module) + 1]
        if not text.endswith(b"\n"):
            text = text[: text.rfind(b"\n") + 1]
        if not text:
            raise KallsymsError("/proc/kallsyms lists no kernel symbols")
        self._text = text

    def _line(self, start: int) -> tuple[int, str, str, int]:
        """(address, type, name, next line start) of the line at ``start``."""
        end = self._text.index(b"\n", start)
        parts = self._text[start:end].split(b" ")
        if len(parts) != 3 or len(parts[1]) != 1:
            raise KallsymsError(f"/proc/kallsyms line at byte {start} is not 'address type name'")
        try:
            address = int(parts[0], 16)
        except ValueError:
            raise KallsymsError(f"/proc/kallsyms address {parts[0]!r} is not hex") from None
        return address, parts[1].decode(), parts[2].decode(errors="replace"), end + 1

    def _symbol(self, start: int) -> KallsymsSymbol:
        address, kind, name, nxt = self._line(start)
        size = 0
        if nxt < len(self._text):
            size = self._line(nxt)[0] - address
            if not 0 <= size < MAX_SYMBOL_SIZE:
                size = 0
        return KallsymsSymbol(name, address, size, kind, start)

    def lookup(self, name: str) -> list[KallsymsSymbol]:
        """Every line naming ``name``, in file order."""
        needle = b" " + name.encode() + b"\n"
        out = []
        at = self._text.find(needle)
        while at >= 0:
            start = self._text.rfind(b"\n", 0, at) + 1
            if at - start >= 2 and self._text[at - 2 : at - 1] == b" ":
                out.append(self._symbol(start))
            at = self._text.find(needle, at + 1)
        return out

    def with_prefix(self, prefix: str) -> list[KallsymsSymbol]:
        """Every line whose symbol name starts with ``prefix``, in file order."""
        needle = b" " + prefix.encode()
        out = []
        at = self._text.find(needle)
        while at >= 0:
            start = self._text.rfind(b"\n", 0, at) + 1
            end = self._text.find(b"\n", at)
            line = self._text[at : end if end >= 0 else len(self._text)]
            # the name is the line's third field; "NAME\t[MODULE]" is a module's symbol,
            # left out as lookup() and drgn leave it out
            if at - start >= 2 and self._text[at - 2 : at - 1] == b" " and b"\t" not in line:
                out.append(self._symbol(start))
            at = self._text.find(needle, at + 1)
        return out

    def at_address(self, address: int) -> KallsymsSymbol | None:
        """The symbol containing ``address``: bisection over byte positions, each
        probe reading the line it lands in."""
        text = self._text
        lo, hi = 0, len(text)  # invariant: line starts in [lo, hi) are candidates
        best = -1
        for _ in range(128):  # bisection of at most 2**64 bytes: bounded
            if lo >= hi:
                break
            mid = text.rfind(b"\n", 0, (lo + hi) // 2) + 1
            if mid < lo:
                mid = lo
            here, _, _, nxt = self._line(mid)
            if here <= address:
                best, lo = mid, nxt
            else:
                hi = mid
        else:
            raise KallsymsError("/proc/kallsyms is not in address order")
        if best < 0:
            return None
        sym = self._symbol(best)
        return sym if sym.address <= address < sym.address + sym.size else None

    def __iter__(self) -> Iterator[KallsymsSymbol]:
        at = 0
        while at < len(self._text):
            yield self._symbol(at)
            at = self._text.index(b"\n", at) + 1
