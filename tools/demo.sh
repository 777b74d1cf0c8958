#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job on the built-in default: build a real crash dump (Debian's 6.12 arm64
# kernel booted under QEMU with a board-like devicetree of 69 reserved regions) and
# print rmem_inspect's report on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
.venv/bin/python -m vmcores.build --series 6.12 --scenario overflow
vmcore=$(.venv/bin/python -c 'from vmcores.manifest import load_manifests
print(next(m.path("vmcore") for m in load_manifests() if (m.series, m.scenario) == ("6.12", "overflow")))')
echo
echo "== rmem-inspect report --vmcore $vmcore"
exec .venv/bin/rmem-inspect report --vmcore "$vmcore" "$@"
