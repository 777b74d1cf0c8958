# SPDX-License-Identifier: GPL-2.0-or-later
"""
kcore_pack
----------

A drgn :class:`~drgn.Program` over the pieces of ``/proc/kcore`` that board
packs carry, so the drgn collectors (reserved_mem, memblock, CMA, the printk
ring) run on a board's packs unchanged.

- Memory: each pack member ``kcore/<vaddr>`` holds the kernel's virtual
  memory from ``vaddr`` on, cut from /proc/kcore by the board's ``dd``; the boot
  FDT blob is the pack's ``sys/firmware/fdt``, which drivers/of/fdt.c
  ``of_fdt_raw_init()`` exports from ``initial_boot_params`` with
  ``fdt_totalsize()`` bytes: it is mapped at ``initial_boot_params`` (arm64
  keeps it in the fixmap, which /proc/kcore does not show).
- The kernel: the VMCOREINFO note of the pack's kcore head, given to drgn as
  a core file of notes only (drgn 0.0.31+ reads it as a Linux kernel).
- Symbols from the pack's /proc/kallsyms (addresses lifted by the script);
  types from its /sys/kernel/btf/vmlinux (:mod:`rmem_inspect.collect.kernel_btf`).

:func:`plan_round` finds what to cut next: it runs the collectors on the packs
with every address /proc/kcore could give reading as zeros and recorded; the
pages so recorded and not yet cut are the next round's. A zero pointer ends a
walk, so each round reaches one more level of pointers.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import drgn
from drgn import Program

from rmem_inspect.collect.kernel_btf import KernelSymbols, install
from rmem_inspect.errors import InputError
from rmem_inspect.formats.btf import Btf, BtfError
from rmem_inspect.formats.kcore import (
    KcoreError,
    KcoreHead,
    KcoreSegment,
    file_ranges,
    parse_kcore_head,
)
from rmem_inspect.formats.pack import Pack

__all__ = [
    "CUT_DIR",
    "KCORE_HEAD",
    "MAX_ROUNDS",
    "Round",
    "cuts_of",
    "kallsyms_symbols",
    "pack_program",
    "plan_round",
]

KCORE_HEAD = "proc/kcore.head"
CUT_DIR = "kcore"
BTF = "sys/kernel/btf/vmlinux"
FDT = "sys/firmware/fdt"
PAGE = 4096
#: Rounds past which planning stops: a collector that keeps asking for new pages
#: is walking a list, which the packs do not follow.
MAX_ROUNDS = 8
NO_PADDR = (1 << 64) - 1
#: ELF e_machine -> drgn architecture (64-bit kcores; the live tier runs arm64's)
ARCHES = {183: drgn.Architecture.AARCH64, 243: drgn.Architecture.RISCV64,
          62: drgn.Architecture.X86_64}  # fmt: skip


def cuts_of(pack: Pack) -> dict[int, bytes]:
    """vaddr -> bytes of each ``kcore/<hex vaddr>`` member."""
    out = {}
    for name, blob in pack.files.items():
        head, _, tail = name.partition("/")
        if head == CUT_DIR and tail:
            try:
                vaddr = int(tail, 16)
            except ValueError:
                continue
            if vaddr + len(blob) <= 1 << 64:  # a hostile name cannot wrap the address space
                out[vaddr] = blob
    return out


def kallsyms_symbols(text: str) -> list[drgn.Symbol]:
    """drgn symbols of the kernel image's /proc/kallsyms lines (modules' left out); a
    symbol's size is the distance to the next address, as drgn's own kallsyms loader has it."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue  # module symbols have a 4th field, [module]
        try:
            address = int(parts[0], 16)
        except ValueError:
            continue
        rows.append((address, parts[1], parts[2]))
    rows.sort()
    addrs = sorted({a for a, _t, _n in rows})
    nxt = {a: b for a, b in zip(addrs, addrs[1:], strict=False)}
    out = []
    for address, typ, name in rows:
        kind = drgn.SymbolKind.FUNC if typ in "tTwW" else drgn.SymbolKind.OBJECT
        binding = drgn.SymbolBinding.GLOBAL if typ.isupper() else drgn.SymbolBinding.LOCAL
        size = nxt.get(address, address) - address
        out.append(drgn.Symbol(name, address, size, binding, kind))
    return out


