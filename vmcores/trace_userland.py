# SPDX-License-Identifier: GPL-2.0-or-later
"""
An arm64 userland that runs ``rmem-inspect trace`` (bcc) inside a factory guest,
and the test kernel module that gives it something to trace.

bcc comes from Debian: the userland is the trixie arm64 dependency closure of
``python3``, ``python3-bpfcc``, ``python3-drgn`` and ``python3-tabulate``
(:func:`vmcores.guest_userland.resolve_closure`), plus the guest kernel's
``linux-headers-<release>`` with the ``linux-headers-*-common`` and
``linux-kbuild-*`` packages it depends on, from the kernel's own suite (bcc
compiles its program against ``/lib/modules/<release>/build``). The compiler
toolchain the headers package depends on is left out: bcc has clang built in.

The module (``vmcores/testmod``) is cross-built here against the same headers
with the host's ``aarch64-linux-gnu-gcc`` (Debian ``gcc-aarch64-linux-gnu``).
Kbuild's helpers in ``linux-kbuild-*`` are arm64 programs; they run on the host
under ``qemu-aarch64`` (Debian ``qemu-user``) with the userland's arm64 libc as
sysroot. Flags the kernel's newer compiler has and the cross compiler lacks are
switched off on the make command line (``CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT``),
and module BTF is not generated (no pahole needed).

The vmlinux (for the correlation with the boot verdicts) goes on a raw
virtio-blk disk, as in :mod:`vmcores.guest_userland`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from vmcores.debian import SERIES, FetchError, Kernel, Package, PrivateApt, _extract, host_mirror
from vmcores.guest_userland import (
    _kernel_modules,
    _merge_usr,
    pack_initramfs,
    resolve_closure,
    vmlinux_disk,
)

__all__ = ["TRACE_PACKAGES", "TraceFiles", "build_module", "trace_files"]

TRACE_PACKAGES = ("python3", "python3-bpfcc", "python3-drgn", "python3-tabulate")
SUITE = "trixie"
#: Bump when the layout of the userland or the module build changes.
VERSION = 1
TESTMOD = Path(__file__).resolve().parent / "testmod"
#: Kbuild helpers that run during an external module build (arm64 programs).
KBUILD_TOOLS = (
    "scripts/basic/fixdep",
    "scripts/mod/modpost.real-lsb-64",
    "scripts/genksyms/genksyms",
    "scripts/recordmcount",
)
Log = Callable[[str], None]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _header_packages(apt: PrivateApt, release: str) -> list[str]:
    """linux-headers-<release> and the linux-headers/linux-kbuild packages it needs."""
    first = f"linux-headers-{release}"
    info = apt.show(first)
    if info is None:
        raise FetchError(f"{first} not found in {apt.suite} (arm64)")
    deps = re.findall(r"(linux-(?:headers|kbuild)-[\w.+~-]+)", info.get("Depends", ""))
    return [first, *sorted(set(deps))]


def _download(cache: Path, kernel: Kernel) -> tuple[list[Package], list[Package]]:
    """(userland packages, header packages), downloaded."""
    apt = PrivateApt(cache / "apt", SUITE, host_mirror())
    names = resolve_closure(apt, TRACE_PACKAGES)
    kapt = PrivateApt(cache / "apt", SERIES[kernel.series].suite, host_mirror())
    headers = _header_packages(kapt, kernel.release)
    return apt.download(names, cache / "debs"), kapt.download(headers, cache / "debs")


def _root(cache: Path, kernel: Kernel, log: Log) -> tuple[Path, list[Package], list[Package]]:
    """The unpacked userland with the headers (cached); (root, userland, headers)."""
    pkgs, headers = _download(cache, kernel)
    key = _sha(json.dumps([VERSION, [p.sha256 for p in pkgs + headers]]).encode())[:16]
    out = cache / "trace-userland" / f"{kernel.release}-{key}"
    root = out / "root"
    if root.is_dir():
        return root, pkgs, headers
    log(f"trace userland: unpacking {len(pkgs)} + {len(headers)} arm64 packages")
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    for p in pkgs + headers:
        _extract(p.file, tmp / "root")
    _merge_usr(tmp / "root")
    # the headers' vmlinux only feeds module BTF; bcc does not read it
    for v in (tmp / "root" / "usr" / "src").glob("linux-headers-*/vmlinux"):
        v.unlink()
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return root, pkgs, headers


def build_module(cache: Path, kernel: Kernel, root: Path, log: Log = print) -> Path:
    """Cross-build vmcores/testmod against the guest kernel's headers (cached)."""
    h = hashlib.sha256(str(root).encode())
    for p in sorted(TESTMOD.iterdir()):
        h.update(p.name.encode() + p.read_bytes())
    out = cache / "trace-module" / f"{kernel.release}-{h.hexdigest()[:16]}" / "rmem_trace_test.ko"
    if out.exists():
        return out
    for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64", "make"):
        if shutil.which(tool) is None:
            raise FetchError(f"{tool} not found: apt install gcc-aarch64-linux-gnu qemu-user make")
    with tempfile.TemporaryDirectory(prefix="rmem-testmod-", dir=cache) as tmp:
        t = Path(tmp)
        # a private copy of the headers whose kbuild helpers run under qemu-aarch64
        src = t / "usr" / "src"
        shutil.copytree(root / "usr" / "src", src, symlinks=True)
        kbuild = t / "usr" / "lib"
        kbuild.mkdir(parents=True)
        for d in (root / "usr" / "lib").glob("linux-kbuild-*"):
            shutil.copytree(d, kbuild / d.name, symlinks=True)
        build = src / f"linux-headers-{kernel.release}"
        mk = build / "Makefile"
        # 6.12: "include /usr/src/...-common/Makefile"; 7.3 also sets KBUILD_OUTPUT=/usr/src/...
        mk.write_text(mk.read_text().replace("/usr/src/", f"{src}/"))
        for d in kbuild.glob("linux-kbuild-*"):
            for rel in KBUILD_TOOLS:
                prog = d / rel
                if not prog.exists():
                    continue
                prog.rename(prog.with_name(prog.name + ".arm64"))
                prog.write_text(f'#!/bin/sh\nexec qemu-aarch64 -L {root} "$0.arm64" "$@"\n')
                prog.chmod(0o755)
            # Debian's modpost picks modpost.real-<endian>-<bits> from its own name
            wrapper = d / "scripts" / "mod" / "modpost"
            wrapper.write_text(
                f'#!/bin/sh\nexec qemu-aarch64 -L {root} "$0.real-lsb-64.arm64" "$@"\n'
            )
            wrapper.chmod(0o755)
        mod = t / "mod"
        shutil.copytree(TESTMOD, mod)
        proc = subprocess.run(
            ["make", "-C", str(build), f"M={mod}", "ARCH=arm64",
             "CROSS_COMPILE=aarch64-linux-gnu-", "CC=aarch64-linux-gnu-gcc",
             "CONFIG_DEBUG_INFO_BTF_MODULES=", "CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=",
             "modules"],  # fmt: skip
            capture_output=True,
            text=True,
        )
        ko = mod / "rmem_trace_test.ko"
        if proc.returncode != 0 or not ko.exists():
            raise FetchError(
                f"building the test module failed: {(proc.stdout + proc.stderr)[-2000:]}"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ko, out)
    log(f"trace module: {out}")
    return out


