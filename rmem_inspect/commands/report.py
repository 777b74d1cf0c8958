# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands.report
---------------

``rmem-inspect report`` (kernel summary, every region, the findings) and
``rmem-inspect check`` (the findings only; ``-q`` the root causes only). The
exit status is the report's: 0 clean, 1 findings at warning or above.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rmem_inspect.commands.common import (
    add_evidence_option,
    add_format_option,
    add_source_options,
    source_from_args,
)

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    for name, help_ in (
        ("report", "kernel summary, every region, and the findings"),
        ("check", "findings only; exit status says whether any is a warning or error"),
    ):
        p = sub.add_parser(name, help=help_, description=help_)
        add_source_options(p)
        add_format_option(p)
        add_evidence_option(p)
        if name == "check":
            p.add_argument(
                "--quiet",
                "-q",
                action="store_true",
                help="print only the root causes (regions, evidence, fix), not each finding",
            )
        p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # here, not at the top: --help and the other commands do not need them
    from rmem_inspect.inputs import open_input
    from rmem_inspect.output import render

    report = open_input(source_from_args(args)).report()
    sys.stdout.write(
        render(
            report,
            args.format,
            findings_only=args.command == "check",
            evidence=args.evidence,
            causes_only=getattr(args, "quiet", False),
        )
    )
    return report.exit_status()
