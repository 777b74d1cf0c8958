# SPDX-License-Identifier: GPL-2.0-or-later
"""
rmem_inspect
------------

Cross-check a Linux kernel's devicetree reserved-memory carveouts against what
the kernel actually tracks (``reserved_mem``), reserves (memblock) and hands to
devices (CMA, coherent pools), from a crash dump or a live kernel.

For scripts and the drgn REPL::

    >>> from rmem_inspect import inspect, render, run_checks
    >>> report = run_checks(inspect(prog))
    >>> print(render(report, "table"), end="")

``inspect``, ``run_checks`` and ``render`` are imported on first use, so
``import rmem_inspect`` stays cheap and does not import drgn. ``inspect`` and
``render`` are also the names of submodules; the package attribute always stays
the function (``from rmem_inspect.inspect import DATA_ERRORS`` still reaches the
module).
"""

from __future__ import annotations

import importlib as _importlib
import sys as _sys
import types as _types
from typing import TYPE_CHECKING
from typing import Any as _Any

if TYPE_CHECKING:
    from rmem_inspect.checks import run as run_checks
    from rmem_inspect.inspect import inspect
    from rmem_inspect.output import render

__all__ = ["inspect", "render", "run_checks"]

__version__ = "0.1.0"

#: Public name -> (module, attribute), imported by :func:`__getattr__` on first use.
_LAZY = {
    "inspect": ("rmem_inspect.inspect", "inspect"),
    "render": ("rmem_inspect.output", "render"),
    "run_checks": ("rmem_inspect.checks", "run"),
}


def __getattr__(name: str) -> _Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(_importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(_types.ModuleType):
    """Keep ``rmem_inspect.inspect``/``.render`` the functions once their submodules load.

    Importing a submodule binds it as an attribute of the package; for the two
    submodules named like the functions they define, that binding would make
    ``from rmem_inspect import inspect`` return the module, depending on what was
    imported before (drgn's REPL after the ``rmem`` command, for one).
    """

    def __setattr__(self, name: str, value: _Any) -> None:
        if name in _LAZY and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