class TraceFiles:
    """What a trace guest boots with."""

    def __init__(
        self, initrd: Path, disk: Path, vmlinux_size: int, module: Path, packages: list[Package]
    ) -> None:
        self.initrd = initrd
        self.disk = disk
        self.vmlinux_size = vmlinux_size
        self.module = module
        self.packages = packages


def trace_files(
    kernel: Kernel, busybox: Path, init_script: str, cache: Path, log: Log = print
) -> TraceFiles:
    """Build (or reuse) the zstd initramfs: userland + headers, busybox, virtio modules,
    the test module, rmem_inspect and ``init_script`` as /init (``@VMLINUX_SIZE@`` is
    replaced by the vmlinux's size)."""
    root, pkgs, headers = _root(cache, kernel, log)
    module = build_module(cache, kernel, root, log)
    modules = _kernel_modules(kernel, ("virtio_mmio", "virtio_blk"), cache)
    disk = vmlinux_disk(kernel, cache)
    size = Path(kernel.vmlinux).stat().st_size
    init = init_script.replace("@VMLINUX_SIZE@", str(size))
    out = pack_initramfs(
        "trace",
        cache / "trace-initramfs",
        kernel.release,
        root,
        busybox,
        init,
        modules,
        {"rmem_trace_test.ko": module},
        passwd="root:x:0:0:root:/root:/bin/sh\n",
        sh_link=True,  # /init's interpreter
        log=log,
    )
    return TraceFiles(out, disk, size, module, pkgs + headers)
