# SPDX-License-Identifier: GPL-2.0-or-later
"""``rmem-inspect trace`` without bcc: the perf-buffer event is built with
struct.pack at the offsets C gives the fields of ``struct rmem_event`` (laid out
here from the C declaration the BPF program compiles, not from the decoder's
format string), then decoded, filtered, summarised, rendered as JSON lines and
correlated with the boot verdicts of golden snapshots of real dumps."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest

from rmem_inspect import checks
from rmem_inspect.commands.trace import add_parser as add_trace_parser
from rmem_inspect.model import DeviceMemory, Snapshot
from rmem_inspect.trace.bpf_program import bpf_text
from rmem_inspect.trace.events import (
    EVENT_C,
    EVENT_SIZE,
    FLAG_NODE_TRUNCATED,
    FLAG_REGION_FROM_NODE,
    KIND_IDS,
    NODE_DEPTH,
    Correlator,
    Event,
    Summary,
    decode,
    format_event,
    format_summary,
    json_line,
    matches,
    summary_json_line,
)
from rmem_inspect.trace.probes import PROBES
from rmem_inspect.trace.run import run_trace

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
C_TYPES = {"u64": ("Q", 8), "s64": ("q", 8), "u32": ("I", 4), "char": ("s", 1)}


def c_layout() -> dict[str, tuple[int, str, int]]:
    """name -> (offset, struct code, total bytes) for ``struct rmem_event``, with C's
    natural alignment, from the declaration in EVENT_C."""
    defines = dict(re.findall(r"#define (\w+) (\d+)", EVENT_C))
    body = EVENT_C.split("struct rmem_event {", 1)[1].split("};", 1)[0]
    out: dict[str, tuple[int, str, int]] = {}
    offset = 0
    align_max = 1
    for m in re.finditer(r"(\w+)\s+(\w+)((?:\[\w+\])*);", re.sub(r"/\*.*?\*/", "", body)):
        ctype, name, dims = m.groups()
        code, size = C_TYPES[ctype]
        count = 1
        for d in re.findall(r"\[(\w+)\]", dims):
            count *= int(defines.get(d, d))
        offset = (offset + size - 1) // size * size
        align_max = max(align_max, size)
        out[name] = (offset, code, size * count)
        offset += size * count
    out["__size__"] = ((offset + align_max - 1) // align_max * align_max, "", 0)
    return out


LAYOUT = c_layout()


def pack(**fields: object) -> bytes:
    """A ``struct rmem_event`` as the kernel writes it (native byte order)."""
    import struct

    buf = bytearray(LAYOUT["__size__"][0])
    for name, value in fields.items():
        offset, code, total = LAYOUT[name]
        if code == "s":
            if name == "node":
                parts = value
                assert isinstance(parts, list)
                width = total // NODE_DEPTH
                for i, p in enumerate(parts):
                    struct.pack_into(f"{width}s", buf, offset + i * width, p.encode())
            else:
                assert isinstance(value, str)
                struct.pack_into(f"{total}s", buf, offset, value.encode())
        else:
            struct.pack_into("=" + code, buf, offset, value)
    return bytes(buf)


def lookup_fail(node: list[str], ts: int = 2_000_000_000, device: str = "") -> bytes:
    """of_reserved_mem_lookup() returned NULL for the node (leaf first)."""
    return pack(
        ts=ts,
        kind=KIND_IDS["lookup"],
        pid=1,
        comm="insmod",
        failed=1,
        ret=0,
        flags=FLAG_REGION_FROM_NODE,
        node=node,
        node_depth=len(node),
        region=node[0],
        device=device,
    )


def test_layout_matches_c() -> None:
    assert LAYOUT["__size__"][0] == EVENT_SIZE
    # every member is where the C compiler puts it: a packed, unpadded struct
    assert LAYOUT["comm"][0] == 8 * 6 + 4 * 6


def test_decode_device_init() -> None:
    raw = pack(
        ts=5_000_000_000,
        addr=0x50400000,
        size=0x400000,
        count=1,
        ret=-22,
        lat=1500,
        pid=321,
        kind=KIND_IDS["device_init"],
        failed=1,
        comm="insmod",
        device="codec-consumer",
        region="vpu@50400000",
        node=["codec-consumer"],
        node_depth=1,
    )
    e = decode(raw)
    assert (e.kind, e.pid, e.comm, e.device) == ("device_init", 321, "insmod", "codec-consumer")
    assert (e.region, e.node, e.count, e.ret, e.failed) == (
        "vpu@50400000",
        "/codec-consumer",
        1,
        -22,
        True,
    )
    assert (e.addr, e.size, e.lat) == (0x50400000, 0x400000, 1500)
    line = format_event(e, t0=4_000_000_000)
    assert line.startswith("1.000000")
    assert "device_init[1]" in line and "vpu@50400000" in line and line.endswith("-22 (EINVAL)")


def test_decode_lookup_path() -> None:
    e = decode(lookup_fail(["pool9", "reserved-memory"]))
    assert (e.kind, e.node, e.region, e.failed) == (
        "lookup",
        "/reserved-memory/pool9",
        "pool9",
        True,
    )
    assert e.region_from_node
    assert format_event(e).endswith("NULL")


def test_decode_truncated_path() -> None:
    names = [f"n{i}" for i in range(NODE_DEPTH)]
    raw = pack(
        kind=KIND_IDS["lookup"], node=names, node_depth=NODE_DEPTH, flags=FLAG_NODE_TRUNCATED
    )
    assert decode(raw).node == "/.../" + "/".join(reversed(names))


@pytest.mark.parametrize("page_size", [4096, 16384, 65536])
def test_decode_cma_pages(page_size: int) -> None:
    raw = pack(
        kind=KIND_IDS["cma_alloc"],
        count=16,
        addr=0x7AC00,
        region="reserved",
        device="9000000.virtio",
    )
    e = decode(raw, page_size)
    assert (e.kind, e.count, e.size, e.region, e.addr) == (
        "cma_alloc",
        16,
        16 * page_size,
        "reserved",
        0x7AC00,
    )
    assert not e.failed


def test_decode_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="bytes"):
        decode(b"\0" * (EVENT_SIZE - 1))
    with pytest.raises(ValueError, match="kind"):
        decode(pack(kind=99))
    with pytest.raises(ValueError, match="kind"):
        decode(pack(kind=0))


def test_filters() -> None:
    e = decode(
        pack(
            kind=KIND_IDS["device_init"],
            device="codec",
            region="ip53@52d40000",
            node=["codec-consumer"],
            node_depth=1,
        )
    )
    assert matches(e)
    assert matches(e, device="codec")
    assert matches(e, device="consumer")  # the DT node path
    assert not matches(e, device="vpu")
    assert matches(e, region="ip53@52d40000") and matches(e, region="ip53")
    assert not matches(e, region="ip5")
    assert matches(e, device="codec", region="ip53") and not matches(e, "codec", "pool9")


def test_json_lines() -> None:
    e = decode(lookup_fail(["pool9", "reserved-memory"], device="codec"))
    d = json.loads(json_line(e))
    assert d["kind"] == "lookup" and d["region"] == "pool9" and d["failed"] is True
    assert d["node"] == "/reserved-memory/pool9" and d["device"] == "codec"
    assert "\n" not in json_line(e)


def test_summary() -> None:
    events = [
        pack(kind=KIND_IDS["cma_alloc"], count=4, region="reserved", device="a"),
        pack(kind=KIND_IDS["cma_alloc"], count=8, region="reserved", device="b"),
        pack(kind=KIND_IDS["cma_alloc"], count=2, region="reserved", device="a", failed=1, ret=-12),
        pack(kind=KIND_IDS["cma_release"], count=4, region="reserved", device="a"),
        pack(kind=KIND_IDS["coherent_alloc"], size=8192, region="vpu", device="b"),
        lookup_fail(["pool9", "reserved-memory"], device="a"),
    ]
    s = Summary()
    for raw in events:
        s.add(decode(raw, 4096))
    d = s.to_json()
    assert d["events"] == 6
    # bytes: successful allocations only (4 pages to a; 8 pages + 8 KiB to b)
    assert d["devices"]["a"] == {"calls": 4, "bytes": 4 * 4096, "failures": 2}
    assert d["devices"]["b"] == {"calls": 2, "bytes": 8 * 4096 + 8192, "failures": 0}
    assert d["regions"]["reserved"] == {"calls": 4, "bytes": 12 * 4096, "failures": 1}
    assert d["regions"]["pool9"]["failures"] == 1
    text = format_summary(s)
    assert re.search(r"^a\s+4\s+16384\s+2$", text, re.M)
    assert re.search(r"^reserved\s+4\s+49152\s+1$", text, re.M)
    last = json.loads(summary_json_line(s, lost=3, skipped=["dma:dma_alloc"]))
    assert last["summary"]["lost"] == 3 and last["summary"]["skipped_probes"] == ["dma:dma_alloc"]


def load(name: str) -> Snapshot:
    return Snapshot.loads((GOLDEN / f"{name}.json").read_text())


def codec_target(snap: Snapshot) -> str:
    """The region node /codec-consumer's memory-region[0] points at (from the DT)."""
    assert snap.dt is not None
    (con,) = [c for c in snap.dt.consumers if c.path == "/codec-consumer"]
    target = con.targets[0]
    assert target is not None
    return target


