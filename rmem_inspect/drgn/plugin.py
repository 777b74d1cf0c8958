# SPDX-License-Identifier: GPL-2.0-or-later
"""
drgn.plugin
-----------

A drgn plugin that adds the ``rmem`` command to drgn sessions on a Linux
kernel::

    >>> %rmem                     # report: summary, regions, findings
    >>> %rmem check --evidence    # findings only, with their evidence
    >>> %rmem --format json > report.json
    >>> _.findings                # the command returns the checks.Report

drgn loads it through the ``drgn.plugins`` entry point group
(``rmem_inspect = rmem_inspect.drgn.plugin``), or without installing the entry
point with ``DRGN_PLUGINS=rmem_inspect=rmem_inspect.drgn.plugin``. On its
``drgn_prog_set`` hook, for a Linux kernel program, the plugin registers the
command in drgn's command framework (``drgn.commands``, drgn 0.0.33 and later;
the REPL runs commands prefixed with ``%``, scripts and ``drgn -e`` with
``drgn.commands.run_command(prog, "rmem ...")``). Older drgn (0.0.31 on Debian
trixie) has plugins but no commands: the hook then does nothing, and the REPL
can still ``from rmem_inspect import inspect, render, run_checks``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from drgn import Program, ProgramFlags

if TYPE_CHECKING:
    from rmem_inspect.checks import Report

__all__ = ["COMMAND", "drgn_prog_set", "register"]

#: The command's name in drgn.
COMMAND = "rmem"

logger = logging.getLogger("drgn.plugins.rmem_inspect")

_registered = False

DRGN_EQUIVALENT = """\
from rmem_inspect import inspect, render, run_checks
report = run_checks(inspect(prog{linear_map}))
print(render(report, "{fmt}"{options}), end="")
"""


def _is_linux_kernel(prog: Program) -> bool:
    return bool(prog.flags & ProgramFlags.IS_LINUX_KERNEL)


def _cmd_rmem(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> Report | None:
    findings_only = args.mode == "check"
    if args.drgn:
        options = (", findings_only=True" if findings_only else "") + (
            ", evidence=True" if args.evidence else ""
        )
        linear_map = ", linear_map=False" if args.no_linear_map else ""
        sys.stdout.write(
            DRGN_EQUIVALENT.format(linear_map=linear_map, fmt=args.format, options=options)
        )
        return None
    from drgn.commands import CommandError

    from rmem_inspect.drgn.script import report
    from rmem_inspect.errors import InputError
    from rmem_inspect.output import render

    try:
        rep = report(prog, linear_map=not args.no_linear_map)
    except InputError as e:
        raise CommandError(f"{name}: {e}") from None
    sys.stdout.write(render(rep, args.format, findings_only=findings_only, evidence=args.evidence))
    return rep


def register() -> bool:
    """Add the ``rmem`` command to drgn's default command namespace.

    Idempotent. Returns False, and changes nothing, on a drgn without a command
    framework (before 0.0.33).
    """
    global _registered
    if _registered:
        return True
    try:
        from drgn.commands import argument, command
    except ImportError:
        logger.debug("drgn %s has no command framework; not adding %r", _drgn_version(), COMMAND)
        return False
    # here: drgn imports this plugin in every session, kernel or not
    from rmem_inspect.commands.common import FORMATS

    arguments = (
        argument(
            "mode",
            nargs="?",
            choices=("report", "check"),
            default="report",
            help="report (default): summary, regions and findings; check: findings only",
        ),
        argument(
            "-f",
            "--format",
            choices=FORMATS,
            default="table",
            help="output format (default: table)",
        ),
        argument("--evidence", action="store_true", help="print each finding's evidence"),
        argument(
            "--no-linear-map",
            action="store_true",
            help="skip the page-table walk over no-map regions",
        ),
        argument(
            "--drgn",
            action="store_true",
            help="print how to do the same with the rmem_inspect library",
        ),
    )
    command(
        name=COMMAND,
        description="check devicetree reserved-memory carveouts (rmem-inspect)",
        long_description="Cross-check the devicetree's reserved-memory regions against "
        "reserved_mem, memblock, CMA and the devices using them, and report the regions "
        "the kernel dropped, and why. Same output as 'rmem-inspect report' / 'check'. "
        "Returns the checks.Report.",
        arguments=arguments,
        enabled=_is_linux_kernel,
    )(_cmd_rmem)
    _registered = True
    return True


def _drgn_version() -> str:
    import drgn

    return str(getattr(drgn, "__version__", "?"))


def drgn_prog_set(prog: Program) -> None:
    """drgn plugin hook: called once a program's target (dump, kernel) is set."""
    if _is_linux_kernel(prog):
        register()
