# SPDX-License-Identifier: GPL-2.0-or-later
"""
The ``preflight``, ``diff``, ``map`` and ``batch`` subcommands of rmem-inspect.

:func:`_add_extra_commands` adds them to the parser of :mod:`rmem_inspect.cli`;
:func:`run_extra` runs one and returns its exit status, or None when the
command is not one of these. Errors the user can fix raise
:class:`~rmem_inspect.errors.InputError` (one line, exit status 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["COMMANDS", "run_extra"]

#: The subcommands defined here.
COMMANDS = ("batch", "diff", "map", "preflight")

_DTB_MAGIC = b"\xd0\x0d\xfe\xed"


def _add_extra_commands(sub: Any) -> None:
    from rmem_inspect.cli import _add_source
    from rmem_inspect.kernel.layouts import KERNEL_LAYOUT_HELP  # not preflight: report needs none

    layouts = KERNEL_LAYOUT_HELP
    h = "predict from a DTB alone which regions a kernel generation drops, and why"
    p = sub.add_parser("preflight", help=h, description=h)
    p.add_argument("dtb", metavar="DTB", help="compiled devicetree blob")
    p.add_argument("--kernel", "-k", required=True, metavar="KERNEL", help=layouts)
    p.add_argument("--format", "-f", choices=("table", "json", "markdown"), default="table")
    p.add_argument("--evidence", action="store_true", help="print each finding's evidence")
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

    h = "compare two snapshots, dumps or preflights: regions and findings that changed"
    p = sub.add_parser("diff", help=h, description=h)
    p.add_argument("a", metavar="A", help="JSON snapshot, vmcore, or DTB (with --kernel-a)")
    p.add_argument("b", metavar="B", help="JSON snapshot, vmcore, or DTB (with --kernel-b)")
    p.add_argument("--vmlinux-a", metavar="FILE", help="vmlinux for A when it is a vmcore")
    p.add_argument("--vmlinux-b", metavar="FILE", help="vmlinux for B when it is a vmcore")
    p.add_argument("--kernel-a", metavar="KERNEL", help="kernel to preflight A with, for a DTB")
    p.add_argument("--kernel-b", metavar="KERNEL", help="kernel to preflight B with, for a DTB")
    p.add_argument("--format", "-f", choices=("table", "json", "markdown"), default="table")

    h = "draw the physical address space and every region, coloured by verdict (SVG or PNG)"
    p = sub.add_parser("map", help=h, description=h)
    _add_source(p)
    p.add_argument("--dtb", metavar="FILE", help="map a preflight of this DTB (needs --kernel)")
    p.add_argument("--kernel", "-k", metavar="KERNEL", help="kernel for --dtb: " + layouts)
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="FILE.svg or FILE.png ('-' writes SVG to stdout)",
    )
    p.add_argument("--title", help="title of the picture")

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


def _read(path: str) -> bytes:
    from rmem_inspect.errors import InputError

    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


def _parse_ranges(items: list[str], option: str) -> list[tuple[int, int]]:
    from rmem_inspect.errors import InputError

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


def _report_for(path: str, vmlinux: str | None, layout: str | None) -> Any:
    """A checks.Report for a snapshot, a DTB (preflighted) or a vmcore."""
    from rmem_inspect import checks
    from rmem_inspect.errors import InputError
    from rmem_inspect.model import Snapshot, SnapshotError

    if not os.path.isfile(path):
        raise InputError(f"not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _DTB_MAGIC:
        if not layout:
            raise InputError(
                f"{path} is a DTB: say which kernel to preflight it with "
                "(--kernel-a/--kernel-b KERNEL)"
            )
        from rmem_inspect.preflight import preflight

        return preflight(_read(path), layout, source=os.path.abspath(path)).report
    if head.lstrip()[:1] == b"{":
        try:
            return checks.run(Snapshot.loads(_read(path).decode(errors="replace")))
        except SnapshotError as e:
            raise InputError(f"{path} is not a valid snapshot: {e}") from None
    from rmem_inspect.collect.program import open_vmcore
    from rmem_inspect.inspect import inspect

    prog = open_vmcore(path, vmlinux)
    return checks.run(inspect(prog, source={"kind": "vmcore", "vmcore": os.path.abspath(path)}))


def _preflight(args: argparse.Namespace) -> int:
    from rmem_inspect.output import render
    from rmem_inspect.preflight import preflight

    res = preflight(
        _read(args.dtb),
        args.kernel,
        extra_reserved=_parse_ranges(args.reserve, "--reserve"),
        memory=_parse_ranges(args.memory, "--memory") if args.memory else None,
        cmdline=args.cmdline,
        source=os.path.abspath(args.dtb),
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


def _diff(args: argparse.Namespace) -> int:
    from rmem_inspect.diff import diff_reports
    from rmem_inspect.output.diff import render_diff

    a = _report_for(args.a, args.vmlinux_a, args.kernel_a)
    b = _report_for(args.b, args.vmlinux_b, args.kernel_b)
    d = diff_reports(a, b)
    sys.stdout.write(render_diff(d, args.format))
    return 0 if d.empty else 1


def _map(args: argparse.Namespace) -> int:
    from rmem_inspect import checks
    from rmem_inspect.errors import InputError
    from rmem_inspect.output.svg import render_svg, svg_to_png

    if args.dtb:
        if not args.kernel:
            raise InputError("--dtb needs --kernel KERNEL (a version such as 6.12 or a layout)")
        from rmem_inspect.preflight import preflight

        report = preflight(_read(args.dtb), args.kernel, source=os.path.abspath(args.dtb)).report
    else:
        from rmem_inspect.cli import _snapshot

        report = checks.run(_snapshot(args))
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


def _batch(args: argparse.Namespace) -> int:
    from rmem_inspect.batch import render_summary, run_batch
    from rmem_inspect.errors import InputError

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


def run_extra(args: argparse.Namespace) -> int | None:
    """Run ``args.command`` if it is one of :data:`COMMANDS`; None otherwise."""
    handlers = {"preflight": _preflight, "diff": _diff, "map": _map, "batch": _batch}
    handler = handlers.get(args.command)
    return None if handler is None else handler(args)
