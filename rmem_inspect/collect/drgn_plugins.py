# SPDX-License-Identifier: GPL-2.0-or-later
"""
drgn_plugins
------------

drgn loads every plugin entry point the first time a program is set up
(``_drgn_util/plugins.py``, on ``set_core_dump()``/``set_kernel()``). Three of the
installed ones only add commands to drgn's own command line: drgn's
``builtin_commands`` and ``crash_commands`` and this tool's ``rmem_inspect``
(the ``%rmem`` command). Importing them costs about 0.1 s of CPU (the crash
commands package), which the rmem-inspect command line never uses; it asks drgn
to skip them through drgn's own ``DRGN_DISABLE_PLUGINS`` (fnmatch patterns,
comma-separated), keeping whatever the user disabled and every other plugin.
"""

from __future__ import annotations

from collections.abc import MutableMapping

__all__ = ["COMMAND_ONLY", "skip_command_plugins"]

#: drgn plugin entry points that only register drgn command-line commands.
COMMAND_ONLY = ("builtin_commands", "crash_commands", "rmem_inspect")


def skip_command_plugins(environ: MutableMapping[str, str]) -> None:
    """Add :data:`COMMAND_ONLY` to ``DRGN_DISABLE_PLUGINS`` in ``environ`` (the
    process environment of the rmem-inspect command, before drgn loads plugins)."""
    have = [p for p in environ.get("DRGN_DISABLE_PLUGINS", "").split(",") if p]
    if "*" in have:
        return
    environ["DRGN_DISABLE_PLUGINS"] = ",".join(have + [p for p in COMMAND_ONLY if p not in have])
