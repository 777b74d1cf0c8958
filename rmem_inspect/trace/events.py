# SPDX-License-Identifier: GPL-2.0-or-later
"""
trace.events
------------

The pure half of ``rmem-inspect trace``: the layout of the event the BPF
program (:mod:`rmem_inspect.trace.bpf_program`) writes to its perf buffer, decoding it,
filters, one-line and JSON-lines rendering, the per-device and per-region
summary, and the correlation of run-time failures with the boot verdicts of
:func:`rmem_inspect.checks.run`. Nothing here imports bcc or drgn, so all of it
is testable on any machine with bytes built by :func:`struct.pack`.

The C declaration :data:`EVENT_C` is pasted into the BPF program, and
:data:`EVENT_FORMAT` is the same layout for :mod:`struct`; keep them in step.
"""

from __future__ import annotations

import errno
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rmem_inspect.checks import CODES, Report, Verdict

__all__ = [
    "EVENT_C",
    "EVENT_FORMAT",
    "EVENT_SIZE",
    "FLAG_NODE_TRUNCATED",
    "FLAG_REGION_FROM_NODE",
    "HEADER",
    "KINDS",
    "KIND_IDS",
    "NODE_DEPTH",
    "OPS",
    "Attribution",
    "Correlator",
    "Event",
    "Summary",
    "annotate_all",
    "decode",
    "format_event",
    "format_summary",
    "json_line",
    "matches",
    "summary_json_line",
]

#: Components of a devicetree path the BPF program copies (leaf first).
NODE_DEPTH = 4
NAME_LEN = 32
DEVICE_LEN = 32
COMM_LEN = 16

#: Event kinds (``kind``), as numbered in the BPF program.
KINDS = {
    1: "device_init",  # of_reserved_mem_device_init_by_idx()
    2: "lookup",  # of_reserved_mem_lookup()
    3: "init_op",  # rmem->ops->device_init: rmem_{dma,cma,swiotlb}_device_init()
    4: "cma_alloc",  # cma:cma_alloc_finish (started at cma:cma_alloc_start)
    5: "cma_release",  # cma:cma_release
    6: "coherent_alloc",  # dma_alloc_from_dev_coherent() on a device with a pool
    7: "dma_alloc",  # dma:dma_alloc tracepoint (when the kprobe above is absent)
}
KIND_IDS = {v: k for k, v in KINDS.items()}

#: ``op`` of an init_op event: which carveout device_init ran.
OPS = {0: "-", 1: "rmem_dma_device_init", 2: "rmem_cma_device_init", 3: "rmem_swiotlb_device_init"}

#: ``flags`` bits.
FLAG_NODE_TRUNCATED = 1  # the node path was deeper than NODE_DEPTH
FLAG_REGION_FROM_NODE = 2  # region is the DT node's name: the lookup returned NULL

EVENT_C = f"""\
#define RMEM_NODE_DEPTH {NODE_DEPTH}
#define RMEM_NAME_LEN {NAME_LEN}
#define RMEM_DEVICE_LEN {DEVICE_LEN}
struct rmem_event {{
    u64 ts;                 /* bpf_ktime_get_ns() at the call */
    u64 addr;               /* region base, or CMA pfn */
    u64 size;               /* region size, or bytes allocated/released */
    u64 count;              /* memory-region index, or CMA pages */
    s64 ret;                /* return value or errno (lookup: 1 found, 0 NULL) */
    u64 lat;                /* ns between call and return */
    u32 pid;
    u32 kind;               /* see KINDS */
    u32 failed;             /* 1: the call failed */
    u32 op;                 /* init_op: which device_init (see OPS) */
    u32 flags;              /* FLAG_* */
    u32 node_depth;         /* valid entries in node[] */
    char comm[{COMM_LEN}];
    char device[RMEM_DEVICE_LEN];
    char region[RMEM_NAME_LEN];
    char node[RMEM_NODE_DEPTH][RMEM_NAME_LEN];  /* DT path components, leaf first */
}};
"""

