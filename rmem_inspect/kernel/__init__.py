# SPDX-License-Identifier: GPL-2.0-or-later
"""Kernel knowledge in one place: layouts per generation, constants, messages, arch facts."""
