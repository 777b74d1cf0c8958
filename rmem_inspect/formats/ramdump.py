# SPDX-License-Identifier: GPL-2.0-or-later
"""
ramdump
-------

The pure parsers behind raw RAM dumps (a bootloader's download mode, a JTAG probe,
a hypervisor): which file holds which physical range.

- crash's bank list ``FILE@PADDR[,FILE@PADDR...]`` (crash's ``is_ramdump()`` in
  ramdump.c splits on ``,`` and ``@`` and reads PADDR with ``htoll()``: hexadecimal,
  ``0x`` optional);
- a Lauterbach TRACE32 script (``load.cmm``): ``Data.LOAD.Binary FILE ADDR [/options]``
  lines, any case and abbreviation (``d.load.binary``, ``D.LOAD.B``), ``;`` and ``//``
  comments, quoted names, an access class (``A:0x80000000``), ``ADDR--END`` and
  ``ADDR++SIZE`` ranges and ``/SKIP N``; numbers as TRACE32 reads them (``0x``
  hexadecimal, a trailing ``.`` decimal, bare digits hexadecimal); other commands
  are skipped;
- Qualcomm's ``dump_info.txt`` (QPST/PCAT): ``N 0xBASE SIZE DESCRIPTION... FILE`` lines,
  read as linux-ramdump-parser-v2 reads them (base hexadecimal, size decimal, the
  file name last);
- the VMCOREINFO text a kernel keeps in RAM.

Nothing here opens a file; every function takes text or bytes and raises
:class:`RamdumpFormatError` with one sentence naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "BankSpec",
    "RamdumpFormatError",
    "check_overlaps",
    "looks_like_bank_list",
    "parse_bank_list",
    "parse_dump_info",
    "parse_load_cmm",
    "parse_paddr",
    "parse_trace32_number",
    "parse_vmcoreinfo",
]

#: Physical addresses beyond 64 bits are not addresses.
ADDR_LIMIT = 1 << 64


class RamdumpFormatError(ValueError):
    """A bank list, load.cmm or dump_info.txt that cannot be read; one sentence."""


@dataclass(frozen=True)
class BankSpec:
    """One bank as a list or script names it, before the file is looked at."""

    #: The file as written (load.cmm / dump_info.txt: relative to that file's directory).
    path: str
    #: Physical address of the bank's first byte.
    paddr: int
    #: Bytes of the file skipped before the bank starts (TRACE32 ``/SKIP``).
    offset: int = 0
    #: The bank's size when the list says it (``ADDR--END``, ``ADDR++SIZE``,
    #: dump_info.txt); None: the rest of the file.
    size: int | None = None
    #: Line of the script it came from (1-based), for messages.
    line: int | None = None


def parse_paddr(text: str) -> int:
    """A physical address as crash reads it (``htoll()``): hexadecimal, ``0x`` optional."""
    t = text.strip()
    digits = t[2:] if t[:2].lower() == "0x" else t
    if not digits or not re.fullmatch(r"[0-9a-fA-F]+", digits):
        raise RamdumpFormatError(f"{text!r} is not a hexadecimal physical address")
    value = int(digits, 16)
    if value >= ADDR_LIMIT:
        raise RamdumpFormatError(f"{text!r} is beyond 64 bits")
    return value


def looks_like_bank_list(spec: str) -> bool:
    """Whether ``--vmcore`` names crash's ``FILE@PADDR`` list (an ``@`` with a
    hexadecimal address after it) rather than one file."""
    if "@" not in spec:
        return False
    first = spec.split(",", 1)[0]
    _, _, addr = first.rpartition("@")
    return bool(re.fullmatch(r"(0[xX])?[0-9a-fA-F]+", addr.strip()))


def parse_bank_list(spec: str) -> list[BankSpec]:
    """crash's ``FILE@PADDR[,FILE@PADDR...]``; the file may itself contain ``@``
    (the address is after the last one)."""
    out = []
    for i, part in enumerate(spec.split(","), 1):
        if not part.strip():
            raise RamdumpFormatError(f"bank {i} of {spec!r} is empty")
        path, at, addr = part.rpartition("@")
        if not at or not path:
            raise RamdumpFormatError(f"bank {i} ({part!r}) is not FILE@PADDR")
        try:
            out.append(BankSpec(path=path, paddr=parse_paddr(addr)))
        except RamdumpFormatError as e:
            raise RamdumpFormatError(f"bank {i} ({part!r}): {e}") from None
    return out


def parse_trace32_number(text: str) -> int:
    """A TRACE32 number: ``0x`` hexadecimal, ``0y`` binary, a trailing ``.`` decimal,
    bare digits hexadecimal (TRACE32's default radix)."""
    t = text.strip()
    try:
        if t[:2].lower() == "0x":
            value = int(t[2:], 16)
        elif t[:2].lower() == "0y":
            value = int(t[2:], 2)
        elif t.endswith(".") and t[:-1].isdigit():
            value = int(t[:-1], 10)
        elif re.fullmatch(r"[0-9a-fA-F]+", t):
            value = int(t, 16)
        else:
            raise ValueError(t)
    except ValueError:
        raise RamdumpFormatError(f"{text!r} is not a number") from None
    if not 0 <= value < ADDR_LIMIT:
        raise RamdumpFormatError(f"{text!r} is beyond 64 bits")
    return value


#: ``Data.LOAD.Binary``: ``D`` or ``Data``, ``LOAD``, then ``B`` up to ``Binary``.
_LOAD_BINARY = re.compile(r"(?i)^(d|data)\.load\.b(i|in|ina|inar|inary)?$")


def _tokens(line: str) -> list[str]:
    """Words of a PRACTICE line, ``"quoted names"`` kept whole, comments dropped."""
    out: list[str] = []
    i = 0
    while i < len(line):
        c = line[i]
        if c.isspace():
            i += 1
        elif c == ";" or line.startswith("//", i):
            break
        elif c == '"':
            end = line.find('"', i + 1)
            if end < 0:
                raise RamdumpFormatError("a quoted name has no closing quote")
            out.append(line[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < len(line) and not line[j].isspace() and line[j] != ";":
                j += 1
            out.append(line[i:j])
            i = j
    return out


def _trace32_address(text: str) -> tuple[int, int | None]:
    """``[CLASS:]ADDR``, ``ADDR--END`` or ``ADDR++SIZE`` -> (address, size or None)."""
    t = re.sub(r"^[A-Za-z]{1,8}:", "", text)  # access class: A:, AD:, ANSD:, ...
    if "--" in t:
        start, end = (parse_trace32_number(x) for x in t.split("--", 1))
        if end < start:
            raise RamdumpFormatError(f"range {text!r} ends before it starts")
        return start, end - start + 1
    if "++" in t:
        start, size = (parse_trace32_number(x) for x in t.split("++", 1))
        return start, size + 1  # TRACE32: ADDR++N covers N + 1 bytes
    return parse_trace32_number(t), None


def parse_load_cmm(text: str) -> list[BankSpec]:
    """The banks a Lauterbach script loads (``Data.LOAD.Binary`` lines, in order).

    Backslashes become ``/``; a file named with a drive letter (``C:\\dumps\\X.BIN``)
    keeps only its base name (the script's directory is searched). PRACTICE macros
    (``&name``) cannot be expanded here and are refused with the line.
    """
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        try:
            words = _tokens(raw)
        except RamdumpFormatError as e:
            raise RamdumpFormatError(f"line {n}: {e}") from None
        if not words or not _LOAD_BINARY.match(words[0]):
            continue
        # FILE and ADDRESS come first, options after them (FILE may be an absolute
        # path, which starts with "/" like an option)
        args = words[1:3]
        if len(args) < 2 or args[1].startswith("/"):
            raise RamdumpFormatError(
                f"line {n} ({raw.strip()!r}) names no file and address (Data.LOAD.Binary "
                "FILE ADDRESS)"
            )
        name = args[0]
        if "&" in name or "&" in args[1]:
            raise RamdumpFormatError(
                f"line {n} ({raw.strip()!r}) uses a PRACTICE macro (&...): write the file "
                "name and address out"
            )
        name = name.replace("\\", "/")
        if re.match(r"^[A-Za-z]:/", name):
            name = name.rsplit("/", 1)[-1]
        try:
            paddr, size = _trace32_address(args[1])
            offset = 0
            opts = words[3:]
            for k, w in enumerate(opts):
                if w.lower() == "/skip":
                    if k + 1 >= len(opts):
                        raise RamdumpFormatError("/SKIP needs a byte count")
                    offset = parse_trace32_number(opts[k + 1])
        except RamdumpFormatError as e:
            raise RamdumpFormatError(f"line {n} ({raw.strip()!r}): {e}") from None
        if not name:
            raise RamdumpFormatError(f"line {n} ({raw.strip()!r}) names an empty file")
        out.append(BankSpec(path=name, paddr=paddr, offset=offset, size=size, line=n))
    return out


def parse_dump_info(text: str) -> list[BankSpec]:
    """Qualcomm's ``dump_info.txt``: ``N 0xBASE SIZE DESCRIPTION... FILE`` per file.
    Lines that do not look like that (headers) are skipped."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if len(words) < 4 or not re.fullmatch(r"0[xX][0-9a-fA-F]+", words[1]):
            continue
        if not words[2].isdigit():
            raise RamdumpFormatError(
                f"line {n} ({raw.strip()!r}): size {words[2]!r} is not decimal"
            )
        paddr = int(words[1], 16)
        if paddr >= ADDR_LIMIT:
            raise RamdumpFormatError(f"line {n} ({raw.strip()!r}): base beyond 64 bits")
        out.append(BankSpec(path=words[-1], paddr=paddr, size=int(words[2]), line=n))
    return out


def check_overlaps(banks: list[tuple[str, int, int]]) -> None:
    """Refuse banks (name, paddr, size) that claim the same physical bytes."""
    spans = sorted((p, p + s, name) for name, p, s in banks if s > 0)
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:], strict=False):
        if b0 < a1:
            raise RamdumpFormatError(
                f"banks {an} ({a0:#x}..{a1 - 1:#x}) and {bn} ({b0:#x}..{b1 - 1:#x}) overlap: "
                "each physical address must come from one file; check the bases"
            )


def parse_vmcoreinfo(data: bytes) -> dict[str, str]:
    """``KEY=VALUE`` lines of VMCOREINFO text (up to the first NUL)."""
    text = data.split(b"\0", 1)[0].decode("ascii", errors="replace")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
