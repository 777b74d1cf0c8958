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
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rmem_inspect.board_script import collect_script

    sys.stdout.write(collect_script())
    return 0
