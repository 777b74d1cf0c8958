#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Rerun the transcripts of man/*_example.txt on the factory's dumps and rewrite their
output (tests/examples.py says how a transcript looks):

    python tools/update-examples.py      # after python -m vmcores.build
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.examples import EXAMPLE_FILES, TRANSCRIPT, dump_dir, refresh  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        directory = dump_dir(Path(tmp))
        for path in EXAMPLE_FILES:
            text = path.read_text()
            if not TRANSCRIPT.search(text):
                continue
            path.write_text(refresh(text, directory))
            print(f"{path.relative_to(ROOT)}: {len(TRANSCRIPT.findall(text))} transcripts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
