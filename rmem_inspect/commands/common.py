# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands.common
---------------

What several subcommands share: the options that say what to inspect
(:func:`add_source_options`, turned into an :class:`~rmem_inspect.inputs.Source`
by :func:`source_from_args`) and the one list of output formats. Only argparse
is imported here: ``rmem-inspect --help`` builds every parser without loading
the checks, drgn or preflight.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rmem_inspect.inputs import Source

__all__ = ["FORMATS", "add_evidence_option", "add_format_option", "add_source_options",
           "source_from_args"]  # fmt: skip

#: The formats of ``--format`` (report, check, preflight, diff, the drgn script and plugin).
FORMATS = ("table", "json", "markdown")


def add_format_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", "-f", choices=FORMATS, default="table")


def add_evidence_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evidence", action="store_true", help="print each finding's evidence")


def add_source_options(p: argparse.ArgumentParser) -> None:
    """``--vmcore``, ``--vmlinux``, ``--live``, ``--snapshot``, ``--qemu``,
    ``--no-debug-info``, ``--types``, ``--no-linear-map``, ``--no-cache``, ``--verbose``
    (and the hidden ``--debug``)."""
    g = p.add_argument_group("what to inspect (default: the running kernel)")
    g.add_argument(
        "--vmcore",
        "-c",
        metavar="FILE",
        help="ELF or kdump crash dump, or raw RAM: FILE@PADDR[,FILE@PADDR...] (crash's "
        "syntax, PADDR hexadecimal), a Lauterbach load.cmm, a directory holding one (or "
        "Qualcomm's dump_info.txt), an ELF core without VMCOREINFO",
    )
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
    g.add_argument(
        "--kaslr",
        metavar="OFFSET",
        help="raw RAM: the kernel's KASLR offset (hexadecimal), when neither its VMCOREINFO "
        "nor its image gives the right one (crash's --kaslr)",
    )
    g.add_argument(
        "--vabits",
        metavar="N",
        type=int,
        help="raw RAM, arm64: the virtual address bits in use (crash's -m vabits_actual=N, "
        "also accepted)",
    )
    g.add_argument("-m", dest="machdep", metavar="vabits_actual=N", action="append",
                   help=argparse.SUPPRESS)  # fmt: skip
    p.add_argument(
        "--no-linear-map",
        action="store_true",
        help="skip the page-table walk over no-map regions",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the BTF index kept per build-id in ~/.cache/rmem-inspect",
    )
    p.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="say on stderr how symbols and types were found",
    )
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def source_from_args(args: argparse.Namespace) -> Source:
    """The :class:`~rmem_inspect.inputs.Source` of :func:`add_source_options`' options."""
    from rmem_inspect.inputs import Source  # the command runs: its input is opened next

    vabits = args.vabits
    for item in getattr(args, "machdep", None) or []:
        key, _, value = item.partition("=")
        if key.strip() != "vabits_actual" or not value.strip().isdigit():
            from rmem_inspect.errors import InputError

            raise InputError(f"-m {item}: only crash's -m vabits_actual=N is understood")
        vabits = int(value)
    return Source(
        kaslr=args.kaslr,
        vabits=vabits,
        snapshot=args.snapshot,
        vmcore=args.vmcore,
        qemu=args.qemu,
        vmlinux=args.vmlinux,
        types=args.types,
        no_debug_info=args.no_debug_info,
        linear_map=not args.no_linear_map,
        cache=not args.no_cache,
        verbose=args.verbose,
    )
