# SPDX-License-Identifier: GPL-2.0-or-later
"""
trace.__main__
--------------

``python3 -m rmem_inspect.trace ARGS``: the trace command on its own
(:func:`rmem_inspect.commands.trace.main`).
"""

from __future__ import annotations

import sys

from rmem_inspect.commands.trace import main

if __name__ == "__main__":
    sys.exit(main())
