# SPDX-License-Identifier: GPL-2.0-or-later
"""
output.svg
----------

A picture of the physical address space for a :class:`~rmem_inspect.checks.Report`
(from a dump, a live kernel, a snapshot or a preflight): RAM banks with their
NOMAP parts, memblock.reserved, and every devicetree region coloured by its
verdict, labelled with its name, range and size.

Addresses run top to bottom on a piecewise scale: every stretch between two
region or RAM-bank boundaries gets a height that grows with the logarithm of
its size, and empty stretches are squeezed, so a 4 KiB carveout stays visible
next to a 1 GiB bank and a board with hundreds of regions stays readable.
Overlapping regions go to side-by-side lanes. Regions without an address
(dropped or unallocated dynamic regions) are listed in their colour below the
map.

The SVG is built with :mod:`xml.etree.ElementTree`; :func:`svg_to_png` renders
it with CairoSVG when that is installed.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from rmem_inspect.checks import RegionView, Report, Verdict
from rmem_inspect.errors import InputError
from rmem_inspect.ranges import human_size

__all__ = [
    "VERDICT_COLOURS",
    "render_svg",
    "svg_to_png",
]

SVG_NS = "http://www.w3.org/2000/svg"

#: Fill colour per verdict (RegionView.verdict): every :class:`Verdict` has one.
VERDICT_COLOURS: dict[str, str] = {
    Verdict.OK: "#43a047",
    Verdict.OVERLAP: "#fdd835",
    Verdict.UNTRACKED: "#fb8c00",
    Verdict.UNALLOCATED: "#8e24aa",
    Verdict.DROPPED: "#e53935",
    Verdict.ERROR: "#b71c1c",
    Verdict.DISABLED: "#bdbdbd",
    Verdict.SKIPPED: "#90a4ae",
    # reserved_mem could not be trusted (RMEM-COUNT-CORRUPT): whether it is tracked is not known
    Verdict.UNKNOWN: "#9575cd",
}
_VERDICT_TEXT: dict[str, str] = {
    Verdict.OK: "tracked",
    Verdict.OVERLAP: "overlapping",
    Verdict.UNTRACKED: "reserved, untracked",
    Verdict.UNALLOCATED: "never allocated",
    Verdict.DROPPED: "dropped",
    Verdict.ERROR: "other error",
    Verdict.DISABLED: "disabled",
    Verdict.SKIPPED: "skipped on purpose",
    Verdict.UNKNOWN: "unknown (reserved_mem unreadable)",
}

_FONT = "DejaVu Sans Mono, monospace"
_LINE = 13  # label line height (px)
_TOP = 70
_AXIS_X = 10
_AXIS_W = 150
_RAM_X = _AXIS_X + _AXIS_W
_BAR_W = 36
_RES_X = _RAM_X + _BAR_W + 8
_REG_X = _RES_X + _BAR_W + 30
_LANE_W = 70


@dataclass
class _Seg:
    start: int
    end: int
    y: float
    h: float


def _segments(bounds: list[int], covered: list[tuple[int, int]]) -> list[_Seg]:
    """Piecewise scale: one segment per pair of consecutive boundaries."""
    segs = []
    y = float(_TOP)
    for a, b in zip(bounds, bounds[1:], strict=False):
        size = b - a
        inside = any(s < b and a < e for s, e in covered)
        if inside:
            h = min(64.0, 12.0 + 3.0 * math.log2(max(1.0, size / 4096)))
        else:
            h = min(34.0, 8.0 + 1.5 * math.log2(max(1.0, size / (1 << 20))))
        segs.append(_Seg(a, b, y, h))
        y += h
    return segs


def _y(segs: list[_Seg], addr: int) -> float:
    """Address -> y, linear inside each segment."""
    if not segs:
        return float(_TOP)
    if addr <= segs[0].start:
        return segs[0].y
    for s in segs:
        if addr <= s.end:
            return s.y + s.h * (addr - s.start) / max(1, s.end - s.start)
    return segs[-1].y + segs[-1].h


def _lanes(items: list[tuple[int, int, str]]) -> dict[str, int]:
    """Interval-graph colouring: overlapping regions get different lanes."""
    lanes: list[int] = []  # end address per lane
    out = {}
    for base, end, name in sorted(items):
        for i, lane_end in enumerate(lanes):
            if lane_end <= base:
                lanes[i] = end
                out[name] = i
                break
        else:
            lanes.append(end)
            out[name] = len(lanes) - 1
    return out


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    e = ET.SubElement(
        parent, tag, {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items()}
    )
    if text is not None:
        e.text = text
    return e


def render_svg(report: Report, *, title: str | None = None) -> str:
    """The memory map of ``report`` as an SVG document (a string)."""
    snap = report.snapshot
    mb = snap.memblock
    ram = [(r.base, r.base + r.size) for r in mb.memory] if mb and mb.available else []
    nomap = [
        (r.base, r.base + r.size)
        for r in (mb.memory if mb and mb.available else [])
        if r.flags & (mb.flag_values.get("MEMBLOCK_NOMAP", 4) if mb else 4)
    ]
    reserved = [(r.base, r.base + r.size) for r in mb.reserved] if mb and mb.available else []
    if not ram and snap.fdt is not None:
        ram = [(b, b + s) for b, s in snap.fdt.memory]
    placed = [v for v in report.regions if v.base is not None and v.size]
    unplaced = [v for v in report.regions if not (v.base is not None and v.size)]

    bounds_set = {a for r in ram for a in r}
    for v in placed:
        assert v.base is not None and v.size is not None
        bounds_set |= {v.base, v.base + v.size}
    bounds = sorted(bounds_set)
    covered = [(v.base or 0, (v.base or 0) + (v.size or 0)) for v in placed]
    segs = _segments(bounds, covered)
    lane_of = _lanes([(v.base or 0, (v.base or 0) + (v.size or 0), v.name) for v in placed])
    n_lanes = max(lane_of.values(), default=0) + 1
    label_x = _REG_X + n_lanes * _LANE_W + 40
    width = label_x + 560

    svg = ET.Element(
        "svg",
        {"xmlns": SVG_NS, "version": "1.1", "font-family": _FONT, "font-size": "11"},
    )
    kernel = snap.kernel.release
    rm = snap.reserved_mem
    head = title or f"reserved memory map: {kernel}"
    sub = (
        f"{rm.layout}, {rm.count} of {rm.capacity} entries" if rm else "reserved_mem not read"
    ) + f"; {len(report.regions)} regions, {len(placed)} placed"
    _el(svg, "title", head)
    _el(svg, "rect", x=0, y=0, width="100%", height="100%", fill="#ffffff")
    _el(svg, "text", head, x=10, y=20, font_size=15, font_weight="bold")
    _el(svg, "text", sub, x=10, y=37)
    for x, text in ((_RAM_X, "RAM"), (_RES_X, "reserved"), (_REG_X, "devicetree regions")):
        _el(svg, "text", text, x=x, y=_TOP - 8, font_weight="bold")

    # Address axis: every boundary that has room for a label.
    axis = _el(svg, "g", class_="axis")
    last = -100.0
    for s in segs + (
        [_Seg(segs[-1].end, segs[-1].end, segs[-1].y + segs[-1].h, 0)] if segs else []
    ):
        if s.y - last >= _LINE - 1:
            _el(axis, "text", f"{s.start:#014x}", x=_AXIS_X, y=f"{s.y + 4:.1f}")
            last = s.y
        _el(axis, "line", x1=_RAM_X - 6, x2=_RAM_X, y1=f"{s.y:.1f}", y2=f"{s.y:.1f}", stroke="#555")

    # Gaps (no RAM, no region): a break marker.
    for s in segs:
        if not any(a < s.end and s.start < b for a, b in ram) and not any(
            a < s.end and s.start < b for a, b in covered
        ):
            _el(
                svg,
                "text",
                f"~ {human_size(s.end - s.start)} hole",
                x=_RAM_X,
                y=f"{s.y + s.h / 2 + 4:.1f}",
                fill="#777",
            )

    banks = _el(svg, "g", class_="ram")
    for a, b in ram:
        y0, y1 = _y(segs, a), _y(segs, b)
        is_nomap = any(na <= a and b <= nb for na, nb in nomap)
        r = _el(
            banks,
            "rect",
            x=_RAM_X,
            y=f"{y0:.1f}",
            width=_BAR_W,
            height=f"{max(1.0, y1 - y0):.1f}",
            fill="#37474f" if is_nomap else "#90caf9",
            stroke="#263238",
            stroke_width=0.5,
        )
        _el(
            r,
            "title",
            f"{'NOMAP ' if is_nomap else ''}memory {a:#x}..{b - 1:#x} ({human_size(b - a)})",
        )
    res = _el(svg, "g", class_="memblock-reserved")
    for a, b in reserved:
        y0, y1 = _y(segs, a), _y(segs, b)
        r = _el(
            res,
            "rect",
            x=_RES_X,
            y=f"{y0:.1f}",
            width=_BAR_W,
            height=f"{max(1.0, y1 - y0):.1f}",
            fill="#6d4c41",
            fill_opacity=0.8,
        )
        _el(r, "title", f"memblock.reserved {a:#x}..{b - 1:#x} ({human_size(b - a)})")

    # Regions, then their labels stacked without overlap and joined by leader lines.
    regions = _el(svg, "g", class_="regions")
    want: list[tuple[float, RegionView, float]] = []
    groups: dict[str, ET.Element] = {}
    for v in sorted(placed, key=lambda v: (v.base or 0, v.name)):
        base, size = v.base or 0, v.size or 0
        y0, y1 = _y(segs, base), _y(segs, base + size)
        h = max(2.0, y1 - y0)
        x = _REG_X + lane_of[v.name] * _LANE_W
        g = groups[v.name] = _region_group(regions, v)
        _el(
            g,
            "rect",
            x=x,
            y=f"{y0:.1f}",
            width=_LANE_W - 6,
            height=f"{h:.1f}",
            fill=VERDICT_COLOURS.get(v.verdict, "#000000"),
            stroke="#212121",
            stroke_width=0.6,
        )
        want.append((y0 + h / 2, v, x + _LANE_W - 6))
    y_label = float(_TOP)
    for center, v, x_end in want:
        ly = max(center, y_label)
        y_label = ly + _LINE
        g = groups[v.name]
        _el(
            g,
            "polyline",
            points=f"{x_end:.1f},{center:.1f} {label_x - 24:.1f},{center:.1f} "
            f"{label_x - 4:.1f},{ly - 4:.1f}",
            fill="none",
            stroke="#9e9e9e",
            stroke_width=0.6,
        )
        base, size = v.base or 0, v.size or 0
        _el(
            g,
            "text",
            f"{v.name}  {base:#x}+{human_size(size)}  [{_verdict_text(v)}]",
            x=label_x,
            y=f"{ly:.1f}",
            fill="#000000" if v.verdict == "ok" else "#b71c1c",
        )
    bottom = max(y_label, segs[-1].y + segs[-1].h if segs else _TOP) + 20

    # Regions without an address.
    if unplaced:
        _el(svg, "text", "regions without memory:", x=10, y=f"{bottom:.1f}", font_weight="bold")
        bottom += _LINE + 4
        col_w = 260
        cols = max(1, int((width - 20) // col_w))
        for i, v in enumerate(unplaced):
            x = 10 + (i % cols) * col_w
            y = bottom + (i // cols) * (_LINE + 4)
            g = _region_group(regions, v)
            _el(
                g,
                "rect",
                x=x,
                y=f"{y - 10:.1f}",
                width=12,
                height=12,
                fill=VERDICT_COLOURS.get(v.verdict, "#000000"),
                stroke="#212121",
                stroke_width=0.6,
            )
            size_text = f" {human_size(v.size)}" if v.size else ""
            _el(
                g,
                "text",
                f"{v.name}{size_text} [{_VERDICT_TEXT.get(v.verdict, v.verdict)}]",
                x=x + 16,
                y=f"{y:.1f}",
            )
        bottom += ((len(unplaced) - 1) // cols + 1) * (_LINE + 4) + 10

    # Legend.
    legend = _el(svg, "g", class_="legend")
    lx = 10
    ly = bottom + 10
    entries = [(colour, _VERDICT_TEXT[verdict]) for verdict, colour in VERDICT_COLOURS.items()]
    entries += [
        ("#90caf9", "RAM"),
        ("#37474f", "RAM, NOMAP"),
        ("#6d4c41", "memblock.reserved"),
    ]
    for colour, text in entries:
        _el(
            legend,
            "rect",
            x=lx,
            y=f"{ly - 10:.1f}",
            width=12,
            height=12,
            fill=colour,
            stroke="#212121",
        )
        _el(legend, "text", text, x=lx + 16, y=f"{ly:.1f}")
        lx += 16 + 8 * len(text) + 16
    height = ly + 20
    width = max(width, lx + 10)
    svg.set("width", str(int(width)))
    svg.set("height", str(int(height)))
    svg.set("viewBox", f"0 0 {int(width)} {int(height)}")
    ET.indent(svg, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(svg, encoding="unicode") + "\n"


def _verdict_text(v: RegionView) -> str:
    text = _VERDICT_TEXT.get(v.verdict, v.verdict)
    if v.verdict == "dropped" and v.reserved and not v.tracked:
        text += ": memblock-reserved, untracked"
    return text


def _id(name: str) -> str:
    return "region-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _region_group(parent: ET.Element, v: RegionView) -> ET.Element:
    g = _el(parent, "g", id=_id(v.name), class_=f"region verdict-{v.verdict}")
    g.set("data-name", v.name)
    g.set("data-verdict", v.verdict)
    where = (
        f"{v.base:#x}..{(v.base or 0) + (v.size or 0) - 1:#x} ({human_size(v.size or 0)})"
        if v.base is not None and v.size
        else (f"{human_size(v.size)}, no address" if v.size else "no address")
    )
    _el(g, "title", f"{v.name}: {v.kind}, {where}, {_verdict_text(v)}")
    return g


def svg_to_png(svg: str, *, scale: float = 1.0) -> bytes:
    """Render an SVG document to PNG with CairoSVG; InputError when it is not installed."""
    try:
        import cairosvg
    except (ImportError, OSError) as e:
        raise InputError(
            f"PNG output needs CairoSVG (pip install cairosvg) and the cairo library: {e}"
        ) from None
    png: bytes = cairosvg.svg2png(bytestring=svg.encode(), scale=scale)
    return png
