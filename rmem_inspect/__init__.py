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

``inspect`` (:mod:`rmem_inspect.collect.snapshot`), ``run_checks``
(:func:`rmem_inspect.checks.run`) and ``render`` (:mod:`rmem_inspect.output`)
are imported on first use, so ``import rmem_inspect`` stays cheap and does not
import drgn. No submodule is named like them, so importing submodules never
changes what these names are.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING
from typing import Any as _Any

from rmem_inspect.version import __version__ as __version__  # rmem_inspect.__version__

if TYPE_CHECKING:
    from rmem_inspect.checks import run as run_checks
    from rmem_inspect.collect.snapshot import inspect
    from rmem_inspect.output import render

__all__ = ["inspect", "render", "run_checks"]

#: Public name -> (module, attribute), imported by :func:`__getattr__` on first use.
_LAZY = {
    "inspect": ("rmem_inspect.collect.snapshot", "inspect"),
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
