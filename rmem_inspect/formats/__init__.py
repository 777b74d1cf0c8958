# SPDX-License-Identifier: GPL-2.0-or-later
"""Pure readers of binary formats found in kernel memory (no drgn, no I/O)."""