def _notes_core(head: KcoreHead, path: str) -> None:
    """An ELF core file of one PT_NOTE: the kcore head's VMCOREINFO note."""
    info = head.vmcoreinfo
    assert info is not None
    e = "<" if head.little else ">"
    name = b"VMCOREINFO\0"
    desc = info + b"\0"
    note = struct.pack(e + "III", len(name), len(desc), 0)
    note += name + bytes(-len(name) % 4) + desc + bytes(-len(desc) % 4)
    ident = b"\x7fELF" + bytes([2, 1 if head.little else 2, 1]) + bytes(9)
    ehdr = ident + struct.pack(e + "HHIQQQIHHHHHH", 4, head.machine, 1, 0, 64, 0, 0, 64, 56,
                               1, 0, 0, 0)  # fmt: skip
    phdr = struct.pack(e + "IIQQQQQQ", 4, 0, 120, 0, 0, len(note), len(note), 4)
    with open(path, "wb") as f:
        f.write(ehdr + phdr + note)


def _reader(blob: bytes) -> Callable[[int, int, int, bool], bytes]:
    return lambda address, count, offset, physical: blob[offset : offset + count]


def kcore_head(pack: Pack) -> KcoreHead:
    """The pack's /proc/kcore head. InputError when there is none or it is unusable."""
    data = pack.files.get(KCORE_HEAD)
    if data is None:
        why = [
            line.partition("\t")[2]
            for line in (pack.text("rmem/missing") or "").splitlines()
            if line.startswith("/proc/kcore\t")
        ]
        raise InputError(
            "the packs hold no /proc/kcore head (proc/kcore.head)"
            + (f": the board said /proc/kcore {why[0]}" if why else "")
        )
    try:
        head = parse_kcore_head(data)
    except KcoreError as e:
        raise InputError(f"the packs' /proc/kcore head is not usable: {e}") from None
    if head.vmcoreinfo is None:
        raise InputError("the packs' /proc/kcore head has no VMCOREINFO note")
    return head


def _has_paddr(seg: KcoreSegment) -> bool:
    # fs/proc/kcore.c: p_paddr is __pa() for KCORE_RAM, __pa_symbol() for KCORE_TEXT,
    # (elf_addr_t)-1 for the rest
    return seg.paddr != NO_PADDR


def pack_program(pack: Pack, recorded: list[tuple[int, int, bool]] | None = None) -> Program:
    """A drgn program over the packs' kcore cuts, kallsyms and BTF.

    ``recorded``: planning; addresses /proc/kcore holds but no pack does read as zeros
    and their ranges are appended to this list.
    :raises InputError: no kcore head, kallsyms without addresses, no or invalid BTF.
    """
    head = kcore_head(pack)
    kallsyms = pack.text("proc/kallsyms") or ""
    symbols = kallsyms_symbols(kallsyms)
    if not symbols or all(s.address == 0 for s in symbols):
        raise InputError("the packs' /proc/kallsyms has no addresses (kptr_restrict)")
    if not any(s.name == "memblock" for s in symbols):
        release = (pack.text("rmem/uname") or "unknown").split()[0]
        raise InputError(
            f"the kallsyms of kernel {release} lists no data symbols (memblock, reserved_mem: "
            "the kernel was built without CONFIG_KALLSYMS_ALL), so there are no addresses "
            "to cut /proc/kcore at"
        )
    blob = pack.files.get(BTF)
    if blob is None:
        raise InputError("the packs hold no BTF (/sys/kernel/btf/vmlinux)")
    try:
        btf = Btf(blob)
    except BtfError as e:
        raise InputError(f"the packs' BTF is not valid: {e}") from None
    platform = drgn.Platform(
        ARCHES.get(head.machine, drgn.Architecture.UNKNOWN),
        drgn.PlatformFlags.IS_64_BIT
        | (drgn.PlatformFlags.IS_LITTLE_ENDIAN if head.little else drgn.PlatformFlags(0)),
    )
    prog = Program(platform)
    fd, path = tempfile.mkstemp(prefix="rmem-kcore-", suffix=".core")
    os.close(fd)
    try:
        _notes_core(head, path)
        prog.set_core_dump(path)  # drgn keeps the file open; its name can go
    except (drgn.MissingDebugInfoError, ValueError, OSError) as e:
        raise InputError(
            f"drgn {drgn.__version__} cannot read the packs' VMCOREINFO: {e}"
        ) from None
    finally:
        os.unlink(path)
    if recorded is not None:

        def zeros(address: int, count: int, offset: int, physical: bool) -> bytes:
            recorded.append((address, count, physical))
            return bytes(count)

        for seg in head.segments:
            prog.add_memory_segment(seg.vaddr, seg.size, zeros)
            if _has_paddr(seg):
                prog.add_memory_segment(seg.paddr, seg.size, zeros, physical=True)
    for vaddr, data in sorted(cuts_of(pack).items()):
        if not data:
            continue
        prog.add_memory_segment(vaddr, len(data), _reader(data))
        at = head.segment(vaddr)
        # the same bytes by physical address: drgn walks page tables physically
        if at is not None and _has_paddr(at):
            prog.add_memory_segment(at.paddr + vaddr - at.vaddr, len(data), _reader(data),
                                    physical=True)  # fmt: skip
    prog.register_symbol_finder("kallsyms", drgn.SymbolIndex(symbols), enable_index=0)
    info = KernelSymbols(symbols="kallsyms (board pack)", btf_source="/" + BTF + " (board pack)",
                         btf_bytes=len(blob))  # fmt: skip
    install(prog, btf, info)
    fdt = pack.files.get(FDT)
    try:
        ibp = prog["initial_boot_params"].value_()
    except (LookupError, drgn.FaultError, ValueError):
        ibp = 0
    if fdt and ibp and head.segment(ibp) is None:
        prog.add_memory_segment(ibp, len(fdt), _reader(fdt))
    return prog


