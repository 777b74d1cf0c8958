# SPDX-License-Identifier: GPL-2.0-or-later
"""Benchmarks of rmem_inspect (``python bench/run.py``; see docs/bench.md)."""
