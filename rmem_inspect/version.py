# SPDX-License-Identifier: GPL-2.0-or-later
"""
version
-------

The version of rmem_inspect, in a module of its own so that every module (the
snapshot writers, the JSON report, ``--version``) can read it without importing
the package's ``__init__.py``, which re-exports the library API and so imports
them in turn.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