#: struct layout of ``struct rmem_event`` (native byte order, no padding).
EVENT_FORMAT = f"=QQQQqQIIIIII{COMM_LEN}s{DEVICE_LEN}s{NAME_LEN}s{NODE_DEPTH * NAME_LEN}s"
EVENT_SIZE = struct.calcsize(EVENT_FORMAT)


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("utf-8", errors="replace")


@dataclass
class Event:
    """One decoded event; ``region`` and ``correlation`` may be filled in later."""

    ts: int
    kind: str
    pid: int
    comm: str
    device: str
    region: str
    node: str
    addr: int
    size: int
    count: int
    ret: int
    failed: bool
    lat: int = 0
    op: str = "-"
    region_from_node: bool = False
    #: One sentence from the boot verdicts, for failures (see :class:`Correlator`).
    correlation: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "kind": self.kind,
            "pid": self.pid,
            "comm": self.comm,
            "device": self.device or None,
            "region": self.region or None,
            "node": self.node or None,
            "addr": self.addr,
            "size": self.size,
            "count": self.count,
            "ret": self.ret,
            "failed": self.failed,
            "latency_ns": self.lat,
            "op": None if self.op == "-" else self.op,
            "correlation": self.correlation,
        }


def decode(data: bytes, page_size: int = 4096) -> Event:
    """Decode one ``struct rmem_event`` from the perf buffer.

    CMA events carry pages; their ``size`` becomes bytes with ``page_size``.
    Raises ValueError on a short buffer or an unknown kind.
    """
    if len(data) < EVENT_SIZE:
        raise ValueError(f"event is {len(data)} bytes, expected {EVENT_SIZE}")
    (ts, addr, size, count, ret, lat, pid, kind, failed, op, flags, depth, comm, device, region,
     node) = struct.unpack_from(EVENT_FORMAT, data)  # fmt: skip
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind}")
    depth = min(depth, NODE_DEPTH)
    parts = [_cstr(node[i * NAME_LEN : (i + 1) * NAME_LEN]) for i in range(depth)]
    path = ""
    if depth:
        path = "/" + "/".join(reversed(parts))
        if flags & FLAG_NODE_TRUNCATED:
            path = "/..." + path
    name = KINDS[kind]
    if name in ("cma_alloc", "cma_release"):
        size = count * page_size
    return Event(
        ts=ts,
        kind=name,
        pid=pid,
        comm=_cstr(comm),
        device=_cstr(device),
        region=_cstr(region),
        node=path,
        addr=addr,
        size=size,
        count=count,
        ret=ret,
        failed=bool(failed),
        lat=lat,
        op=OPS.get(op, f"op{op}"),
        region_from_node=bool(flags & FLAG_REGION_FROM_NODE),
    )


def matches(e: Event, device: str | None = None, region: str | None = None) -> bool:
    """The ``--device``/``--region`` filters: a substring of the device name or
    DT node path; the region name exactly or without its unit address."""
    if device is not None and device not in e.device and device not in e.node:
        return False
    if region is not None:
        names = {e.region, e.region.split("@", 1)[0]}
        if region not in names:
            return False
    return True


def _human(n: int) -> str:
    for unit in ("GiB", "MiB", "KiB"):
        div = {"GiB": 1 << 30, "MiB": 1 << 20, "KiB": 1 << 10}[unit]
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def _result(e: Event) -> str:
    if e.kind == "lookup":
        return "NULL" if e.failed else "found"
    if e.kind == "cma_alloc":
        if not e.failed:
            return "ok"
        return f"FAILED ({e.ret} {errno.errorcode.get(-e.ret, '')})".replace(" )", ")")
    if e.kind in ("coherent_alloc", "dma_alloc"):
        return "NULL" if e.failed else "ok"
    if e.kind == "cma_release":
        return "FAILED" if e.failed else "ok"
    if not e.failed:
        return "0"
    name = errno.errorcode.get(-e.ret)
    return f"{e.ret} ({name})" if name else f"{e.ret}"


