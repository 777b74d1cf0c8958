# SPDX-License-Identifier: GPL-2.0-or-later
"""
commands.collect_script
-----------------------

``rmem-inspect collect-script``: print the POSIX ``sh`` collector
(:mod:`rmem_inspect.board_script`) a board without Python or drgn runs as root;
its archive is then read on the host with ``--board-pack``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]

HELP = "print the sh script that packs a board's evidence (no Python or drgn on the board)"

EPILOG = """write the script, run it as root on the board (adb or ssh), read its archive:
  rmem-inspect collect-script > collect.sh
  adb push collect.sh /data/local/tmp/                            # Android
  adb exec-out su -c 'sh /data/local/tmp/collect.sh' > pack.tar
  ssh root@board sh -s < collect.sh > pack.tar                    # or over ssh
  rmem-inspect report --board-pack pack.tar
where /proc/kcore is readable, the kernel data itself, in rounds (each follows pointers
the previous one read; the report says when another round is needed):
  rmem-inspect collect-script --from pack.tar > round2.sh
  ssh root@board sh -s < round2.sh > pack2.tar
  rmem-inspect collect-script --from pack.tar,pack2.tar > round3.sh   # ... until it says done
  rmem-inspect report --board-pack pack.tar,pack2.tar,pack3.tar
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "collect-script",
        help=HELP,
        description=HELP + ". The script writes the archive to stdout, or to the path given "
        "as its argument, and nothing else on the board.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--from",
        dest="packs",
        metavar="PACK[,PACK...]",
        help="the packs of this boot so far: print the next round's script, which cuts the "
        "kernel data they lack out of /proc/kcore with dd (exit 1: nothing left to cut)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rmem_inspect.board_script import collect_script

    if not args.packs:
        sys.stdout.write(collect_script())
        return 0
    from rmem_inspect.board_script import cut_script
    from rmem_inspect.collect.board_pack import load_packs
    from rmem_inspect.collect.kcore_pack import MAX_ROUNDS, plan_round
    from rmem_inspect.errors import InputError

    plan = plan_round(load_packs([p for p in args.packs.split(",") if p]))
    for address in plan.unreachable:
        print(f"rmem-inspect: {address:#x} is in no /proc/kcore segment: not cut", file=sys.stderr)
    if plan.cuts and plan.number > MAX_ROUNDS:
        raise InputError(
            f"the collectors still ask for kernel data after {MAX_ROUNDS} rounds (a walk the "
            "rounds cannot follow): report on these packs as they are"
        )
    if not plan.cuts:
        print(
            f"rmem-inspect: the packs hold all the kernel data the report reads "
            f"({plan.number - 1} rounds): no round {plan.number} to run",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(cut_script(plan.number, plan.cuts))
    print(
        f"rmem-inspect: round {plan.number}: {len(plan.cuts)} pieces, "
        f"{sum(n for _v, _o, n in plan.cuts)} bytes",
        file=sys.stderr,
    )
    return 0
