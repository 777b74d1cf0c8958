# SPDX-License-Identifier: GPL-2.0-or-later
"""The memory map picture: valid SVG, one element per region, verdict colours."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rmem_inspect import checks
from rmem_inspect.model import Snapshot
from rmem_inspect.output.svg import VERDICT_COLOURS, render_svg, svg_to_png
from tests.expected import expected_findings
from tests.unit.test_golden import load

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
NS = "{http://www.w3.org/2000/svg}"


def regions_in(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == NS + "svg"
    out: dict[str, ET.Element] = {}
    for g in root.iter(NS + "g"):
        name = g.get("data-name")
        if name is not None:
            assert name not in out, f"two elements for {name}"
            out[name] = g
    return out


@pytest.mark.parametrize("name", ["6.1-overflow", "6.12-dynamic-limit", "7.x-multi-reg"])
def test_one_element_per_region(name: str) -> None:
    snap = Snapshot.loads((GOLDEN / f"{name}.json").read_text())
    report = checks.run(snap)
    svg = render_svg(report)
    found = regions_in(svg)
    assert set(found) == {v.name for v in report.regions}
    assert snap.fdt is not None
    for r in snap.fdt.regions:
        assert r.name in found
        texts = " ".join(t.text or "" for t in found[r.name].iter() if t.text)
        assert r.name in texts


def test_verdict_colours_on_61_overflow() -> None:
    report = checks.run(Snapshot.loads((GOLDEN / "6.1-overflow.json").read_text()))
    found = regions_in(render_svg(report))
    # What the kernel dropped (tests/expected.py, from the 6.1 boot log) is drawn red or
    # purple; everything the kernel tracked without a finding is green.
    lost = {r for c, r in expected_findings("overflow", "6.1") if c == "RMEM-DROPPED"}
    flagged = {r for _, r in expected_findings("overflow", "6.1")}
    for name, g in found.items():
        rect = g.find(NS + "rect")
        assert rect is not None
        fill = rect.get("fill")
        if name in lost:
            assert fill in (VERDICT_COLOURS["dropped"], VERDICT_COLOURS["unallocated"])
        elif name not in flagged:
            assert fill == VERDICT_COLOURS["ok"], name


def test_png() -> None:
    pytest.importorskip("cairosvg")
    report = checks.run(Snapshot.loads((GOLDEN / "6.1-overflow.json").read_text()))
    png = svg_to_png(render_svg(report))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < 300_000


def test_cli_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rmem_inspect.commands import main

    out = tmp_path / "map.svg"
    assert main(["map", "--snapshot", str(GOLDEN / "6.12-overlap.json"), "-o", str(out)]) == 0
    found = regions_in(out.read_text())
    # The kernel tracked both overlapping regions (tests/expected.py): drawn as overlapping.
    for name in ("camera@54000000", "display@54200000"):
        assert found[name].get("data-verdict") == "overlap"
    assert main(["map", "--snapshot", str(GOLDEN / "6.12-overlap.json"), "-o", "x.gif"]) == 2
    assert "must end in .svg or .png" in capsys.readouterr().err


def test_every_verdict_has_a_colour_and_a_legend_entry() -> None:
    """A region's verdict is never drawn in the fallback black nor missing from the
    legend; a corrupt reserved_mem gives 'unknown' verdicts."""
    from rmem_inspect.checks import Verdict

    assert set(VERDICT_COLOURS) == set(Verdict)
    assert "#000000" not in VERDICT_COLOURS.values()
    snap = load("6.12", "baseline")
    assert snap.reserved_mem is not None
    # a count outside 0..capacity (RMEM-COUNT-CORRUPT): the regions it does not list
    # are neither tracked nor dropped as far as anyone can tell
    snap.reserved_mem.count = -1
    del snap.reserved_mem.entries[1:]
    report = checks.run(snap)
    unknown = [v for v in report.regions if v.verdict == Verdict.UNKNOWN]
    assert unknown
    svg = render_svg(report)
    assert "unknown (reserved_mem unreadable)" in svg
    assert f'fill="{VERDICT_COLOURS[Verdict.UNKNOWN]}"' in svg
