# SPDX-License-Identifier: GPL-2.0-or-later
"""Every transcript in man/*_example.txt, rerun on the factory's real dumps, prints
what the file says, with the exit status it says (tests/examples.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.examples import (
    EXAMPLE_FILES,
    TRANSCRIPT,
    boot_specific,
    dump_dir,
    ramdump_named,
    run,
    without_boot_specific,
)
from vmcores.ramdump_set import load_ramdumps

pytestmark = pytest.mark.vmcore

CASES = [
    (path, m.group(1), m.group(2), int(m.group(3)))
    for path in EXAMPLE_FILES
    for m in TRANSCRIPT.finditer(path.read_text())
]


def test_examples_have_transcripts() -> None:
    names = {p.name for p, *_ in CASES}
    assert {"rmem-inspect_example.txt", "rmem-inspect-preflight_example.txt"} <= names


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dump_dir(tmp_path_factory.mktemp("dumps"))


@pytest.mark.parametrize(
    ("path", "command", "output", "status"),
    CASES,
    ids=[f"{p.name}:{c}" for p, c, *_ in CASES],
)
def test_example_transcript(
    dumps: Path, path: Path, command: str, output: str, status: int
) -> None:
    got, rc = run(command, dumps)
    want = (without_boot_specific(output), status)
    assert (without_boot_specific(got), rc) == want, f"{path.name}: rerun tools/update-examples.py"
    # what varies per boot is still checked: against the factory's record of this boot
    addresses = boot_specific(got)
    assert len(addresses) == len(boot_specific(output))
    if addresses:
        named = ramdump_named(command)
        assert named is not None, command
        (rs,) = [
            r for r in load_ramdumps() if r.arch == "arm64" and (r.series, r.scenario) == named
        ]
        assert addresses == [rs.vmcoreinfo_at[0]] * len(addresses)
