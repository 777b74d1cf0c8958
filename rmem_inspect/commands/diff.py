# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands.diff
-------------

``rmem-inspect diff A B``: the regions and findings that changed between two
snapshots, dumps or preflights (each recognised by :func:`rmem_inspect.inputs.open_input`).
Exit status 0 when nothing changed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rmem_inspect.commands.common import add_format_option

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    h = "compare two snapshots, dumps or preflights: regions and findings that changed"
    p = sub.add_parser("diff", help=h, description=h)
    p.add_argument("a", metavar="A", help="JSON snapshot, vmcore, or DTB (with --kernel-a)")
    p.add_argument("b", metavar="B", help="JSON snapshot, vmcore, or DTB (with --kernel-b)")
    p.add_argument("--vmlinux-a", metavar="FILE", help="vmlinux for A when it is a vmcore")
    p.add_argument("--vmlinux-b", metavar="FILE", help="vmlinux for B when it is a vmcore")
    p.add_argument("--kernel-a", metavar="KERNEL", help="kernel to preflight A with, for a DTB")
    p.add_argument("--kernel-b", metavar="KERNEL", help="kernel to preflight B with, for a DTB")
    add_format_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # here, not at the top: --help and the other commands do not need them
    from rmem_inspect.diff import diff_reports
    from rmem_inspect.inputs import Source, open_input
    from rmem_inspect.output.diff import render_diff

    # the message for a DTB without its kernel names both options, as it always has
    option = "--kernel-a/--kernel-b"
    a = open_input(Source(file=args.a, vmlinux=args.vmlinux_a, kernel=args.kernel_a,
                          kernel_option=option)).report()  # fmt: skip
    b = open_input(Source(file=args.b, vmlinux=args.vmlinux_b, kernel=args.kernel_b,
                          kernel_option=option)).report()  # fmt: skip
    d = diff_reports(a, b)
    sys.stdout.write(render_diff(d, args.format))
    return 0 if d.empty else 1
