# SPDX-License-Identifier: GPL-2.0-or-later
"""
checks
------

Pure functions from a :class:`~rmem_inspect.model.Snapshot` to findings. They
never touch drgn, so they run the same on a dump, a live kernel or a JSON
snapshot. Each finding code is one predicate over the snapshot (several may
hold for one region: a dynamic region the kernel could not allocate is both
RMEM-DROPPED, absent from ``reserved_mem``, and RMEM-UNALLOCATED, without
memory), and each carries the evidence it was decided on.

The kernel behaviour encoded here is that of drivers/of/of_reserved_mem.c in
6.1 (static array), 6.12 (dynamic array) and 7.x (node ops); see SPEC §1.
Every pass is a sort or a sweep: O(n log n) in regions and memblock entries.
"""

from __future__ import annotations

import bisect
import gc
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rmem_inspect.model import (
    DtInfo,
    DtRegion,
    LogLine,
    MemblockRegion,
    ReservedMemState,
    RmemEntry,
    Snapshot,
)
from rmem_inspect.ranges import RangeSet, fmt_range, human_size

__all__ = [
    "CODES",
    "Finding",
    "RegionView",
    "Report",
    "run",
]

#: Every finding code with its default severity and meaning.
CODES: dict[str, tuple[str, str]] = {
    "RMEM-DROPPED": ("error", "okay DT region missing from reserved_mem"),
    "RMEM-UNALLOCATED": ("error", "dynamic region never got memory"),
    "RMEM-UNTRACKED": ("warning", "DT range reserved in memblock but not in reserved_mem"),
    "RMEM-NOT-RESERVED": ("error", "tracked region neither memblock-reserved nor NOMAP"),
    "RMEM-NOMAP-MISSING": ("error", "no-map region without MEMBLOCK_NOMAP"),
    "RMEM-NOMAP-MAPPED": ("error", "no-map region present in the linear map"),
    "RMEM-OVERLAP": ("warning", "two regions overlap"),
    "RMEM-ALLOC-RANGE": ("error", "dynamic region outside its alloc-ranges"),
    "RMEM-ALIGNMENT": ("warning", "dynamic region not aligned as required"),
    "RMEM-SIZE-MISMATCH": ("warning", "tracked base/size differs from the DT"),
    "RMEM-NO-INIT": ("warning", "compatible region no driver initialised"),
    "RMEM-STATIC-ARRAY": ("info", "kernel uses the fixed-size reserved_mem array"),
    "RMEM-ARRAY-NOT-DYNAMIC": ("error", "dynamic-capable kernel still uses the init array"),
    "RMEM-TEMP-ARRAY-LIVE": ("error", "init array not freed, or reserved_mem points into it"),
    "RMEM-COUNT-CORRUPT": ("error", "count outside 0..capacity, or unreadable entries"),
    "RMEM-CONSUMER-ORPHAN": ("error", "memory-region points at an untracked region"),
    "RMEM-CMA-MISSING": ("error", "reusable shared-dma-pool without a CMA area"),
    "RMEM-DISABLED": ("info", 'status = "disabled" node, skipped on purpose'),
    "RMEM-OUTSIDE-RAM": ("info", "region (partly) outside every memblock.memory bank"),
    "RMEM-CMA-CMDLINE": ("info", "linux,cma-default pool replaced by cma= on purpose"),
    "RMEM-DT-FORMAT": ("error", "/reserved-memory has cells/ranges the kernel rejects"),
    "RMEM-DT-DIVERGED": ("info", "the live devicetree differs from the boot FDT"),
    "RMEM-MEMBLOCK-UNAVAILABLE": ("warning", "memblock arrays freed or unreadable"),
    "RMEM-SOURCE-MISSING": ("info", "a source could not be read; checks skipped"),
}

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

#: Compatibles whose reservedmem init every kernel with the matching config has
#: (kernel/dma/contiguous.c, coherent.c, swiotlb.c). A region with one of these
#: and NULL ops was not initialised.
GENERIC_INIT_COMPATIBLES = ("shared-dma-pool", "restricted-dma-pool")
_GENERIC_INIT = frozenset(GENERIC_INIT_COMPATIBLES)
#: The statuses of an available node (DtRegion.available).
_AVAILABLE = ("okay", "ok")


@dataclass
class Finding:
    code: str
    severity: str
    region: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RegionView:
    """One region as every source sees it (an entry of the JSON ``regions``)."""

    name: str
    base: int | None
    size: int | None
    kind: str
    nomap: bool = False
    reusable: bool = False
    compatible: list[str] = field(default_factory=list)
    status: str = "okay"
    tracked: bool = False
    #: Covered by memblock.reserved or NOMAP memory (None: memblock not available).
    reserved: bool | None = None
    sources: list[str] = field(default_factory=list)
    #: ok, dropped, unallocated, untracked, overlap, disabled, ... (worst first).
    verdict: str = "ok"
    dt_index: int | None = None
    rmem_index: int | None = None
    log: list[str] = field(default_factory=list)


@dataclass
class Report:
    snapshot: Snapshot
    regions: list[RegionView]
    findings: list[Finding]
    #: Checks that could not run, with the source they lacked.
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def worst(self) -> str | None:
        sev = [f.severity for f in self.findings]
        for s in ("error", "warning", "info"):
            if s in sev:
                return s
        return None

    def exit_status(self) -> int:
        return 1 if any(f.severity in ("error", "warning") for f in self.findings) else 0


_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)


# --------------------------------------------------------------------------
# Kernel log attribution

_LOG_PATTERNS = {
    "not_enough": re.compile(r"not enough space for all defined regions(?:, skip '([^']+)')?"),
    "too_many_dynamic": re.compile(r"too many defined dynamic regions, skip '([^']+)'"),
    "alloc_failed": re.compile(r"failed to allocate memory for node '([^']+)'"),
    "reserve_failed": re.compile(r"failed to reserve memory for node '([^']+)'"),
    "match_fail": re.compile(r"node (\S+) compatible matching fail"),
    "array_alloc_failed": re.compile(r"Failed to allocate memory for reserved_mem array"),
    "invalid": re.compile(r"invalid (\S+) property in '([^']+)'"),
    "unsupported": re.compile(r"unsupported node format, ignoring"),
    "ignores": re.compile(r"ignores (\d+) regions in node '([^']+)'"),
    "only_first": re.compile(r"node '([^']+)' has (\d+) <base size> entries, only the first"),
    "overlap": re.compile(r"^(\S+) \((0x[0-9a-f]+)--(0x[0-9a-f]+)\) overlaps with (\S+) "),
    # arch/arm64/mm/init.c early_mem()
    "mem_limit": re.compile(r"^Memory limited to (\d+)MB"),
    # kernel/dma/contiguous.c rmem_cma_setup() (6.1, 6.12)
    "cma_bypass": re.compile(r"Reserved memory: bypass (\S+) node, using cmdline CMA params"),
    # kernel/dma/contiguous.c __rmem_cma_verify_node() (7.x)
    "cma_skip": re.compile(r'Skipping dt linux,cma-default node in favor for "cma=" kernel'),
}


#: A literal each pattern's matches contain: most lines contain none, and a substring
#: test is much cheaper than a regex search.
_LOG_LITERALS = {
    "not_enough": "not enough space for all defined regions",
    "too_many_dynamic": "too many defined dynamic regions, skip '",
    "alloc_failed": "failed to allocate memory for node '",
    "reserve_failed": "failed to reserve memory for node '",
    "match_fail": " compatible matching fail",
    "array_alloc_failed": "Failed to allocate memory for reserved_mem array",
    "invalid": " property in '",
    "unsupported": "unsupported node format, ignoring",
    "ignores": " regions in node '",
    "only_first": " <base size> entries, only the first",
    "overlap": ") overlaps with ",
    "mem_limit": "Memory limited to ",
    "cma_bypass": "Reserved memory: bypass ",
    "cma_skip": "Skipping dt linux,cma-default node",
}

