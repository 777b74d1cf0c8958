# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands
--------

The rmem-inspect command line: one module per subcommand, each with
``add_parser(sub)`` (its options; the parser's ``run`` default is its
``run(args) -> int``). :func:`main` builds the parser from :data:`MODULES` in
order and runs the command under :func:`guarded`.

Every user-facing error is one line on stderr and exit status 2; findings at
warning or above give exit status 1; a clean kernel gives 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from rmem_inspect.commands import batch, diff, preflight, report, snapshot, trace
from rmem_inspect.commands import map as map_
from rmem_inspect.errors import InputError
from rmem_inspect.version import __version__

__all__ = ["EXAMPLES", "MODULES", "build_parser", "guarded", "main"]

#: The subcommands' modules, in the order ``--help`` lists them.
MODULES = (report, snapshot, preflight, diff, map_, batch, trace)

EXAMPLES = """examples:
  rmem-inspect report --vmcore vmcore --vmlinux vmlinux     # full report on a dump
  rmem-inspect check --vmcore vmcore --format json           # findings only, for scripts
  rmem-inspect check -q --vmcore vmcore                      # root causes and fixes only
  rmem-inspect report                                        # the running kernel (root)
  rmem-inspect snapshot --vmcore vmcore -o board.json        # save what was read
  rmem-inspect check --snapshot board.json                   # re-run the checks offline
  rmem-inspect trace                                         # eBPF tracing of carveout users

exit status: 0 no warning or error, 1 findings at warning or above, 2 bad input.
The vmlinux is found by build-id in /usr/lib/debug and Debian -dbg layouts when
--vmlinux is not given, and on the debuginfod servers of $DEBUGINFOD_URLS if set.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rmem-inspect",
        description="Find out which devicetree reserved-memory carveouts the kernel dropped, "
        "and why, from a crash dump or the running kernel.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("--version", action="version", version=f"rmem_inspect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in MODULES:
        module.add_parser(sub)
    return parser


def guarded(body: Callable[[], int], debug: bool = False) -> int:
    """Run ``body`` under the exit-status contract shared by every entry point.

    InputError: one line on stderr, exit 2. Anything unexpected: one line, exit 2
    (``debug`` re-raises for a traceback). Ctrl-C: 130. A closed pipe: 0.
    """
    try:
        return body()
    except InputError as e:
        print(f"rmem-inspect: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # never a traceback for users; --debug shows it
        if debug:
            raise
        print(
            f"rmem-inspect: error: internal error {type(e).__name__}: {e} "
            "(rerun with --debug for a traceback and report it)",
            file=sys.stderr,
        )
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    run: Callable[[argparse.Namespace], int] = args.run
    from rmem_inspect.collect.drgn_plugins import skip_command_plugins

    skip_command_plugins(os.environ)  # drgn's command-line plugins: unused here
    return guarded(lambda: run(args), getattr(args, "debug", False))