def test_correlate_dropped_on_static_array() -> None:
    """6.1 overflow: 69 regions into the 64-entry static array (vmcores/facts.py); the
    codec's pool9 is past the end, so its lookup fails at run time because of boot."""
    snap = load("6.1-overflow")
    assert snap.reserved_mem is not None and snap.dt is not None
    cap = snap.reserved_mem.max_regions
    target = codec_target(snap)
    parts = target.strip("/").split("/")[::-1]
    rank = [r.path for r in snap.dt.regions if r.available].index(target) + 1
    assert rank > cap  # the input really is past the array's end
    c = Correlator(checks.run(snap))
    e = c.annotate(decode(lookup_fail(parts, device="codec-consumer")))
    assert e.correlation is not None
    assert e.correlation.startswith("boot verdict RMEM-DROPPED: " + parts[0])
    assert "static reserved_mem array full" in e.correlation
    assert f"holds {cap} entries" in e.correlation and f"number {rank}" in e.correlation
    init = c.annotate(
        decode(
            pack(
                kind=KIND_IDS["device_init"],
                failed=1,
                ret=-22,
                device="codec-consumer",
                node=["codec-consumer"],
                node_depth=1,
                region=parts[0],
                flags=FLAG_REGION_FROM_NODE,
            )
        )
    )
    assert init.correlation == e.correlation
    # a kernel that inlined the lookup: the region comes from the consumer's memory-region
    bare = c.annotate(
        decode(
            pack(
                kind=KIND_IDS["device_init"],
                failed=1,
                ret=-22,
                device="codec-consumer",
                node=["codec-consumer"],
                node_depth=1,
                count=0,
            )
        )
    )
    assert (bare.region, bare.correlation) == (parts[0], e.correlation)
    s = Summary()
    s.add(e)
    assert e.correlation in format_summary(s)
    assert json.loads(json_line(e))["correlation"] == e.correlation