HEADER = f"{'TIME(s)':<12} {'COMM':<16} {'PID':>7} {'EVENT':<14} {'DEVICE':<24} " \
    f"{'REGION':<20} {'SIZE':>10} RESULT"  # fmt: skip


def format_event(e: Event, t0: int = 0) -> str:
    """One line per event: time, comm/pid, event, device, region, size, result;
    a correlation (if any) follows on an indented line."""
    t = (e.ts - t0) / 1e9 if t0 else e.ts / 1e9
    what = e.kind
    if e.kind == "device_init":
        what = f"device_init[{e.count}]"
    device = e.device or e.node or "-"
    region = e.region or "-"
    size = _human(e.size) if e.size else "-"
    line = (
        f"{t:<12.6f} {e.comm:<16.16} {e.pid:>7} {what:<14} {device:<24} {region:<20} "
        f"{size:>10} {_result(e)}"
    )
    if e.correlation:
        line += f"\n{'':12} -> {e.correlation}"
    return line


def json_line(e: Event) -> str:
    """The ``--json`` form: one object per line."""
    return json.dumps(e.to_json(), sort_keys=True)


@dataclass
class _Row:
    calls: int = 0
    bytes: int = 0
    failures: int = 0

    def add(self, e: Event) -> None:
        self.calls += 1
        if e.failed:
            self.failures += 1
        elif e.kind in ("cma_alloc", "coherent_alloc", "dma_alloc"):
            self.bytes += e.size


@dataclass
class Summary:
    """Per device and per region: calls, bytes allocated (successful CMA and
    coherent-pool allocations; releases and lookups count 0), failures."""

    devices: dict[str, _Row] = field(default_factory=dict)
    regions: dict[str, _Row] = field(default_factory=dict)
    correlations: dict[str, str] = field(default_factory=dict)
    events: int = 0

    def add(self, e: Event) -> None:
        self.events += 1
        self.devices.setdefault(e.device or "-", _Row()).add(e)
        self.regions.setdefault(e.region or "-", _Row()).add(e)
        if e.correlation and e.region:
            self.correlations.setdefault(e.region, e.correlation)

    def to_json(self) -> dict[str, Any]:
        def rows(d: dict[str, _Row]) -> dict[str, dict[str, int]]:
            return {k: {"calls": r.calls, "bytes": r.bytes, "failures": r.failures}
                    for k, r in sorted(d.items())}  # fmt: skip

        return {
            "events": self.events,
            "devices": rows(self.devices),
            "regions": rows(self.regions),
            "correlations": dict(sorted(self.correlations.items())),
        }


def format_summary(s: Summary) -> str:
    """The table printed at exit."""
    out = [f"\n{s.events} events"]
    for title, rows in (("DEVICE", s.devices), ("REGION", s.regions)):
        out.append(f"\n{title:<32} {'CALLS':>7} {'BYTES':>12} {'FAILURES':>9}")
        for name, r in sorted(rows.items()):
            out.append(f"{name:<32.32} {r.calls:>7} {r.bytes:>12} {r.failures:>9}")
    if s.correlations:
        out.append("\nboot verdicts for the regions that failed:")
        for name, text in sorted(s.correlations.items()):
            out.append(f"  {name}: {text}")
    return "\n".join(out) + "\n"


class Attribution:
    """Names the region of coherent-pool events from what the trace itself saw: a
    successful ``rmem_dma_device_init`` (or ``device_init``) of the same device.
    Works without debug info; :class:`Correlator` also knows pools set up before
    tracing started."""

    def __init__(self) -> None:
        self.pool: dict[str, str] = {}
        self.assigned: dict[str, str] = {}

    def annotate(self, e: Event) -> Event:
        if not e.failed and e.region and e.device:
            if e.kind == "init_op" and e.op == "rmem_dma_device_init":
                self.pool[e.device] = e.region
            elif e.kind == "device_init":
                self.assigned[e.device] = e.region
        if not e.region and e.device and e.kind in ("coherent_alloc", "dma_alloc"):
            e.region = self.pool.get(e.device, "")
        return e