#: A run of node-name characters: a token of a log line that may name a region.
_TOKEN = re.compile(r"[\w@,.\-+]+")
#: The same run without trailing ",.-" (a name closing a sentence or a list). A
#: token names a region as is or trimmed so; when no region's name ends in one of
#: those characters, the trimmed form is the only one that can match, and this
#: pattern yields it directly.
_TRIMMED_TOKEN = re.compile(r"[\w@,.\-+]*[\w@+]")
#: For an ASCII log: bytes.translate() table that turns every byte but the name
#: characters and the line feed into a space, and the trailing ",.-" of a token,
#: once what followed it is a space.
_SPACE_NON_NAME = bytes(
    c if chr(c).isalnum() and c < 0x80 or chr(c) in "_@,.-+\n" else 0x20 for c in range(256)
)
_TRAILING_PUNCT = re.compile(r"[,.\-]+ ")
#: Both again for an ASCII log (where \w is [0-9A-Za-z_]): they match faster.
_TOKEN_ASCII = re.compile(_TOKEN.pattern, re.ASCII)
_TRIMMED_TOKEN_ASCII = re.compile(_TRIMMED_TOKEN.pattern, re.ASCII)


class LogIndex:
    """Kernel log lines by the region they name, and by kind of event."""

    def __init__(self, log: list[LogLine] | None, names: Iterable[str]) -> None:
        self.available = log is not None
        self.lines = log or []
        self.by_region: dict[str, list[str]] = {}
        self.events: dict[str, list[re.Match[str]]] = {k: [] for k in _LOG_PATTERNS}
        self.event_lines: dict[str, list[str]] = {k: [] for k in _LOG_PATTERNS}
        #: (kind, group) -> group value -> lines, built on first use by named().
        self._named: dict[tuple[str, int], dict[str | None, list[str]]] = {}
        known = set(names)
        texts = [line.text for line in self.lines]
        # Only the kinds of event whose literal is somewhere in the log are looked for
        # line by line: most logs have none of them, and one substring search over
        # the whole log costs less than eleven per line.
        whole = "\n".join(texts)
        for k, pat in _LOG_PATTERNS.items():
            literal = _LOG_LITERALS[k]
            if literal in whole:
                events, event_lines = self.events[k], self.event_lines[k]
                for text in texts:
                    if literal in text:
                        m = pat.search(text)
                        if m:
                            events.append(m)
                            event_lines.append(text)
        # Attribute each line to the regions it names: tokenise it once and look the
        # tokens up, so the cost is linear in log size, not log x regions.
        by_region = self.by_region
        if any(not n or n[-1] in ",.-" for n in known):
            self._attribute_untrimmed(texts, known)
            return
        named_in = known.intersection
        if whole.isascii() and whole.count("\n") == len(texts) - 1:
            # An ASCII log, a line a record: tokenise it all at once. Every byte that
            # is not a name character becomes a space (C loops over the whole log),
            # then trailing ",.-" go; what is left splits into each line's tokens.
            spaced = (" \n".join(texts) + " ").encode().translate(_SPACE_NON_NAME).decode()
            # blanking ", " ". " "- " clears most trailing punctuation at the cost of
            # a memchr-speed scan each; the regex (a step per byte) finishes the rare
            # runs such as "...", that one pass leaves a mark of
            spaced = spaced.replace(", ", "  ").replace(". ", "  ").replace("- ", "  ")
            if ", " in spaced or ". " in spaced or "- " in spaced:
                spaced = _TRAILING_PUNCT.sub(" ", spaced)
            per_line = zip(texts, map(str.split, spaced.split("\n")), strict=True)
        else:
            tokens = (_TRIMMED_TOKEN_ASCII if whole.isascii() else _TRIMMED_TOKEN).findall
            per_line = zip(texts, map(tokens, texts), strict=True)
        for text, toks in per_line:
            for cand in named_in(toks):
                lines = by_region.get(cand)
                if lines is None:
                    by_region[cand] = [text]
                else:
                    lines.append(text)

    def _attribute_untrimmed(self, texts: list[str], known: set[str]) -> None:
        """Attribution when some region's name ends in ",", "." or "-": every token
        is looked up as is and without its trailing ",.-:"."""
        by_region = self.by_region
        for text in texts:
            toks = (_TOKEN_ASCII if text.isascii() else _TOKEN).findall(text)
            hits = known.intersection(toks)
            for tok in toks:
                if tok[-1] in ",.-:":
                    stripped = tok.rstrip(",.-:")
                    if stripped in known:
                        hits.add(stripped)
            for cand in hits:
                by_region.setdefault(cand, []).append(text)

    def named(self, kind: str, name: str, group: int = 1) -> list[str]:
        """Lines of event ``kind`` whose ``group`` is ``name`` (an index built once per
        kind and group, so that asking for every region stays linear)."""
        index = self._named.get((kind, group))
        if index is None:
            index = self._named[(kind, group)] = {}
            for m, text in zip(self.events[kind], self.event_lines[kind], strict=True):
                try:
                    key = m.group(group)
                except IndexError:
                    continue
                index.setdefault(key, []).append(text)
        lines = index.get(name)
        return list(lines) if lines else []


# --------------------------------------------------------------------------
# The checks


class _Ctx:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.findings: list[Finding] = []
        self.skipped: dict[str, str] = {}
        self.dt: DtInfo | None = snap.fdt or snap.dt
        rm = snap.reserved_mem
        self.entries: list[RmemEntry] = [e for e in (rm.entries if rm else [])]
        self.by_name: dict[str, RmemEntry] = {}
        for e in self.entries:
            if e.name is not None and e.name not in self.by_name:
                self.by_name[e.name] = e
        mb = snap.memblock
        self.memblock_ok = mb is not None and mb.available
        self.rm_trusted = rm is not None and _rm_trusted(rm)
        #: reserved_mem rebuilt from the kernel log (collect/sysfs.py), not read.
        self.derived = rm is not None and rm.ops_layout == "log"
        nomap_bit = (mb.flag_values.get("MEMBLOCK_NOMAP", 4) if mb else 4) or 4
        self.nomap_bit = nomap_bit
        if mb is not None and self.memblock_ok:
            self.reserved = RangeSet.of_memblock(mb.reserved)
            self.nomap = RangeSet.of_memblock(mb.memory, nomap_bit)
            self.covered = self.reserved.union(self.nomap)
            #: RAM as the kernel saw it: every memblock.memory region, NOMAP or not.
            self.memory = RangeSet.of_memblock(mb.memory)
        else:
            self.reserved = self.nomap = self.covered = self.memory = RangeSet([])
        #: Why the kernel rejects /reserved-memory as a whole (empty: it does not).
        self.rejected_root = _rejected_root(self.dt)
        #: Each DT region with its kind, availability and reg ranges, worked out once
        #: for every pass (properties and lists cost per call, and 10,000 regions add up).
        self.regions: list[tuple[DtRegion, str, bool, list[tuple[str, int, int]]]] = []
        add = self.regions.append
        for r in self.dt.regions if self.dt else ():
            reg = r.reg
            # DtRegion.kind and .available, inlined (property calls, 10,000 times over)
            if reg:
                add(
                    (
                        r,
                        "static",
                        r.status in _AVAILABLE,
                        [(r.name, reg[0][0], reg[0][1])] if len(reg) == 1 else _dt_ranges(r),
                    )
                )
            else:
                add((r, "dynamic" if r.size is not None else "invalid", r.status in _AVAILABLE, []))
        names = [r.name for r in self.dt.regions] if self.dt else []
        #: Names of the devicetree's regions.
        self.dt_names = dt_names = set(names)
        names += [e.name for e in self.entries if e.name and e.name not in dt_names]
        self.log = LogIndex(snap.log, names)
        #: Region starts of memblock.memory and .reserved, built once for evidence lookups.
        self._starts: dict[str, list[int]] = {}

    def add(
        self, code: str, region: str | None, message: str, severity: str | None = None, **ev: Any
    ) -> None:
        sev = severity or CODES[code][0]
        self.findings.append(Finding(code, sev, region, message, _jsonable(ev)))

    def memblock_region_evidence(self, base: int, size: int) -> list[str]:
        mb = self.snap.memblock
        if mb is None:
            return []
        out = []
        for kind, regions in (("memory", mb.memory), ("reserved", mb.reserved)):
            if kind not in self._starts:
                self._starts[kind] = [r.base for r in regions]
            out += _overlapping(kind, regions, base, size, self._starts[kind])
        return out[:8]


