# SPDX-License-Identifier: GPL-2.0-or-later
"""
rmem-inspect command line.

Every user-facing error is one line on stderr and exit status 2; findings at
warning or above give exit status 1; a clean kernel gives 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from rmem_inspect import __version__

__all__ = ["main"]

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


def _add_source(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to inspect (default: the running kernel)")
    g.add_argument("--vmcore", "-c", metavar="FILE", help="ELF or kdump crash dump")
    g.add_argument("--vmlinux", "-s", metavar="FILE", help="vmlinux with debug info")
    g.add_argument("--live", action="store_true", help="the running kernel via /proc/kcore")
    g.add_argument("--snapshot", metavar="FILE", help="a JSON snapshot written by 'snapshot'")
    g.add_argument(
        "--qemu", metavar="SOCKET", help="a running QEMU guest through its QMP socket (drgn 0.3.0+)"
    )
    g.add_argument(
        "--no-debug-info",
        action="store_true",
        help="live fallback without a vmlinux: read /sys/firmware, debugfs memblock, "
        "/proc/iomem and the kernel log (root)",
    )
    g.add_argument(
        "--types",
        choices=("auto", "dwarf", "btf"),
        default="auto",
        help="where types and symbols come from: dwarf (the vmlinux), btf (the kernel's own "
        "BTF and kallsyms, no vmlinux needed), auto (the vmlinux when given or found, else btf)",
    )
    p.add_argument(
        "--no-linear-map",
        action="store_true",
        help="skip the page-table walk over no-map regions",
    )
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rmem-inspect",
        description="Find out which devicetree reserved-memory carveouts the kernel dropped, "
        "and why, from a crash dump or the running kernel.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("--version", action="version", version=f"rmem_inspect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in (
        ("report", "kernel summary, every region, and the findings"),
        ("check", "findings only; exit status says whether any is a warning or error"),
    ):
        p = sub.add_parser(name, help=help_, description=help_)
        _add_source(p)
        p.add_argument("--format", "-f", choices=("table", "json", "markdown"), default="table")
        p.add_argument("--evidence", action="store_true", help="print each finding's evidence")
        if name == "check":
            p.add_argument(
                "--quiet",
                "-q",
                action="store_true",
                help="print only the root causes (regions, evidence, fix), not each finding",
            )
    p = sub.add_parser("snapshot", help="save what was read as JSON (the checks' input)")
    _add_source(p)
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="'-' for stdout")
    from rmem_inspect.cli_extra import _add_extra_commands

    _add_extra_commands(sub)
    from rmem_inspect.trace import add_trace_parser

    add_trace_parser(sub)
    return parser


def _snapshot(args: argparse.Namespace) -> Any:
    from rmem_inspect.errors import InputError
    from rmem_inspect.model import Snapshot, SnapshotError

    if args.snapshot:
        try:
            with open(args.snapshot) as f:
                text = f.read()
        except OSError as e:
            raise InputError(f"cannot read snapshot {args.snapshot}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise InputError(
                f"{args.snapshot} is not a valid snapshot: not UTF-8 text (byte {e.start}); "
                "write one with 'rmem-inspect snapshot'"
            ) from None
        try:
            return Snapshot.loads(text)
        except SnapshotError as e:
            raise InputError(f"{args.snapshot} is not a valid snapshot: {e}") from None
    if args.no_debug_info and not (args.vmcore or args.qemu):
        from rmem_inspect.collect.sysfs import read_sysfs

        return read_sysfs()
    from rmem_inspect.collect.program import open_live, open_qemu, open_vmcore
    from rmem_inspect.inspect import inspect

    if args.qemu and not args.vmcore:
        prog = open_qemu(args.qemu, args.vmlinux)
        source = {"kind": "qemu", "qmp": os.path.abspath(args.qemu)}
    elif args.vmcore:
        prog = open_vmcore(args.vmcore, args.vmlinux, args.types)
        source = {"kind": "vmcore", "vmcore": os.path.abspath(args.vmcore)}
    else:
        try:
            prog = open_live(args.vmlinux, args.types)
        except InputError as e:
            if args.vmlinux or args.types != "auto":
                raise
            # no vmlinux, and no usable kallsyms/BTF: the sysfs/debugfs fallback
            from rmem_inspect.collect.sysfs import read_sysfs

            snap = read_sysfs()
            snap.source["why_not_drgn"] = str(e)
            return snap
        source = {"kind": "live"}
    return inspect(prog, source=source, linear_map=not args.no_linear_map)


def guarded(body: Callable[[], int], debug: bool = False) -> int:
    """Run ``body`` under the exit-status contract shared by every entry point.

    InputError: one line on stderr, exit 2. Anything unexpected: one line, exit 2
    (``debug`` re-raises for a traceback). Ctrl-C: 130. A closed pipe: 0.
    """
    from rmem_inspect.errors import InputError

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


def _run(args: argparse.Namespace) -> int:
    if args.command == "trace":
        from rmem_inspect.trace import run_trace

        return run_trace(args)
    from rmem_inspect.cli_extra import run_extra

    rc = run_extra(args)
    if rc is not None:
        return rc
    snap = _snapshot(args)
    if args.command == "snapshot":
        text = snap.dumps()
        if args.output == "-":
            sys.stdout.write(text)
        else:
            with open(args.output, "w") as f:
                f.write(text)
        return 0
    from rmem_inspect import checks
    from rmem_inspect.output import render

    report = checks.run(snap)
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


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return guarded(lambda: _run(args), getattr(args, "debug", False))


if __name__ == "__main__":
    sys.exit(main())
