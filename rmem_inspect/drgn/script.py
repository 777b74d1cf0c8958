# SPDX-License-Identifier: GPL-2.0-or-later
"""
drgn.script
-----------

The ``rmem-inspect`` report as a drgn script, for people who already have drgn
open on a dump (or the running kernel) and want the same output::

    script=$(python -c 'import rmem_inspect.drgn.script as m; print(m.__file__)')
    drgn -c VMCORE -s VMLINUX "$script" [report | check] [--format table|json|markdown] \\
        [--evidence] [--no-linear-map]

drgn runs the file with a global ``prog`` and the script's arguments in
``sys.argv``. Standard output and the exit status are those of
``rmem-inspect report`` (or ``check``) on the same dump: 0 clean, 1 findings at
warning or above, 2 bad input. The report's ``source`` names the dump when drgn
says which one it opened (``Program.core_dump_path``, drgn 0.0.33 and later);
older drgn records only ``kind``.

:func:`report` is the same pipeline as a function; the drgn plugin's ``rmem``
command uses it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drgn import Program

    from rmem_inspect.checks import Report

__all__ = ["USAGE", "build_parser", "main", "report"]

USAGE = (
    "usage: drgn -c VMCORE -s VMLINUX {path} [report|check] [--format table|json|markdown] "
    "[--evidence] [--no-linear-map]  (a drgn script: run it with drgn, or use rmem-inspect)"
)


def report(prog: Program, *, linear_map: bool = True) -> Report:
    """``checks.run(inspect(prog))`` with the source recorded as ``rmem-inspect`` does.

    :raises InputError: not a kernel, no kernel debug info, or no reserved_mem.
    """
    # imported here, as everywhere in this file: run as a file, the script can import
    # rmem_inspect only once _checkout_on_path() has run
    from rmem_inspect.inputs import Source, open_input

    return open_input(Source(program=prog, linear_map=linear_map)).report()


def build_parser(prog: str = "script.py") -> argparse.ArgumentParser:
    """The script's options: those of ``rmem-inspect report``/``check`` minus the input."""
    from rmem_inspect.commands.common import add_evidence_option, add_format_option

    parser = argparse.ArgumentParser(
        prog=prog,
        description="rmem-inspect as a drgn script: run with "
        "'drgn -c VMCORE -s VMLINUX script.py [options]'.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("report", "check"),
        default="report",
        help="report (default): summary, regions and findings; check: findings only",
    )
    add_format_option(parser)
    add_evidence_option(parser)
    parser.add_argument(
        "--no-linear-map",
        action="store_true",
        help="skip the page-table walk over no-map regions",
    )
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(prog: Program, argv: list[str] | None = None) -> int:
    """Print the report for ``prog``; return ``rmem-inspect``'s exit status."""
    from rmem_inspect.commands import guarded

    args = build_parser().parse_args(argv)

    def body() -> int:
        from rmem_inspect.output import render

        rep = report(prog, linear_map=not args.no_linear_map)
        sys.stdout.write(
            render(rep, args.format, findings_only=args.command == "check", evidence=args.evidence)
        )
        return rep.exit_status()

    return guarded(body, args.debug)


def _checkout_on_path() -> None:
    """Run as ``drgn ... rmem_inspect/drgn/script.py`` (or ``python`` on the file), this
    file's directory is ``sys.path[0]``, from which a checkout that is not installed
    cannot import ``rmem_inspect``: use the directory above the package instead (the
    checkout or site-packages)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for i, entry in enumerate(sys.path):
        if entry and os.path.abspath(entry) == here:
            sys.path[i] = os.path.dirname(os.path.dirname(here))


if __name__ == "__main__":
    _checkout_on_path()
    _prog = globals().get("prog")
    if _prog is None:
        print(USAGE.format(path=os.path.abspath(__file__)), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(_prog, sys.argv[1:]))
