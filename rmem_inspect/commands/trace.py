# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands.trace
--------------

``rmem-inspect trace``: live eBPF tracing of the kernel's carveout users. The
options are here; the BPF program, the probing and the event loop are the
package :mod:`rmem_inspect.trace`, imported only when the command runs (it is the
one command that needs bcc).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["EXAMPLES", "add_parser", "main", "run"]

EXAMPLES = """examples:
  rmem-inspect trace                       # trace until Ctrl-C, then print the summary
  rmem-inspect trace -d 10                 # trace for 10 seconds
  rmem-inspect trace --device codec        # only devices (or DT nodes) matching 'codec'
  rmem-inspect trace --region pool9        # only the region pool9
  rmem-inspect trace --json                # one JSON object per event, then the summary
  rmem-inspect trace --vmlinux vmlinux     # correlate failures with the boot verdicts
  rmem-inspect trace --snapshot board.json # ... using a saved snapshot instead
  rmem-inspect trace --no-correlate        # no debug info needed
  rmem-inspect trace --ebpf                # print the BPF program and exit

Needs root, bcc (apt install python3-bpfcc) and the running kernel's headers
(apt install linux-headers-$(uname -r)). Exit status: 0 traced, 2 environment error.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "trace",
        help="live eBPF tracing (bcc) of carveout lookups, device init, CMA and coherent pools",
        description="Trace, with bcc, the running kernel's reserved-memory consumers: "
        "of_reserved_mem_device_init_by_idx, of_reserved_mem_lookup, the carveouts' "
        "device_init ops, CMA allocations and coherent-pool allocations. One line per event, "
        "a summary per device and per region at exit; failures are explained with the boot "
        "verdicts when debug info is available.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    p.add_argument("-d", "--duration", type=float, metavar="SECONDS", help="stop after SECONDS")
    p.add_argument("--device", metavar="TEXT", help="only devices or DT nodes containing TEXT")
    p.add_argument("--region", metavar="NAME", help="only the region NAME (unit address optional)")
    p.add_argument("-j", "--json", action="store_true", help="one JSON object per line")
    p.add_argument("--vmlinux", "-s", metavar="FILE", help="vmlinux for the boot verdicts")
    p.add_argument("--snapshot", metavar="FILE", help="take the boot verdicts from a snapshot")
    p.add_argument(
        "--no-correlate", action="store_true", help="do not read the boot verdicts (no drgn)"
    )
    p.add_argument(
        "--ebpf",
        action="store_true",
        help="print the BPF C program (as probed for this kernel when bcc and root allow) "
        "and exit",
    )
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rmem_inspect.trace.run import run_trace  # here: no other command needs it

    return run_trace(args)


def main(argv: list[str] | None = None) -> int:
    """``python3 -m rmem_inspect.trace ARGS``: the trace command on its own."""
    parser = argparse.ArgumentParser(prog="rmem-inspect")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["trace", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