def _collect(prog: Program) -> None:
    """What the report reads through drgn on packs (inspect()'s collectors but the walks
    of lists: the devicetree and devices, whose nodes the packs do not follow)."""
    from rmem_inspect.collect.boot_fdt import read_boot_fdt
    from rmem_inspect.collect.cma import read_cma_areas
    from rmem_inspect.collect.kmsg import read_kernel_log
    from rmem_inspect.collect.memblock import read_memblock
    from rmem_inspect.collect.reserved_mem import read_reserved_mem
    from rmem_inspect.collect.snapshot import kernel_info_of, walk_nomap
    from rmem_inspect.model import Snapshot

    errors: list[str] = []
    snap = Snapshot(kernel=kernel_info_of(prog))

    def rm() -> None:
        snap.reserved_mem = read_reserved_mem(prog)

    def fdt() -> None:
        snap.fdt = read_boot_fdt(prog, errors)

    def array_phys() -> None:
        # drgn 0.1+'s virt_to_phys() walks the page tables for reserved_mem's array;
        # older ones compute it: cut the tables whatever drgn plans
        from drgn.helpers.linux.mm import follow_phys

        if snap.reserved_mem is not None and snap.reserved_mem.array_address:
            follow_phys(prog["init_mm"].address_of_(), snap.reserved_mem.array_address)

    steps: list[Callable[[], object]] = [
        rm,
        lambda: read_memblock(prog),
        fdt,
        lambda: read_cma_areas(prog, errors),
        lambda: read_kernel_log(prog, errors),
        array_phys,
        lambda: walk_nomap(prog, snap),
    ]
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - zeros make collectors fail; the pages are noted
            pass


@dataclass
class Round:
    """The next round's cuts: ``(vaddr, file offset, length)``, page-aligned."""

    number: int
    cuts: list[tuple[int, int, int]] = field(default_factory=list)
    #: recorded reads /proc/kcore cannot give (outside its segments)
    unreachable: list[int] = field(default_factory=list)


def plan_round(pack: Pack) -> Round:
    """The pages the collectors read that the packs lack, as kcore file ranges."""
    recorded: list[tuple[int, int, bool]] = []
    head = kcore_head(pack)
    prog = pack_program(pack, recorded)
    _collect(prog)
    # A known pointee, cut at once: init_mm.pgd is swapper_pg_dir (mm/init-mm.c), the
    # top of every page-table walk; waiting for init_mm's cut would cost a round.
    for sym in prog.symbols("swapper_pg_dir"):
        recorded.append((sym.address, PAGE, False))
    have: set[int] = set()
    for vaddr, data in cuts_of(pack).items():
        have.update(range(vaddr // PAGE, (vaddr + len(data) + PAGE - 1) // PAGE))
    pages: set[int] = set()
    for address, count, physical in recorded:
        if physical:
            virt = head.virtual(address)
            if virt is None:
                continue
            address = virt
        pages.update(range(address // PAGE, (address + max(count, 1) + PAGE - 1) // PAGE))
    pages -= have
    number = 2 + len([n for n in pack.files if n.startswith("rmem/round")])
    plan = Round(number=number)
    runs: list[list[int]] = []
    for p in sorted(pages):
        if runs and runs[-1][1] == p:
            runs[-1][1] = p + 1
        else:
            runs.append([p, p + 1])
    for first, end in runs:
        try:
            plan.cuts.extend(file_ranges(head, first * PAGE, (end - first) * PAGE))
        except KcoreError:
            plan.unreachable.append(first * PAGE)
    return plan
