# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands.map
------------

``rmem-inspect map -o FILE.svg|FILE.png``: the physical address space and
every region, coloured by verdict (:mod:`rmem_inspect.output.svg`), for any
input of ``report`` or a preflight of a DTB.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rmem_inspect.commands.common import add_source_options, source_from_args
from rmem_inspect.errors import InputError
from rmem_inspect.kernel.layouts import KERNEL_LAYOUT_HELP

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    h = "draw the physical address space and every region, coloured by verdict (SVG or PNG)"
    p = sub.add_parser("map", help=h, description=h)
    add_source_options(p)
    p.add_argument("--dtb", metavar="FILE", help="map a preflight of this DTB (needs --kernel)")
    p.add_argument(
        "--kernel", "-k", metavar="KERNEL", help="kernel for --dtb: " + KERNEL_LAYOUT_HELP
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="FILE.svg or FILE.png ('-' writes SVG to stdout)",
    )
    p.add_argument("--title", help="title of the picture")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # here, not at the top: --help and the other commands do not need them
    from rmem_inspect.inputs import Source, open_input
    from rmem_inspect.output.svg import render_svg, svg_to_png

    if args.dtb and not args.kernel:
        raise InputError("--dtb needs --kernel KERNEL (a version such as 6.12 or a layout)")
    # --dtb wins over the source options
    source = Source(dtb=args.dtb, kernel=args.kernel) if args.dtb else source_from_args(args)
    report = open_input(source).report()
    svg = render_svg(report, title=args.title)
    if args.output == "-":
        sys.stdout.write(svg)
    elif args.output.lower().endswith(".png"):
        data = svg_to_png(svg)
        with open(args.output, "wb") as f:
            f.write(data)
    elif args.output.lower().endswith(".svg"):
        with open(args.output, "w") as f:
            f.write(svg)
    else:
        raise InputError(f"{args.output}: the output name must end in .svg or .png")
    return 0