def _overlapping(
    kind: str,
    regions: list[MemblockRegion],
    base: int,
    size: int,
    starts: list[int] | None = None,
) -> list[str]:
    if starts is None:
        starts = [r.base for r in regions]
    i = max(0, bisect.bisect_right(starts, base) - 1)
    out = []
    while i < len(regions) and regions[i].base < base + size:
        r = regions[i]
        if r.base + r.size > base:
            out.append(f"memblock.{kind} {fmt_range(r.base, r.size)} {'|'.join(r.flag_names)}")
        i += 1
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items() if x is not None and x != []}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def _dt_ranges(r: DtRegion) -> list[tuple[str, int, int]]:
    """(name, base, size) of each reg entry; extra entries get name[i]."""
    if len(r.reg) == 1:
        return [(r.name, r.reg[0][0], r.reg[0][1])]
    return [(r.name if i == 0 else f"{r.name}[{i}]", b, s) for i, (b, s) in enumerate(r.reg)]


def _rejected_root(dt: DtInfo | None) -> list[str]:
    """
    What makes the kernel ignore the whole /reserved-memory node:
    __reserved_mem_check_root() (drivers/of/fdt.c up to 6.11, of_reserved_mem.c from
    6.12 on; the same in every generation) wants #size-cells and #address-cells equal
    to the root's and a ``ranges`` property. When it fails, fdt_scan_reserved_mem()
    logs "Reserved memory: unsupported node format, ignoring" and returns: nothing
    is reserved, marked no-map or saved, and the late scan refuses the node again.
    """
    if dt is None or not dt.has_reserved_memory:
        return []
    bad = []
    if dt.reserved_memory_address_cells != dt.root_address_cells:
        bad.append(
            f"#address-cells {dt.reserved_memory_address_cells} (root: {dt.root_address_cells})"
        )
    if dt.reserved_memory_size_cells != dt.root_size_cells:
        bad.append(f"#size-cells {dt.reserved_memory_size_cells} (root: {dt.root_size_cells})")
    if not dt.reserved_memory_has_ranges:
        bad.append("no ranges property")
    return bad


#: What RMEM-DT-FORMAT and the drops it causes rest on.
REJECTED_ROOT_RULE = (
    "__reserved_mem_check_root() (drivers/of/of_reserved_mem.c; drivers/of/fdt.c up to "
    "6.11): #size-cells and #address-cells of /reserved-memory must equal the root's and "
    "ranges must be present, else the kernel ignores the whole node"
)


def _rm_trusted(rm: ReservedMemState) -> bool:
    """Whether reserved_mem as read can back per-region verdicts: the count is within
    0..capacity and every entry read. Otherwise RMEM-COUNT-CORRUPT says why, and
    "dropped", "never allocated", "untracked" or "orphan" would be guesses. An array
    rebuilt from the kernel log (collect/sysfs.py) is judged by its own rules."""
    if rm.ops_layout == "log":
        return True
    if rm.count is None or rm.count < 0:
        return False
    if rm.capacity is not None and rm.count > rm.capacity:
        return False
    if rm.layout == "static-array" and rm.count > rm.max_regions:
        return False
    return not any(e.error for e in rm.entries)


def _check_sources(c: _Ctx) -> None:
    for source, why in sorted(c.snap.missing.items()):
        c.add("RMEM-SOURCE-MISSING", None, f"{source} could not be read: {why}", source=source)
    if c.snap.memblock is None:
        c.skipped["RMEM-NOT-RESERVED, RMEM-NOMAP-MISSING, RMEM-UNTRACKED"] = "memblock"
    elif not c.snap.memblock.available:
        c.add(
            "RMEM-MEMBLOCK-UNAVAILABLE",
            None,
            c.snap.memblock.note or "memblock arrays are not valid after boot on this kernel",
        )
        c.skipped["RMEM-NOT-RESERVED, RMEM-NOMAP-MISSING, RMEM-UNTRACKED"] = "memblock (freed)"
    if c.snap.linear_map is None:
        c.skipped["RMEM-NOMAP-MAPPED"] = "page tables"
    if c.dt is None:
        c.skipped["RMEM-DROPPED, RMEM-CONSUMER-ORPHAN, per-region checks"] = "devicetree"
    if c.snap.reserved_mem is None:
        c.skipped["RMEM-DROPPED, RMEM-COUNT-CORRUPT, array checks"] = "reserved_mem"
    elif not c.rm_trusted:
        c.skipped[
            "RMEM-DROPPED, RMEM-UNALLOCATED, RMEM-UNTRACKED, RMEM-CMA-MISSING, "
            "RMEM-CONSUMER-ORPHAN, per-region checks"
        ] = "reserved_mem (corrupt: see RMEM-COUNT-CORRUPT)"
    elif c.derived:
        c.skipped[
            "RMEM-NO-INIT (ops), RMEM-ARRAY-NOT-DYNAMIC, RMEM-TEMP-ARRAY-LIVE, RMEM-COUNT-CORRUPT, "
            "placement of dynamic regions the log does not place"
        ] = "reserved_mem in kernel memory (rebuilt from the kernel log)"
    if c.snap.cma is None:
        c.skipped["RMEM-CMA-MISSING"] = "CMA areas"


