# SPDX-License-Identifier: GPL-2.0-or-later
"""The factory's real dumps as the tiers find them (shared by tests/vmcore and tests/hostile)."""

from __future__ import annotations

import pytest

from vmcores.manifest import DumpManifest, default_cache, load_manifests

__all__ = ["manifest_for"]

_MANIFESTS: dict[tuple[str, str], DumpManifest] | None = None


def manifest_for(series: str, scenario: str) -> DumpManifest:
    """The factory's manifest for a real dump; a missing dump fails the test (never skips)."""
    global _MANIFESTS
    if _MANIFESTS is None:
        _MANIFESTS = {(m.series, m.scenario): m for m in load_manifests()}
    m = _MANIFESTS.get((series, scenario))
    if m is None:
        pytest.fail(
            f"no factory dump for {series}/{scenario} in {default_cache()}: "
            "run python -m vmcores.build"
        )
    return m
