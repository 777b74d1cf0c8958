# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands.batch
--------------

``rmem-inspect batch DIR``: every crash dump under a directory, inspected in
worker processes (:mod:`rmem_inspect.batch`); a summary table, and one JSON
object per dump with ``--jsonl``. Exit status 1 when a dump failed or has
findings at warning or above.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rmem_inspect.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    h = "inspect every crash dump under a directory, in worker processes"
    p = sub.add_parser("batch", help=h, description=h)
    p.add_argument("directory", metavar="DIR", help="searched recursively for ELF crash dumps")
    p.add_argument(
        "--debug-dir",
        "-d",
        action="append",
        default=[],
        metavar="DIR",
        help="where vmlinux files are, matched by build-id; repeatable",
    )
    p.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, metavar="N")
    p.add_argument("--jsonl", metavar="FILE", help="one JSON object per dump ('-': stdout)")
    p.add_argument("--snapshots", metavar="DIR", help="also save each dump's JSON snapshot")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rmem_inspect.batch import render_summary, run_batch  # here: --help needs no tabulate

    if not os.path.isdir(args.directory):
        raise InputError(f"not a directory: {args.directory}")
    for d in args.debug_dir:
        if not os.path.isdir(d):
            raise InputError(f"--debug-dir {d} is not a directory")
    if args.jobs < 1:
        raise InputError("--jobs must be at least 1")
    jsonl = None
    close = False
    if args.jsonl == "-":
        jsonl = sys.stdout
    elif args.jsonl:
        try:
            jsonl = open(args.jsonl, "w")
        except OSError as e:
            raise InputError(f"cannot write {args.jsonl}: {e.strerror}") from None
        close = True
    try:
        results, seconds = run_batch(
            args.directory,
            debug_dirs=args.debug_dir,
            jobs=args.jobs,
            jsonl=jsonl,
            progress=None if args.quiet else sys.stderr,
            snapshot_dir=args.snapshots,
        )
    finally:
        if close and jsonl is not None:
            jsonl.close()
    if not results:
        raise InputError(f"no crash dumps under {args.directory}")
    summary = render_summary(results, seconds, args.jobs)
    (sys.stderr if args.jsonl == "-" else sys.stdout).write(summary)
    failed = any(r.status != "ok" for r in results)
    return 1 if failed or any(r.exit_status for r in results) else 0