def _check_array(c: _Ctx) -> None:
    rm = c.snap.reserved_mem
    if rm is None:
        return
    ev: dict[str, Any] = {
        "layout": rm.layout,
        "count": rm.count,
        "capacity": rm.capacity,
        "array": f"{rm.array_address:#x}",
        "entry_size": rm.entry_size,
    }
    if c.snap.source.get("symbol_evidence"):
        # read without a vmlinux: how the statics (reserved_mem_count) were located
        ev["symbols"] = c.snap.source["symbol_evidence"]
    bad = []
    if rm.count is None:
        bad.append("reserved_mem_count is unreadable")
    elif rm.count < 0 or (rm.capacity is not None and rm.count > rm.capacity):
        bad.append(f"reserved_mem_count {rm.count} is outside 0..{rm.capacity}")
    if rm.capacity is not None and (rm.capacity < 0 or rm.capacity > 1 << 20):
        bad.append(f"capacity {rm.capacity} is absurd")
    if rm.layout == "static-array" and rm.count is not None and rm.count > rm.max_regions:
        bad.append(f"count {rm.count} exceeds the static array's {rm.max_regions} entries")
    unreadable = [e for e in rm.entries if e.error]
    if unreadable:
        bad.append(f"{len(unreadable)} entries unreadable")
    bad += rm.errors
    if bad and not c.derived:
        c.add(
            "RMEM-COUNT-CORRUPT",
            None,
            "reserved_mem cannot be trusted: " + "; ".join(bad) + "; entries read were capped.",
            errors=bad,
            unreadable=[f"[{e.index}] at {e.address:#x}: {e.error}" for e in unreadable[:16]],
            **ev,
        )
    wanted = _kernel_would_count(c)
    if rm.layout == "static-array":
        if wanted > rm.max_regions:
            c.add(
                "RMEM-STATIC-ARRAY",
                None,
                f"this kernel keeps reserved regions in a fixed array of {rm.max_regions} "
                f"entries but the devicetree defines {wanted}: {wanted - rm.max_regions} "
                "were dropped; move to Linux 6.12+ (dynamic array) or merge carveouts.",
                severity="error",
                dt_regions=wanted,
                log=c.log.event_lines["not_enough"][:3],
                log_count=len(c.log.event_lines["not_enough"]),
                **ev,
            )
        else:
            c.add(
                "RMEM-STATIC-ARRAY",
                None,
                f"this kernel keeps reserved regions in a fixed array of {rm.max_regions} "
                f"entries; {wanted} are defined, so all fit.",
                dt_regions=wanted,
                **ev,
            )
        return
    # Dynamic layout.
    has_regions = wanted > 0
    ev |= {
        "init_array": f"{rm.init_array_address:#x}" if rm.init_array_address else None,
        "init_section": (
            f"{rm.init_section[0]:#x}..{rm.init_section[1]:#x}" if rm.init_section else None
        ),
        "init_array_readable": rm.init_array_readable,
        "init_array_pages_freed": f"{rm.init_array_pages_freed}/{rm.init_array_pages}",
        "pages": rm.init_array_page_evidence[:4],
    }
    # alloc_reserved_mem_array() (drivers/of/of_reserved_mem.c, 6.12+) allocates
    # total_reserved_mem_cnt entries, and nothing at all when that count is 0 ("if
    # (!total_reserved_mem_cnt) return 0;"): the early scan counted no valid region, or
    # rejected the whole node ("unsupported node format" sets the count to 0 from 7.2
    # on). reserved_mem then stays at the init array, with reserved_mem_count 0, on
    # purpose. Only a kernel that counted regions and kept the init array failed.
    counted_none = rm.capacity == 0
    if rm.points_to_init_array and has_regions and not counted_none:
        failed = c.log.event_lines["array_alloc_failed"][:2]
        if failed:
            why = "the kernel log says the allocation failed, and the kernel dropped every region"
        elif c.log.available:
            why = (
                "the kernel log has no 'Failed to allocate memory for reserved_mem array' "
                "line to say why"
            )
        else:
            why = "the kernel log was not available to say why"
        c.add(
            "RMEM-ARRAY-NOT-DYNAMIC",
            None,
            "reserved_mem still points at the init-time reserved_mem_array although the "
            f"kernel counted {rm.capacity} regions (total_reserved_mem_cnt) and the devicetree "
            f"defines {wanted}: the dynamic array was never allocated; {why}.",
            log=failed,
            rule="alloc_reserved_mem_array() allocates total_reserved_mem_cnt entries and "
            "repoints reserved_mem; it skips the allocation only when that count is 0",
            **ev,
        )
    if rm.points_to_init_array and (rm.count or 0) > 0:
        c.add(
            "RMEM-TEMP-ARRAY-LIVE",
            None,
            f"reserved_mem points into the freed init section ({rm.count} entries): lookups "
            "read memory the page allocator may have reused.",
            **ev,
        )
    if (
        rm.init_array_pages_freed is not None
        and rm.init_array_pages
        and rm.init_array_pages_freed < rm.init_array_pages
        and rm.init_array_in_init_section
    ):
        c.add(
            "RMEM-TEMP-ARRAY-LIVE",
            None,
            f"the init-time reserved_mem_array was not freed: "
            f"{rm.init_array_pages - rm.init_array_pages_freed} of {rm.init_array_pages} "
            "pages are still PG_reserved (free_initmem() did not run or failed).",
            **ev,
        )
    if rm.array_phys is not None and c.memblock_ok and not rm.points_to_init_array:
        size = (rm.capacity or 0) * rm.entry_size
        if size and not c.reserved.covers(rm.array_phys, size):
            c.add(
                "RMEM-COUNT-CORRUPT",
                None,
                f"the dynamic reserved_mem array at phys {rm.array_phys:#x} ({size} bytes) is "
                "not inside any memblock.reserved range: the pointer is wild.",
                **ev,
            )


def _kernel_would_count(c: _Ctx) -> int:
    """How many entries the kernel would need: okay nodes with valid reg or size."""
    if c.dt is None:
        return 0
    return sum(1 for r, kind, ok, _ in c.regions if ok and not r.invalid and kind != "invalid")


def _drop_cause(c: _Ctx, r: DtRegion, saved_rank: int | None) -> tuple[str, list[str]]:
    """Why the kernel did not track ``r``, with the log lines that say so."""
    rm = c.snap.reserved_mem
    log = c.log
    if c.rejected_root:
        return (
            "the kernel ignored the whole /reserved-memory node ("
            + "; ".join(c.rejected_root)
            + "), so nothing in it was reserved or tracked",
            log.event_lines["unsupported"][:2],
        )
    if r.invalid:
        return "invalid property: " + "; ".join(r.invalid), log.by_region.get(r.name, [])[:3]
    lines = log.named("too_many_dynamic", r.name)
    if lines:
        return (
            "more than 64 dynamic regions: the early scan skipped it and never allocated it",
            lines,
        )
    lines = log.named("alloc_failed", r.name)
    if lines:
        window = (
            ", ".join(fmt_range(b, s) for b, s in r.alloc_ranges)
            if r.alloc_ranges
            else "all memory"
        )
        return (
            f"allocation of {human_size(r.size or 0)} failed in {window}",
            lines,
        )
    lines = log.named("match_fail", r.name)
    if lines:
        return "its compatible's init failed; the kernel released the region", lines
    lines = log.named("not_enough", r.name)
    if lines:
        return f"reserved_mem array full ({rm.capacity if rm else '?'} entries)", lines
    if log.event_lines["array_alloc_failed"]:
        return (
            "the dynamic reserved_mem array could not be allocated; the kernel dropped every "
            "region",
            log.event_lines["array_alloc_failed"][:2],
        )
    if rm is not None and rm.layout == "static-array":
        if (rm.count or 0) >= rm.max_regions and (
            saved_rank is None or saved_rank >= rm.max_regions
        ):
            return (
                f"static reserved_mem array full: it holds {rm.max_regions} entries and this "
                f"node is number {saved_rank + 1 if saved_rank is not None else '?'} in "
                "devicetree order",
                log.event_lines["not_enough"][:1]
                + [f"({len(log.event_lines['not_enough'])} such lines)"],
            )
    # a dynamic array is sized to what the early scan counted, so count == capacity is its
    # usual state: "full" only when the kernel said so
    if log.event_lines["not_enough"]:
        return (
            f"reserved_mem array full ({rm.capacity if rm else '?'} entries)",
            log.event_lines["not_enough"][:2],
        )
    if not log.available:
        return "not tracked; the kernel log was not available to say why", []
    return "not tracked, and no kernel log line explains why", log.by_region.get(r.name, [])[:3]


