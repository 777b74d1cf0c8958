# SPDX-License-Identifier: GPL-2.0-or-later
"""
Preflight on the DTBs board engineers really have: every upstream board DTB with a
/reserved-memory that Debian's generic arm64 image package ships (fetched into the
factory cache by ``python -m vmcores.boards``), on every kernel generation. None may
raise, none may be refused for want of a RAM size (most leave the memory node's size to
the boot loader: they are replayed on assumed RAM, said in the header and in each finding
that rests on it), and what does not depend on RAM must not depend on the assumption.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from rmem_inspect.formats.devicetree import decode_tree
from rmem_inspect.formats.fdt import parse_fdt
from rmem_inspect.model import Snapshot
from rmem_inspect.preflight import preflight
from rmem_inspect.preflight.assumed_ram import RAM_CODES
from tests.expected import expected_findings
from vmcores.boards import board_dtbs, fetch_board_dtbs
from vmcores.manifest import default_cache

pytestmark = pytest.mark.vmcore

SERIES = ("6.1", "6.12", "7.x")
GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def _boards_dir() -> Path:
    done = sorted((default_cache() / "boards").glob("*/.complete"))
    return done[-1].parent if done else fetch_board_dtbs()


def _sweep(path: str) -> tuple[str, bool, list[str]]:
    """(path, replayed on assumed RAM, problems) for one DTB on every series."""
    data = Path(path).read_bytes()
    problems: list[str] = []
    assumed = False
    for series in SERIES:
        try:
            res = preflight(data, series)
        except Exception as e:  # noqa: BLE001 - any exception is what this test looks for
            problems.append(f"{series}: {type(e).__name__}: {e}")
            continue
        memory = res.snapshot.source.get("memory")
        if memory is None:
            continue
        assumed = True
        if "RAM assumed" not in str(memory):
            problems.append(f"{series}: header does not state the assumption: {memory}")
        ram = res.snapshot.memblock.memory if res.snapshot.memblock else []
        for f in res.report.findings:
            if "assumed_memory" in f.evidence and "rests on the RAM assumed" not in f.message:
                problems.append(f"{series}: {f.code} {f.region}: evidence without the words")
            if "assumed_memory" in f.evidence and f.code not in RAM_CODES:
                problems.append(f"{series}: {f.code} does not depend on RAM")
        # the same DTB on 4 GiB more RAM: the findings that do not rest on RAM stay
        base = min(r.base for r in ram)
        size = sum(r.size for r in ram) + (4 << 30)
        other = preflight(data, series, memory=[(base, size)])

        def fixed(report: object) -> set[tuple[str, str | None]]:
            return {
                (f.code, f.region)
                for f in report.findings  # type: ignore[attr-defined]
                if f.code not in RAM_CODES and f.severity != "info"
            }

        if fixed(res.report) != fixed(other.report):
            problems.append(
                f"{series}: verdicts beside RAM depend on the assumption: "
                f"{sorted(fixed(res.report) ^ fixed(other.report))}"
            )
    return path, assumed, problems


def test_every_board_dtb_is_answered() -> None:
    root = _boards_dir()
    dtbs = []
    for p in board_dtbs(root):
        dt = decode_tree(parse_fdt(p.read_bytes()).root, "fdt")
        if dt.has_reserved_memory:
            dtbs.append(str(p))
    assert len(dtbs) > 600, f"{root}: only {len(dtbs)} board DTBs with /reserved-memory"
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_sweep, dtbs, chunksize=8))
    problems = [f"{Path(p).relative_to(root)}: {x}" for p, _a, xs in results for x in xs]
    assert not problems, "\n".join(problems[:30])
    assumed = sum(a for _p, a, _x in results)
    # most of them leave the memory size to the boot loader: all answered
    assert assumed > len(dtbs) // 3


@pytest.mark.parametrize("series", SERIES)
def test_the_factorys_board_keeps_its_verdicts(series: str) -> None:
    """The package's own mt8192-asurada DTBs (the board the factory boots as scenario
    mt8192) replayed with the handlers of the kernel the factory booted: the warnings and
    errors are those that kernel gave (tests/expected.py, from its boot log)."""
    root = _boards_dir()
    kernel = Snapshot.loads((GOLDEN / f"{series}-mt8192.json").read_text()).kernel
    boards = sorted((root / "mediatek").glob("mt8192-asurada-*.dtb"))
    assert boards
    for path in boards:
        res = preflight(path.read_bytes(), series, handlers=kernel.rmem_handlers)
        got = {(f.code, f.region) for f in res.report.findings if f.severity != "info"}
        assert got == expected_findings("mt8192", series), path.name