def test_correlate_tracked_on_dynamic_array() -> None:
    """6.12 sizes its array from the DT: the same pool9 is tracked, so a failure is a
    run-time one and the correlation must not blame the boot."""
    snap = load("6.12-overflow")
    parts = codec_target(snap).strip("/").split("/")[::-1]
    c = Correlator(checks.run(snap))
    e = c.annotate(decode(lookup_fail(parts)))
    assert e.correlation is not None and "tracked by the kernel" in e.correlation
    assert "RMEM-DROPPED" not in e.correlation
    ok = c.annotate(
        decode(pack(kind=KIND_IDS["lookup"], region=parts[0], node=parts, node_depth=len(parts)))
    )
    assert ok.correlation is None


def test_coherent_region_from_device_pool() -> None:
    """Coherent-pool events carry no region: it comes from the device's dma_mem."""
    snap = load("6.12-consumers")
    assert snap.reserved_mem is not None
    entry = next(e for e in snap.reserved_mem.entries if e.size)
    snap = dataclasses.replace(
        snap, devices=[DeviceMemory("video", dma_mem=(entry.base + 0x1000, entry.size - 0x1000))]
    )
    c = Correlator(checks.run(snap))
    e = c.annotate(decode(pack(kind=KIND_IDS["coherent_alloc"], device="video", size=4096)))
    assert e.region == entry.name and e.correlation is None
    other = c.annotate(decode(pack(kind=KIND_IDS["coherent_alloc"], device="other", size=1)))
    assert other.region == ""