def _check_regions(c: _Ctx, views: dict[str, RegionView]) -> None:
    dt = c.dt
    rm = c.snap.reserved_mem
    if dt is None:
        return
    if c.rejected_root:
        hit = [r.name for r, _, ok, _ in c.regions if ok]
        c.add(
            "RMEM-DT-FORMAT",
            "/reserved-memory",
            "the kernel ignores the whole /reserved-memory node: "
            + "; ".join(c.rejected_root)
            + f"; none of its {len(hit)} available regions is reserved or tracked: give it "
            "the root's #address-cells and #size-cells and an empty ranges.",
            problems=c.rejected_root,
            rule=REJECTED_ROOT_RULE,
            regions=hit[:16],
            log=c.log.event_lines["unsupported"][:2],
        )
    # Rank of each node among those the 6.1 kernel saves (okay nodes with reg or size).
    rank = 0
    consumers_of: dict[str, list[str]] = {}
    for con in (c.snap.dt or dt).consumers:
        for t in con.targets:
            if t:
                consumers_of.setdefault(t.rsplit("/", 1)[-1], []).append(con.path)
    by_name = c.by_name
    # Whether a tracked static region can be passed without _check_tracked() when its
    # view shows it reserved where the devicetree puts it (see there).
    quick = not c.derived and c.memblock_ok and not c.log.events["match_fail"]
    for r, kind, available, ranges in c.regions:
        if not available:
            c.add(
                "RMEM-DISABLED",
                r.name,
                f'{r.name} has status "{r.status}": the kernel skips it on purpose'
                + (
                    f"; {', '.join(consumers_of[r.name])} will get no memory from it."
                    if r.name in consumers_of
                    else "."
                ),
                status=r.status,
                consumers=consumers_of.get(r.name, []),
            )
            continue
        saved_rank = rank if (not r.invalid and kind != "invalid") else None
        if saved_rank is not None:
            rank += 1
        if rm is None:
            continue
        if r.cma_default and c.rm_trusted and _check_cma_cmdline(c, r, views):
            continue  # given way to cma= on purpose: nothing else to judge
        if not c.rm_trusted:
            # Not found in a reserved_mem that did not read: unknown, not "dropped".
            if r.name not in c.by_name and r.name in views:
                views[r.name].verdict = "unknown"
            continue
        e = by_name.get(r.name)
        if e is not None and len(ranges) == 1 and kind == "static":
            # The usual case, kept short: one reg entry, tracked.
            view = views[r.name]
            if (
                quick
                and view.reserved
                and view.base == e.base
                and view.size == e.size
                and not r.nomap
                and (e.ops is not None or _GENERIC_INIT.isdisjoint(r.compatible))
                and c.memory.covers(e.base, e.size)
            ):
                # tracked where the devicetree says, reserved, initialised (or needing
                # no init): nothing _check_tracked() could report
                view.tracked = True
            else:
                _check_tracked(c, r, kind, e, view)
            if r.reusable:
                _check_cma(c, r, e)
            continue
        if e is None:
            cause, lines = _drop_cause(c, r, saved_rank)
            reserved = None
            if kind == "static" and c.memblock_ok:
                reserved = c.covered.covers(r.reg[0][0], r.reg[0][1])
            c.add(
                "RMEM-DROPPED",
                r.name,
                f"{r.name} ({kind}, "
                f"{fmt_range(*r.reg[0]) if r.reg else human_size(r.size or 0)}) is "
                f"not in reserved_mem: {cause}; drivers looking it up get nothing.",
                cause=cause,
                log=lines,
                dt_index=r.index,
                memblock_reserved=reserved,
            )
            views[r.name].verdict = "dropped"
        # Extra reg entries: the kernel tracks only the first.
        for name, base, size in ranges[1:]:
            only = c.log.named("only_first", r.name) or c.log.named("ignores", r.name, 2)
            c.add(
                "RMEM-DROPPED",
                name,
                f"{name} {fmt_range(base, size)} is reg entry {name.rsplit('[', 1)[1][:-1]} of "
                f"{r.name}: the kernel tracks only a node's first reg entry.",
                cause="only the first reg entry of a node is tracked",
                log=only,
            )
            views[name].verdict = "dropped"
        # Memory for dynamic regions.
        if kind == "dynamic" and (e is None or e.size == 0):
            lines = c.log.named("alloc_failed", r.name) or c.log.named("too_many_dynamic", r.name)
            why = (
                "allocation failed"
                if c.log.named("alloc_failed", r.name)
                else (
                    "the kernel ignored the whole /reserved-memory node"
                    if c.rejected_root
                    else (
                        "it was never allocated (dropped before allocation)"
                        if e is None
                        else "its reserved_mem entry has size 0"
                    )
                )
            )
            c.add(
                "RMEM-UNALLOCATED",
                r.name,
                f"dynamic region {r.name} ({human_size(r.size or 0)}) has no memory: {why}; the "
                "carveout does not exist.",
                size=r.size,
                alignment=r.alignment,
                alloc_ranges=[fmt_range(b, s) for b, s in r.alloc_ranges],
                log=lines,
                entry=(f"[{e.index}] base {e.base:#x} size {e.size:#x}" if e else None),
            )
            views[r.name].verdict = "unallocated"
        # Static ranges reserved but not tracked.
        if c.memblock_ok and kind == "static":
            for i, (name, base, size) in enumerate(ranges):
                tracked = e is not None and i == 0
                if tracked or not size:
                    continue
                if c.covered.covers(base, size):
                    c.add(
                        "RMEM-UNTRACKED",
                        name,
                        f"{name} {fmt_range(base, size)} is reserved in memblock but not tracked "
                        "in reserved_mem: the memory is lost to the system and drivers "
                        "cannot look it up.",
                        memblock=c.memblock_region_evidence(base, size),
                    )
                    if views[name].verdict == "ok":
                        views[name].verdict = "untracked"
        if e is None:
            continue
        _check_tracked(c, r, kind, e, views[r.name])
        _check_cma(c, r, e)
    # Entries that match no DT region.
    dt_names = c.dt_names
    for e in c.entries:
        if e.name is not None and e.name not in dt_names and e.size and not e.error:
            _check_placement(c, e.name, e, nomap=False)


def _unplaced(c: _Ctx, e: RmemEntry) -> bool:
    """A log-derived entry whose placement the log does not give (base left 0)."""
    return c.derived and e.base == 0


def _check_tracked(c: _Ctx, r: DtRegion, kind: str, e: RmemEntry, view: RegionView) -> None:
    if c.derived and e.base == 0:  # _unplaced(), inlined: this runs for every region
        view.tracked = True  # placement not in the log: nothing to check it against
        return
    if kind == "static":
        base, size = r.reg[0]
        if (e.base, e.size) != (base, size):
            c.add(
                "RMEM-SIZE-MISMATCH",
                r.name,
                f"{r.name} is tracked at {fmt_range(e.base, e.size)} but the devicetree says "
                f"{fmt_range(base, size)}.",
                dt=fmt_range(base, size),
                reserved_mem=fmt_range(e.base, e.size),
            )
    elif kind == "dynamic" and e.size:
        if r.size is not None and e.size != r.size:
            c.add(
                "RMEM-SIZE-MISMATCH",
                r.name,
                f"{r.name} got {human_size(e.size)} but the "
                f"devicetree asks for {human_size(r.size)}.",
                dt_size=r.size,
                reserved_mem=fmt_range(e.base, e.size),
            )
        if r.alloc_ranges and not any(
            b <= e.base and e.base + e.size <= b + s for b, s in r.alloc_ranges
        ):
            c.add(
                "RMEM-ALLOC-RANGE",
                r.name,
                f"{r.name} was placed at {fmt_range(e.base, e.size)}, outside its alloc-ranges "
                f"{', '.join(fmt_range(b, s) for b, s in r.alloc_ranges)}.",
                alloc_ranges=[fmt_range(b, s) for b, s in r.alloc_ranges],
            )
        if r.alignment and e.base % r.alignment:
            c.add(
                "RMEM-ALIGNMENT",
                r.name,
                f"{r.name} at {e.base:#x} is not aligned to {r.alignment:#x} as its "
                "devicetree node requires.",
                alignment=r.alignment,
                base=e.base,
            )
    if e.size and c.memblock_ok:
        # _check_placement() says what is wrong; most regions are right: test here first
        # (the view already knows the coverage when it shows the entry's own placement)
        covered = (
            view.reserved
            if view.base == e.base and view.size == e.size and view.reserved is not None
            else c.covered.covers(e.base, e.size)
        )
        if not covered or (r.nomap and not c.nomap.covers(e.base, e.size)):
            _check_placement(c, r.name, e, nomap=r.nomap)
        if not c.memory.covers(e.base, e.size):
            _check_outside_ram(c, r.name, e, r.nomap)
    failed = c.log.named("match_fail", r.name) if c.log.events["match_fail"] else []
    if failed or (
        e.ops is None and e.size and not c.derived and not _GENERIC_INIT.isdisjoint(r.compatible)
    ):
        c.add(
            "RMEM-NO-INIT",
            r.name,
            f"{r.name} is compatible with {', '.join(r.compatible)} but no reserved-memory "
            "driver initialised it (ops is NULL"
            + ("; the kernel log says its init failed" if failed else "")
            + "): devices cannot use it.",
            ops=e.ops,
            log=failed,
        )
    view.tracked = True


