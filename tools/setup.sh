#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install what rmem_inspect, its tests and the vmcore factory need on a Debian host
# (as root), into a virtual environment at .venv. Idempotent and quick when done before.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in qemu-system-aarch64:qemu-system-arm qemu-system-riscv64:qemu-system-misc \
            dtc:device-tree-compiler cpio:cpio \
            xz:xz-utils zstd:zstd fallocate:util-linux setpriv:util-linux strace:strace \
            dpkg-deb:dpkg git:git make:make aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
            qemu-aarch64:qemu-user debuginfod:debuginfod \
            shellcheck:shellcheck busybox:busybox mksh:mksh toybox:toybox; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# The Debian package (debian/, vmcores/deb.py): dpkg-buildpackage and the Build-Depends.
for pkg in dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all \
           python3-setuptools python3-wheel; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
# cairosvg (PNG maps) loads libcairo at run time
ldconfig -p 2>/dev/null | grep -q 'libcairo.so.2' || need+=(libcairo2)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# drgn comes from PyPI on x86_64 hosts (wheels bundle libkdumpfile); tabulate for tables;
# the dev extra adds pytest, hypothesis, black, ruff, mypy.
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: ready ($(.venv/bin/python -c 'import drgn; print("drgn", drgn.__version__)'))"
