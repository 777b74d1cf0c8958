# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared test configuration: the (series, scenario) matrix every tier covers."""

from __future__ import annotations

from vmcores.debian import SERIES
from vmcores.scenarios import SCENARIOS

#: Every kernel series x every scenario: each one must have a real dump.
MATRIX = [(series, scenario) for series in SERIES for scenario in SCENARIOS]
MATRIX_IDS = [f"{series}-{scenario}" for series, scenario in MATRIX]