def _check_placement(c: _Ctx, name: str, e: RmemEntry, nomap: bool) -> None:
    if not c.memblock_ok:
        return
    # early_init_dt_reserve_memory() (drivers/of/fdt.c up to 6.11, of_reserved_mem.c
    # from 6.12 on) never memblock_reserve()s a no-map range: it only
    # memblock_mark_nomap()s it, which flags the memory that exists and skips the rest
    # ("don't worry if the region isn't memory as it won't be mapped"). So only the
    # parts of a no-map region inside memblock.memory can be reserved or NOMAP.
    ram = c.memory.pieces(e.base, e.size) if nomap else [(e.base, e.size)]
    if not all(c.covered.covers(b, s) for b, s in ram):
        c.add(
            "RMEM-NOT-RESERVED",
            name,
            f"{name} {fmt_range(e.base, e.size)} is tracked but neither memblock-reserved nor "
            "no-map: the page allocator may hand its pages out.",
            memblock=c.memblock_region_evidence(e.base, e.size),
            log=c.log.named("match_fail", name),
        )
    if nomap and not all(c.nomap.covers(b, s) for b, s in ram):
        refused = c.log.named("reserve_failed", name)
        cause = (
            "the kernel refused the no-map with -EBUSY: the range was already memblock-reserved "
            "when the early scan reached it"
            if refused
            else None
        )
        c.add(
            "RMEM-NOMAP-MISSING",
            name,
            f"{name} has no-map in the devicetree but memblock.memory has no MEMBLOCK_NOMAP "
            f"over {fmt_range(e.base, e.size)}: the kernel maps it and may touch it"
            + (f" ({cause}{_reserved_first(c, name, e)})" if cause else "")
            + ".",
            memblock=c.memblock_region_evidence(e.base, e.size),
            cause=cause,
            reserved_before=_reserved_before(c, name, e) if cause else None,
            log=refused,
        )


def _reserved_before(c: _Ctx, name: str, e: RmemEntry) -> list[str]:
    """What memblock had reserved over ``e`` before the early scan reached its node:
    /memreserve/ entries (reserved before the scan up to 6.11, after it from 6.12 on:
    early_init_fdt_scan_reserved_mem() in drivers/of/fdt.c) and the static regions
    earlier in devicetree order (fdt_scan_reserved_mem() reserves in that order)."""
    out = []
    rm = c.snap.reserved_mem
    fdt = c.snap.fdt
    if fdt is not None and rm is not None and rm.layout == "static-array":
        for b, s in fdt.mem_reserve:
            if b < e.base + e.size and e.base < b + s:
                out.append(f"/memreserve/ {fmt_range(b, s)}")
    for r, kind, ok, ranges in c.regions:
        if r.name == name:
            break
        if ok and kind == "static" and not r.nomap:
            for n, b, s in ranges:
                if s and b < e.base + e.size and e.base < b + s:
                    out.append(f"{n} {fmt_range(b, s)}")
    return out


def _reserved_first(c: _Ctx, name: str, e: RmemEntry) -> str:
    first = _reserved_before(c, name, e)
    return f", by {', '.join(first[:3])}" if first else ""


def _check_outside_ram(c: _Ctx, name: str, e: RmemEntry, nomap: bool) -> None:
    """RMEM-OUTSIDE-RAM (info): a tracked region that is not all RAM. The kernel
    accepts such a no-map region on purpose (see _check_placement()); a mapped one is
    memblock_reserve()d all the same, and the page allocator never sees it."""
    inside = sum(s for _, s in c.memory.pieces(e.base, e.size))
    if inside == e.size:
        return
    part = "" if inside == 0 else f" ({human_size(e.size - inside)} of {human_size(e.size)})"
    mb = c.snap.memblock
    banks = RangeSet.of_memblock(mb.memory if mb else [])
    end = banks.ends[-1] if banks.ends else 0
    limit = _mem_limit(c.snap.kernel.cmdline)
    limited = c.log.event_lines["mem_limit"][-1:]
    why = ""
    if (limit or limited) and e.base + e.size > end:
        said = limit + " on the kernel command line" if limit else f"'{limited[0]}' (kernel log)"
        why = (
            f"; {said} cut memblock.memory at {end:#x} before the reserved-memory scan "
            "(arm64_memblock_init())"
        )
    c.add(
        "RMEM-OUTSIDE-RAM",
        name,
        f"{name} {fmt_range(e.base, e.size)} lies outside RAM{part}: no memblock.memory bank "
        f"covers it{why}; "
        + (
            "the kernel accepts a no-map region there on purpose and neither reserves nor "
            "marks it."
            if nomap
            else "memblock_reserve() records it all the same and the page allocator never "
            "sees it."
        ),
        memory=[fmt_range(b, end - b) for b, end in zip(banks.starts, banks.ends, strict=True)][:8],
        cmdline=limit or None,
        log=limited,
        rule=(
            "early_init_dt_reserve_memory(): a no-map range that is not memory is accepted "
            "(\"don't worry if the region isn't memory as it won't be mapped\")"
            if nomap
            else None
        ),
    )


_MEM_LIMIT = re.compile(r"(?:^|\s)(mem=\S+)")


def _mem_limit(cmdline: str | None) -> str:
    """The last ``mem=`` argument of the command line (early_mem() keeps the last)."""
    found = _MEM_LIMIT.findall(cmdline or "")
    return found[-1] if found else ""


def _check_cma(c: _Ctx, r: DtRegion, e: RmemEntry) -> None:
    if not (r.reusable and "shared-dma-pool" in r.compatible) or c.snap.cma is None:
        return
    if e.size and any(a.base == e.base for a in c.snap.cma):
        return
    if "CONFIG_CMA" in c.snap.kernel.features_missing:
        # RESERVEDMEM_OF_DECLARE(cma, "shared-dma-pool", rmem_cma_setup) is in
        # kernel/dma/contiguous.c, built only with CONFIG_DMA_CMA (which needs CMA):
        # __reserved_mem_init_node() finds no match ("compatible matching fail").
        c.add(
            "RMEM-CMA-MISSING",
            r.name,
            f"{r.name} is a reusable shared-dma-pool but this kernel is built without "
            "CONFIG_CMA (its debug info has no cma_areas): no CMA area can exist, the "
            "shared-dma-pool CMA setup is not in the kernel, so the node fails compatible "
            "matching; build the kernel with CONFIG_CMA and CONFIG_DMA_CMA, or drop the node.",
            cause="kernel built without CONFIG_CMA",
            cma_areas=[],
        )
        return
    c.add(
        "RMEM-CMA-MISSING",
        r.name,
        f"{r.name} is a reusable shared-dma-pool but no CMA area covers it.",
        cma_areas=[f"{a.name} {fmt_range(a.base, a.size)}" for a in c.snap.cma],
    )


