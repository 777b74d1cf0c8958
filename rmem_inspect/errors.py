# SPDX-License-Identifier: GPL-2.0-or-later
"""Errors the user can act on: the CLI prints them as one line and exits 2."""

__all__ = ["InputError"]


class InputError(Exception):
    """Bad input or environment (dump, vmlinux, permissions): one clear sentence."""
