# SPDX-License-Identifier: GPL-2.0-or-later
"""
drgn_script
-----------

The ``rmem-inspect`` report as a drgn script, for people who already have drgn
open on a dump (or the running kernel) and want the same output::

    script=$(python -c 'import rmem_inspect.drgn_script as m; print(m.__file__)')
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drgn import Program

    from rmem_inspect.checks import Report

__all__ = ["USAGE", "build_parser", "main", "program_source", "report"]

USAGE = (
    "usage: drgn -c VMCORE -s VMLINUX {path} [report|check] [--format table|json|markdown] "
    "[--evidence] [--no-linear-map]  (a drgn script: run it with drgn, or use rmem-inspect)"
)


def program_source(prog: Program) -> dict[str, Any]:
    """What ``prog`` was opened on, as ``rmem-inspect`` records it in the report."""
    import drgn

    if prog.flags & drgn.ProgramFlags.IS_LIVE:
        # The running kernel is local; a live kernel elsewhere is a QEMU guest over QMP
        # (drgn --qemu), whose socket drgn does not expose.
        return {"kind": "live" if prog.flags & drgn.ProgramFlags.IS_LOCAL else "qemu"}
    path = getattr(prog, "core_dump_path", None)  # drgn >= 0.0.33
    if path:
        return {"kind": "vmcore", "vmcore": os.path.abspath(path)}
    return {"kind": "vmcore"}


def _require_kernel(prog: Program) -> None:
    import drgn

    from rmem_inspect.errors import InputError

    if not prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL:
        raise InputError("the drgn program is not a Linux kernel (open a vmcore or /proc/kcore)")
    try:
        prog.type("struct task_struct")
    except LookupError:
        raise InputError(
            "drgn has no debug info for this kernel: pass -s VMLINUX (the vmlinux from the "
            "-dbg package)"
        ) from None


def report(prog: Program, *, linear_map: bool = True) -> Report:
    """``checks.run(inspect(prog))`` with the source recorded as ``rmem-inspect`` does.

    :raises InputError: not a kernel, no kernel debug info, or no reserved_mem.
    """
    from rmem_inspect import checks
    from rmem_inspect.inspect import inspect

    _require_kernel(prog)
    return checks.run(inspect(prog, source=program_source(prog), linear_map=linear_map))


def build_parser(prog: str = "drgn_script.py") -> argparse.ArgumentParser:
    """The script's options: those of ``rmem-inspect report``/``check`` minus the input."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="rmem-inspect as a drgn script: run with "
        "'drgn -c VMCORE -s VMLINUX drgn_script.py [options]'.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("report", "check"),
        default="report",
        help="report (default): summary, regions and findings; check: findings only",
    )
    parser.add_argument("--format", "-f", choices=("table", "json", "markdown"), default="table")
    parser.add_argument("--evidence", action="store_true", help="print each finding's evidence")
    parser.add_argument(
        "--no-linear-map",
        action="store_true",
        help="skip the page-table walk over no-map regions",
    )
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(prog: Program, argv: list[str] | None = None) -> int:
    """Print the report for ``prog``; return ``rmem-inspect``'s exit status."""
    args = build_parser().parse_args(argv)
    from rmem_inspect.cli import guarded

    def body() -> int:
        from rmem_inspect.output import render

        rep = report(prog, linear_map=not args.no_linear_map)
        sys.stdout.write(
            render(rep, args.format, findings_only=args.command == "check", evidence=args.evidence)
        )
        return rep.exit_status()

    return guarded(body, args.debug)


def _unshadow_stdlib() -> None:
    """Run as ``drgn ... rmem_inspect/drgn_script.py`` (or ``python`` on the file), the
    package directory is ``sys.path[0]``, where ``inspect.py`` would shadow the standard
    library's ``inspect``: use the directory above it (the checkout or site-packages)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for i, entry in enumerate(sys.path):
        if entry and os.path.abspath(entry) == here:
            sys.path[i] = os.path.dirname(here)


if __name__ == "__main__":
    _unshadow_stdlib()
    _prog = globals().get("prog")
    if _prog is None:
        print(USAGE.format(path=os.path.abspath(__file__)), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(_prog, sys.argv[1:]))