class Correlator:
    """Explain run-time failures with the boot verdicts of one :class:`Report`
    (``checks.run`` on the live kernel, or on a snapshot).

    It also names the region of coherent-pool and DMA events, which the BPF
    program cannot see, from the devices' ``dma_mem`` and the assigned list.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        self.views = {v.name: v for v in report.regions}
        snap = report.snapshot
        self.by_path: dict[str, str] = {}
        for dt in (snap.dt, snap.fdt):
            if dt is not None:
                for r in dt.regions:
                    self.by_path.setdefault(r.path, r.name)
        self.findings: dict[str, list[Any]] = {}
        for f in report.findings:
            if f.region is not None:
                self.findings.setdefault(f.region, []).append(f)
        self.device_regions: dict[str, list[str]] = {}
        for a in snap.assigned or []:
            if a.region:
                self.device_regions.setdefault(a.device, []).append(a.region)
        #: consumer node path -> region name per memory-region index (None: not a region)
        self.consumers: dict[str, list[str | None]] = {}
        for dt in (snap.dt, snap.fdt):
            for con in dt.consumers if dt is not None else []:
                names = [self.by_path.get(t) if t else None for t in con.targets]
                self.consumers.setdefault(con.path, names)
        self.device_pool: dict[str, tuple[int, int]] = {}
        for d in snap.devices or []:
            if d.dma_mem is not None:
                self.device_pool[d.device] = d.dma_mem

    def _name(self, e: Event) -> str | None:
        if e.region in self.views:
            return e.region
        if e.node in self.by_path:
            return self.by_path[e.node]
        base = e.region.split("@", 1)[0]
        for name in self.views:
            if name.split("@", 1)[0] == base and base:
                return name
        return None

    def region_of_device(self, device: str) -> str | None:
        """The carveout behind ``device``'s coherent pool (or its one assigned region)."""
        pool = self.device_pool.get(device)
        if pool is not None:
            for v in self.views.values():
                if v.base is not None and v.size and v.base <= pool[0] < v.base + v.size:
                    return v.name
        regions = self.device_regions.get(device, [])
        return regions[0] if len(regions) == 1 else None

    def explain(self, e: Event) -> str | None:
        """One sentence for a failed event whose region the boot verdicts know."""
        name = self._name(e)
        if name is None:
            return None
        view = self.views[name]
        if not e.failed:
            return None
        worst = [f for f in self.findings.get(name, []) if CODES[f.code].explains_failure]
        if worst:
            f = worst[0]
            return f"boot verdict {f.code}: {f.message}"
        if view.verdict == Verdict.DISABLED:
            return f'{name} is status = "disabled" in the devicetree: the kernel skipped it.'
        if view.tracked:
            return (
                f"{name} is tracked by the kernel (boot verdict {view.verdict}): the failure "
                "happened at run time, not at boot."
            )
        return f"{name} is not tracked by the kernel (boot verdict {view.verdict})."

    def annotate(self, e: Event) -> Event:
        """Fill in the region of pool events, of device_init calls whose lookup was not
        seen (inlined by the compiler), and the correlation of failures."""
        if not e.region and e.kind == "device_init" and e.node in self.consumers:
            names = self.consumers[e.node]
            if 0 <= e.count < len(names) and names[e.count]:
                e.region = names[e.count] or ""
        if not e.region and e.device and e.kind in ("coherent_alloc", "dma_alloc"):
            e.region = self.region_of_device(e.device) or ""
        e.correlation = self.explain(e)
        return e


def annotate_all(events: Iterable[Event], correlator: Correlator | None) -> list[Event]:
    """Helper for tests and offline use: annotate every event."""
    return [correlator.annotate(e) if correlator else e for e in events]


def summary_json_line(summary: Summary, lost: int = 0, skipped: Iterable[str] = ()) -> str:
    """The last ``--json`` line: ``{"summary": {...}}`` with lost events and skipped probes."""
    data = summary.to_json()
    data["lost"] = lost
    data["skipped_probes"] = list(skipped)
    return json.dumps({"summary": data}, sort_keys=True)
