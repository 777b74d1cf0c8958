# SPDX-License-Identifier: GPL-2.0-or-later
"""Every transcript in man/*_example.txt, rerun on the factory's real dumps, prints
what the file says, with the exit status it says (tests/examples.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.examples import EXAMPLE_FILES, TRANSCRIPT, dump_dir, run

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
    assert (got, rc) == (output, status), f"{path.name}: rerun tools/update-examples.py"