def _cma_gave_way(c: _Ctx, r: DtRegion) -> tuple[list[str], str] | None:
    """
    Did ``r``, a linux,cma-default pool, give way to ``cma=`` on the command line? The
    kernel's rule (kernel/dma/contiguous.c, ``size_cmdline != -1``): on 6.1 and 6.12
    rmem_cma_setup() logs "Reserved memory: bypass %s node, using cmdline CMA params
    instead" and fails with -EBUSY, so fdt_init_reserved_mem() frees the pool's memory
    and keeps its entry without ops; on 7.x __rmem_cma_verify_node() logs 'Skipping dt
    linux,cma-default node in favor for "cma=" kernel param.' and the early scan never
    reserves it. (The log lines that say so, the cma= argument), or None.
    """
    lines = c.log.named("cma_bypass", r.name) + c.log.event_lines["cma_skip"][:1]
    found = re.findall(r"(?:^|\s)(cma=\S+)", c.snap.kernel.cmdline or "")
    arg = found[-1] if found else "cma="
    if lines:
        return lines, arg
    if not c.log.available and found:
        return [], arg  # the kernel's own predicate, from the command line
    return None


def _check_cma_cmdline(c: _Ctx, r: DtRegion, views: dict[str, RegionView]) -> bool:
    gave_way = _cma_gave_way(c, r)
    if gave_way is None:
        return False
    lines, arg = gave_way
    e = c.by_name.get(r.name)
    default = [a for a in c.snap.cma or [] if a.is_default]
    instead = (
        f"; the default CMA area is '{default[0].name}' "
        f"{fmt_range(default[0].base, default[0].size)}"
        f" from {arg}"
        if default
        else ""
    )
    if e is not None:
        what = (
            f"the kernel bypassed the devicetree's default CMA pool, returned its "
            f"{human_size(e.size)} to the page allocator "
            f"and kept its reserved_mem entry without ops"
        )
    else:
        what = "the kernel skipped the devicetree's default CMA pool and never reserved it"
    c.add(
        "RMEM-CMA-CMDLINE",
        r.name,
        f"{r.name} gave way to {arg} on the kernel command line, on purpose: {what}{instead}; "
        "drop cma= from the boot loader's command line to use the devicetree pool.",
        cmdline=arg,
        tracked=e is not None,
        entry=(f"[{e.index}] base {e.base:#x} size {e.size:#x} ops {e.ops}" if e else None),
        cma_areas=[f"{a.name} {fmt_range(a.base, a.size)}" for a in c.snap.cma or []],
        log=lines,
        rule="kernel/dma/contiguous.c: a linux,cma-default node gives way to cma= "
        "(size_cmdline != -1)",
    )
    if r.name in views:
        views[r.name].verdict = "skipped"
        views[r.name].tracked = e is not None
    return True


def _check_dropped_cma(c: _Ctx) -> None:
    """A reusable pool the kernel dropped has no CMA area either."""
    if c.dt is None or c.snap.cma is None or not c.rm_trusted:
        return
    for r in c.dt.regions:
        if r.reusable and r.available and "shared-dma-pool" in r.compatible:
            if r.name in c.by_name or (r.cma_default and _cma_gave_way(c, r) is not None):
                continue
            default = [a for a in c.snap.cma if a.is_default]
            c.add(
                "RMEM-CMA-MISSING",
                r.name,
                f"{r.name} is a reusable shared-dma-pool but the kernel dropped it, so no CMA "
                "area was created from it"
                + (
                    f"; the default CMA area is '{default[0].name}' "
                    f"{fmt_range(default[0].base, default[0].size)} instead"
                    + (" (from the kernel config, not the devicetree)" if r.cma_default else "")
                    if default
                    else ""
                )
                + ".",
                cma_areas=[f"{a.name} {fmt_range(a.base, a.size)}" for a in c.snap.cma],
            )


def _check_nomap_mapped(c: _Ctx) -> None:
    for lm in c.snap.linear_map or []:
        if lm.error:
            c.add(
                "RMEM-SOURCE-MISSING",
                lm.region,
                f"page tables over {lm.region} could not be walked: {lm.error}",
            )
        elif lm.mapped_pages:
            cause = None
            if c.rejected_root and lm.region not in c.by_name:
                cause = (
                    "the kernel ignored the whole /reserved-memory node, so no-map was never "
                    "applied"
                )
            elif c.log.named("reserve_failed", lm.region):
                cause = "the kernel refused its no-map with -EBUSY, see RMEM-NOMAP-MISSING"
            c.add(
                "RMEM-NOMAP-MAPPED",
                lm.region,
                f"{lm.region} is no-map but {lm.mapped_pages} of {lm.checked_pages} pages "
                f"checked are mapped in the kernel linear map at {lm.virt:#x}: speculative "
                "accesses can reach it" + (f"; {cause}." if cause else "."),
                cause=cause,
                virt=f"{lm.virt:#x}",
                first_mapped_phys=f"{lm.first_mapped:#x}" if lm.first_mapped is not None else None,
            )


def _check_overlaps(c: _Ctx, views: dict[str, RegionView]) -> None:
    """Sorted sweep over every placed region (tracked entries and DT static ranges)."""
    placed: dict[str, tuple[int, int]] = {}
    for _, _, available, ranges in c.regions:
        if available:
            for name, b, s in ranges:
                if s:
                    placed[name] = (b, s)
    derived = c.derived
    for e in c.entries:
        if e.name and e.size and not e.error and not (derived and e.base == 0):  # _unplaced()
            placed[e.name] = (e.base, e.size)
    items = [(b, b + s, n) for n, (b, s) in placed.items()]
    items.sort()
    ends = list(map(_SECOND, items))
    if all(map(operator.le, ends[:-1], map(_FIRST, items[1:]))):
        return  # each ends before the next starts: no region overlaps another
    active: list[tuple[int, str, int]] = []  # (end, name, base)
    reach = 0  # the largest end in active
    for base, end, name in items:
        if base >= reach:
            active = []  # the usual case: nothing still open overlaps this one
        else:
            active = [a for a in active if a[0] > base]
        for a_end, a_name, a_base in active:
            lines = [t for t in c.log.event_lines["overlap"] if a_name in t and name in t]
            c.add(
                "RMEM-OVERLAP",
                a_name,
                f"{a_name} {fmt_range(a_base, a_end - a_base)} overlaps {name} "
                f"{fmt_range(base, end - base)} by {human_size(min(a_end, end) - base)}.",
                other=name,
                log=lines,
            )
            for n in (a_name, name):
                if n in views and views[n].verdict == "ok":
                    views[n].verdict = "overlap"
        active.append((end, name, base))
        reach = max(reach, end)


