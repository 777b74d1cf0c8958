#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Set up, build every real dump (3 kernel series x every scenario), check formatting
# and types, and run every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
start=$(date +%s)
.venv/bin/python -m vmcores.build
# 32-bit Arm and riscv64 boards (vmcores/arch.py): 4 scenarios each, + one 1 GiB arm
.venv/bin/python -m vmcores.arch --arch arm
.venv/bin/python -m vmcores.arch --arch arm-1g baseline
.venv/bin/python -m vmcores.arch --arch riscv64
# raw RAM dumps (vmcores/ramdump.py): every arm64 boot above and the arm/riscv64 boards
# again without -device vmcoreinfo, as bank files + load.cmm + QEMU's note-less ELF
.venv/bin/python -m vmcores.ramdump
# the board DTBs of Debian's generic arm64 image package (preflight sweep)
.venv/bin/python -m vmcores.boards
echo "factory: $(( $(date +%s) - start )) s"
.venv/bin/black --check -q rmem_inspect vmcores tests tools bench
.venv/bin/ruff check -q rmem_inspect vmcores tests tools bench
.venv/bin/mypy rmem_inspect vmcores bench
exec .venv/bin/python -m pytest "$@"
