# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands.snapshot
-----------------

``rmem-inspect snapshot``: save what was read as JSON, the checks' whole input
(``check --snapshot`` runs them again offline).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rmem_inspect.commands.common import add_source_options, source_from_args

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("snapshot", help="save what was read as JSON (the checks' input)")
    add_source_options(p)
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="'-' for stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rmem_inspect.inputs import open_input  # here: --help does not need it

    snap = open_input(source_from_args(args)).snapshot
    assert snap is not None  # the source options never name a DTB
    text = snap.dumps()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
    return 0
