# SPDX-License-Identifier: GPL-2.0-or-later
"""Collectors: read kernel sources into the snapshot model."""
