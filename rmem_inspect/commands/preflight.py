# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands.preflight
------------------

``rmem-inspect preflight DTB --kernel KERNEL``: predict from a DTB alone which
regions a kernel generation drops, and why (:func:`rmem_inspect.preflight.preflight`),
with the kernel log lines it would print.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rmem_inspect.commands.common import add_evidence_option, add_format_option
from rmem_inspect.errors import InputError
from rmem_inspect.kernel.layouts import KERNEL_LAYOUT_HELP  # not preflight: report needs none

__all__ = ["add_parser", "parse_ranges", "run"]


def add_parser(sub: Any) -> None:
    h = "predict from a DTB alone which regions a kernel generation drops, and why"
    p = sub.add_parser("preflight", help=h, description=h)
    p.add_argument("dtb", metavar="DTB", help="compiled devicetree blob")
    p.add_argument("--kernel", "-k", required=True, metavar="KERNEL", help=KERNEL_LAYOUT_HELP)
    add_format_option(p)
    add_evidence_option(p)
    p.add_argument("--log", action="store_true", help="print the kernel log lines predicted")
    p.add_argument(
        "--reserve",
        action="append",
        default=[],
        metavar="BASE:SIZE",
        help="a range memblock-reserved before the scan (kernel image, initramfs); repeatable",
    )
    p.add_argument(
        "--memory",
        action="append",
        metavar="BASE:SIZE",
        help="a RAM bank, instead of the DT's memory nodes; repeatable",
    )
    p.add_argument(
        "--cmdline",
        metavar="TEXT",
        help="the kernel command line (default: /chosen/bootargs of the DTB); its mem= cuts "
        "RAM before the reserved-memory scan, as arm64 does",
    )
    built = p.add_mutually_exclusive_group()
    built.add_argument(
        "--config",
        metavar="FILE",
        help="the target kernel's .config: which reserved-memory handlers it has "
        "(CONFIG_DMA_CMA, CONFIG_DMA_DECLARE_COHERENT, CONFIG_DMA_RESTRICTED_POOL, ...)",
    )
    built.add_argument(
        "--vmlinux",
        metavar="FILE",
        help="the target kernel's vmlinux: its handlers read from its __reservedmem_of_table",
    )
    p.set_defaults(run=run)


def kernel_handlers(args: argparse.Namespace) -> tuple[list[Any] | None, str]:
    """The handlers ``--config`` or ``--vmlinux`` give, and where they were read."""
    from rmem_inspect.model import RmemHandler

    if args.config:
        from rmem_inspect.inputs import read_file
        from rmem_inspect.kernel.handlers import declarations_from_config, parse_config

        options = parse_config(read_file(args.config).decode(errors="replace"))
        if not any(k.startswith("CONFIG_") for k in options):
            raise InputError(f"{args.config} is not a kernel .config (no CONFIG_ lines)")
        decls = declarations_from_config(options)
        return [
            RmemHandler(d.name, d.compatible, None) for d in decls
        ], f"{os.path.abspath(args.config)} (.config)"
    if args.vmlinux:
        from rmem_inspect.formats.elf import ElfError
        from rmem_inspect.formats.of_table import open_table_image, read_reservedmem_table

        try:
            return (
                read_reservedmem_table(open_table_image(args.vmlinux)),
                f"__reservedmem_of_table in {os.path.abspath(args.vmlinux)}",
            )
        except OSError as e:
            raise InputError(f"cannot read {args.vmlinux}: {e.strerror or e}") from None
        except ElfError as e:
            raise InputError(f"{args.vmlinux} is not a usable vmlinux: {e}") from None
    return None, ""


def parse_ranges(items: list[str], option: str) -> list[tuple[int, int]]:
    """``BASE:SIZE`` arguments of ``option`` as (base, size)."""
    out = []
    for item in items:
        try:
            base, size = item.split(":", 1)
            out.append((int(base, 0), int(size, 0)))
        except ValueError:
            raise InputError(
                f"{option} {item!r}: expected BASE:SIZE, e.g. 0x40200000:0x2000000"
            ) from None
    return out


def run(args: argparse.Namespace) -> int:
    # here, not at the top: --help and the other commands do not need them
    from rmem_inspect.inputs import read_file
    from rmem_inspect.output import render
    from rmem_inspect.preflight import preflight

    handlers, handlers_from = kernel_handlers(args)
    res = preflight(
        read_file(args.dtb),
        args.kernel,
        extra_reserved=parse_ranges(args.reserve, "--reserve"),
        memory=parse_ranges(args.memory, "--memory") if args.memory else None,
        cmdline=args.cmdline,
        source=os.path.abspath(args.dtb),
        handlers=handlers,
        handlers_from=handlers_from,
    )
    out = render(res.report, args.format, evidence=args.evidence)
    if args.format != "json":
        rows = [
            f"  {p.name}: {p.outcome}" + (f" ({p.reason})" if p.reason else "")
            for p in res.placements
            if p.outcome != "tracked"
        ]
        if rows:
            out += "\npredicted losses (" + res.layout + "):\n" + "\n".join(rows) + "\n"
        if args.log:
            out += "\npredicted kernel log:\n" + "".join(f"  {t}\n" for t in res.log)
    sys.stdout.write(out)
    return int(res.report.exit_status())
