# SPDX-License-Identifier: GPL-2.0-or-later
"""``python -m rmem_inspect``: the rmem-inspect command."""

import sys

from rmem_inspect.commands import main

sys.exit(main())