def _check_consumers(c: _Ctx) -> None:
    dt = c.snap.dt or c.dt
    if dt is None or c.dt is None or not c.rm_trusted or not dt.consumers:
        return
    regions = {r.path: r for r in c.dt.regions}
    for con in dt.consumers:
        if con.status not in ("okay", "ok"):
            continue
        for i, (ph, target) in enumerate(zip(con.phandles, con.targets, strict=False)):
            label = con.names[i] if i < len(con.names) else str(i)
            if target is None:
                c.add(
                    "RMEM-CONSUMER-ORPHAN",
                    None,
                    f"{con.path} memory-region[{label}] is phandle {ph:#x}, which no node has.",
                    consumer=con.path,
                    index=i,
                )
                continue
            r = regions.get(target)
            if r is None or not r.available:
                continue  # not a carveout, or disabled (the kernel skips it quietly)
            e = c.by_name.get(r.name)
            if e is None or e.size == 0:
                c.add(
                    "RMEM-CONSUMER-ORPHAN",
                    r.name,
                    f"{con.path} memory-region[{label}] points at {r.name}, which "
                    + (
                        "the kernel does not track"
                        if e is None
                        else "the kernel tracks with size 0 (never allocated)"
                    )
                    + ": the device gets no memory from it.",
                    consumer=con.path,
                    index=i,
                    compatible=con.compatible,
                )


def _check_dt_diverged(c: _Ctx) -> None:
    a, b = c.snap.fdt, c.snap.dt
    if a is None or b is None:
        return

    def key(r: DtRegion) -> tuple[Any, ...]:
        return (r.name, tuple(r.reg), r.size, r.status, r.nomap, r.reusable)

    same = operator.attrgetter("name", "reg", "size", "status", "nomap", "reusable")
    if len(a.regions) == len(b.regions) and all(
        map(operator.eq, map(same, a.regions), map(same, b.regions))
    ):
        return  # the same regions in the same order (the usual case): no sets to build
    ka = {key(r) for r in a.regions}
    kb = {key(r) for r in b.regions}
    if ka != kb:
        c.add(
            "RMEM-DT-DIVERGED",
            None,
            "the unflattened devicetree's /reserved-memory differs from the boot FDT "
            "(an overlay or a run-time change): checks use the boot FDT.",
            only_boot=sorted(k[0] for k in ka - kb),
            only_live=sorted(k[0] for k in kb - ka),
        )


def _views(c: _Ctx) -> dict[str, RegionView]:
    """Each region as every source sees it, in devicetree order, then the entries
    no devicetree region names."""
    views: dict[str, RegionView] = {}
    by_region = c.log.by_region
    covered = _covered_by(c)
    named = [e for e in c.entries if e.name is not None]
    if len(c.by_name) != len(named) or any("[" in n for n in c.by_name):
        # an entry name twice (the last entry wins), or one naming a reg entry's view:
        # the general path
        return _views_general(c, named, covered)
    by_name = c.by_name
    derived = c.derived
    memblock = covered is not None
    starts, ends = c.covered.starts, c.covered.ends
    bisect_right = bisect.bisect_right
    for r, kind, available, ranges in c.regions:
        verdict = "ok" if available else "disabled"
        e = by_name.get(r.name)
        for name, b, s in ranges or ((r.name, None, r.size),):
            # positional: a dataclass __init__ with keywords and default factories
            # costs half again as much, 10,000 times over
            if e is not None and name == r.name:
                if (b is None or kind == "dynamic") and not (derived and e.base == 0):
                    b, s = e.base, e.size
                v = RegionView(
                    name, b, s, kind, r.nomap, r.reusable, list(r.compatible), r.status,
                    True, None, ["dt", "reserved_mem"], verdict, r.index, e.index, [],
                )  # fmt: skip
            else:
                v = RegionView(
                    name, b, s, kind, r.nomap, r.reusable, list(r.compatible), r.status,
                    False, None, ["dt"], verdict, r.index, None, [],
                )  # fmt: skip
            if memblock and b is not None and s:
                # covered(v, b, s), inlined: this runs for every region
                i = bisect_right(starts, b) - 1
                if i >= 0 and ends[i] >= b + s:
                    v.reserved = True
                    v.sources.append("memblock")
                elif covered is not None:
                    covered(v, b, s)  # not covered: says whether it overlaps
            lines = by_region.get(name)
            if lines is not None:
                v.log = lines[:6]
            views[name] = v
    for e in named:
        entry_name = e.name
        if entry_name is not None and entry_name not in views:
            v = views[entry_name] = RegionView(
                entry_name, e.base, e.size, "unknown", False, False, [], "okay", True, None,
                ["reserved_mem"], "ok", None, e.index, [],
            )  # fmt: skip
            if covered is not None and e.size:
                covered(v, e.base, e.size)
            lines = by_region.get(entry_name)
            if lines is not None:
                v.log = lines[:6]
    return views


def _covered_by(c: _Ctx) -> Callable[[RegionView, int, int], None] | None:
    """A function that sets a view's ``reserved`` and adds memblock to its sources
    (None when memblock is not available)."""
    if not c.memblock_ok:
        return None
    # RangeSet.covers() and .overlaps(), inlined: this runs for every region
    starts, ends = c.covered.starts, c.covered.ends
    n = len(starts)
    bisect_right = bisect.bisect_right

    def covered(v: RegionView, b: int, s: int) -> None:
        i = bisect_right(starts, b) - 1
        if i >= 0 and ends[i] >= b + s:
            v.reserved = True
            v.sources.append("memblock")
            return
        v.reserved = False
        # overlaps: the first range ending after b starts before b + s
        j = i if i >= 0 and ends[i] > b else i + 1
        if j < n and starts[j] < b + s:
            v.sources.append("memblock")

    return covered


def _views_general(
    c: _Ctx, named: list[RmemEntry], covered: Callable[[RegionView, int, int], None] | None
) -> dict[str, RegionView]:
    views: dict[str, RegionView] = {}
    for r, kind, available, ranges in c.regions:
        verdict = "ok" if available else "disabled"
        for name, b, s in ranges or ((r.name, None, r.size),):
            views[name] = RegionView(
                name, b, s, kind, r.nomap, r.reusable, list(r.compatible), r.status,
                False, None, ["dt"], verdict, r.index, None, [],
            )  # fmt: skip
    derived = c.derived
    for e in named:
        assert e.name is not None
        v = views.get(e.name)
        if v is None:
            v = views[e.name] = RegionView(
                name=e.name, base=e.base, size=e.size, kind="unknown", sources=[]
            )
        v.tracked = True
        v.rmem_index = e.index
        v.sources.append("reserved_mem")
        if (v.base is None or v.kind == "dynamic") and not (derived and e.base == 0):
            v.base, v.size = e.base, e.size
    if covered is not None:
        for v in views.values():
            if v.base is not None and v.size:
                covered(v, v.base, v.size)
    for name, lines in c.log.by_region.items():
        v = views.get(name)
        if v is not None:
            v.log = lines[:6]
    return views


def run(snap: Snapshot) -> Report:
    """Run every check on ``snap``."""
    # The checks allocate a few objects per region and build no reference cycles; on a
    # large snapshot the cyclic collector would rescan all of it many times: pause it.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(snap)
    finally:
        if enabled:
            gc.enable()


def _run(snap: Snapshot) -> Report:
    c = _Ctx(snap)
    views = _views(c)
    _check_sources(c)
    _check_array(c)
    _check_regions(c, views)
    _check_dropped_cma(c)
    _check_nomap_mapped(c)
    _check_overlaps(c, views)
    _check_consumers(c)
    _check_dt_diverged(c)
    for f in c.findings:
        v = views.get(f.region or "")
        if v is not None and f.severity == "error" and v.verdict == "ok":
            v.verdict = "error"
    c.findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.code, f.region or ""))
    return Report(snapshot=snap, regions=list(views.values()), findings=c.findings,
                  skipped=c.skipped)  # fmt: skip