def test_bpf_text() -> None:
    defines = [p.define for p in PROBES]
    text = bpf_text(defines)
    assert "@" not in text.replace("@5", "")  # every placeholder filled in
    assert "struct rmem_event {" in text
    for d in set(defines):
        assert f"#define {d} 1\n" in text
        assert d in text.split("struct rmem_event {", 1)[1]  # guards some code
    for p in PROBES:
        for fn in (p.entry, p.ret):
            if fn:
                assert re.search(rf"\bint {fn}\(struct pt_regs \*ctx", text), fn
        if p.tracepoint:
            assert f"TRACEPOINT_PROBE({p.target.replace(':', ', ')})" in text
    assert "#define RMEM_HAVE_INIT" not in bpf_text([])


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rmem-inspect")
    sub = parser.add_subparsers(dest="command")
    add_trace_parser(sub)
    return parser.parse_args(argv)


def test_parser() -> None:
    args = parse(["trace", "-d", "2.5", "--device", "codec", "--region", "pool9", "--json"])
    assert (args.duration, args.device, args.region, args.json) == (2.5, "codec", "pool9", True)
    assert parse(["trace"]).duration is None


def test_without_bcc(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No bcc (sys.modules entry None makes the import fail as if absent): one line, exit 2."""
    monkeypatch.setitem(sys.modules, "bcc", None)
    assert run_trace(parse(["trace"])) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1 and "apt install python3-bpfcc" in out.err


def test_event_json_keys_stable() -> None:
    keys = set(Event(0, "lookup", 0, "", "", "", "", 0, 0, 0, 0, False).to_json())
    assert {"ts", "kind", "pid", "comm", "device", "region", "size", "failed"} <= keys


def test_attribution_from_the_trace() -> None:
    """Without debug info, a coherent allocation's region is the pool the same device
    got from rmem_dma_device_init earlier in the trace."""
    from rmem_inspect.trace.events import Attribution

    a = Attribution()
    alloc = pack(kind=KIND_IDS["coherent_alloc"], device="dsp", size=4096)
    assert a.annotate(decode(alloc)).region == ""
    op = pack(kind=KIND_IDS["init_op"], op=1, device="dsp", region="coherent@51000000")
    assert a.annotate(decode(op)).op == "rmem_dma_device_init"
    assert a.annotate(decode(alloc)).region == "coherent@51000000"
    failed = pack(kind=KIND_IDS["init_op"], op=1, device="x", region="r", failed=1, ret=-22)
    a.annotate(decode(failed))
    assert a.annotate(decode(pack(kind=KIND_IDS["coherent_alloc"], device="x"))).region == ""


def test_trace_ebpf_prints_the_program(capsys: pytest.CaptureFixture[str]) -> None:
    # bcc's --ebpf convention: the BPF C program on stdout, nothing loaded, exit 0.
    from rmem_inspect.commands import main

    assert main(["trace", "--ebpf"]) == 0
    text = capsys.readouterr().out
    assert "BPF_PERF_OUTPUT" in text or "BPF_RINGBUF_OUTPUT" in text
    for p in PROBES:
        assert f"#define {p.define} 1" in text


def test_kernel_cflags_without_a_build_tree() -> None:
    # No headers installed for this release: bcc gets no extra flags (the trace tier
    # compiles on 7.3, whose .config has CONFIG_CC_MS_EXTENSIONS="-fms-extensions").
    from rmem_inspect.trace.bpf_program import kernel_cflags

    assert kernel_cflags("0.0.0-no-such-release") == []


def test_kernel_cflags_from_the_headers(tmp_path: Path) -> None:
    from rmem_inspect.trace.bpf_program import kernel_cflags

    # The lines as Debian's linux-headers-7.3.4+deb13-cloud-arm64 has them.
    (tmp_path / "include" / "config").mkdir(parents=True)
    (tmp_path / ".config").write_text('CONFIG_CC_MS_EXTENSIONS="-fms-extensions"\n')
    assert kernel_cflags(build=str(tmp_path)) == ["-fms-extensions"]
    auto = tmp_path / "include" / "config" / "auto.conf"
    auto.write_text("CONFIG_CC_IS_CLANG=y\nCONFIG_CC_MS_EXTENSIONS=-fms-extensions\n")
    assert kernel_cflags(build=str(tmp_path)) == ["-fms-extensions"]
    auto.write_text("CONFIG_CC_IS_GCC=y\n")  # 6.12: no such option
    assert kernel_cflags(build=str(tmp_path)) == []
