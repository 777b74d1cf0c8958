# SPDX-License-Identifier: GPL-2.0-or-later
"""
checks
------

Pure functions from a :class:`~rmem_inspect.model.Snapshot` to findings. They
never touch drgn, so they run the same on a dump, a live kernel or a JSON
snapshot. Each finding code is one predicate over the snapshot (several may
hold for one region: a dynamic region the kernel could not allocate is both
RMEM-DROPPED, absent from ``reserved_mem``, and RMEM-UNALLOCATED, without
memory), and each carries the evidence it was decided on.

One module per family of codes; each declares its codes (severity, meaning, the
sources they need, advice: :mod:`.codes`) and its pass (:mod:`.registry`), and :func:`run` runs
the registered passes in order. Every module of this package is imported here, so
a new family is one new file. The kernel behaviour encoded is that of
drivers/of/of_reserved_mem.c and drivers/of/fdt.c in 6.1 (static array), 6.12
(dynamic array) and 7.x (node ops), cited at each rule. Every pass is a sort or a
sweep: O(n log n) in regions and memblock entries.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil

from rmem_inspect.checks.codes import CODES, Code, Need
from rmem_inspect.checks.context import GENERIC_INIT_COMPATIBLES, REJECTED_ROOT_RULE, Context
from rmem_inspect.checks.findings import (
    SEVERITY_ORDER,
    Finding,
    RegionView,
    Report,
    Severity,
    Verdict,
)
from rmem_inspect.checks.log_index import LogIndex
from rmem_inspect.checks.registry import CHECKS
from rmem_inspect.checks.views import build_views
from rmem_inspect.model import Snapshot

__all__ = [
    "CHECKS",
    "CODES",
    "GENERIC_INIT_COMPATIBLES",
    "REJECTED_ROOT_RULE",
    "SEVERITY_ORDER",
    "Code",
    "Finding",
    "LogIndex",
    "Need",
    "RegionView",
    "Report",
    "Severity",
    "Verdict",
    "run",
]

#: The modules that are not check families.
_FRAMEWORK = frozenset({"codes", "context", "findings", "log_index", "registry", "views"})
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _FRAMEWORK:
        importlib.import_module(f"{__name__}.{_module.name}")


def run(snap: Snapshot) -> Report:
    """Run every check on ``snap``."""
    # The checks allocate a few objects per region and build no reference cycles; on a
    # large snapshot the cyclic collector would rescan all of it many times: pause it.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(snap)
    finally:
        if enabled:
            gc.enable()


def _run(snap: Snapshot) -> Report:
    c = Context(snap)
    views = build_views(c)
    for check in CHECKS:
        if check.run is not None:
            check.run(c, views)
    for f in c.findings:
        v = views.get(f.region or "")
        if v is not None and f.severity == Severity.ERROR and v.verdict == Verdict.OK:
            v.verdict = Verdict.ERROR
    c.findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.code, f.region or ""))
    return Report(snapshot=snap, regions=list(views.values()), findings=c.findings,
                  skipped=c.skipped)  # fmt: skip
