# SPDX-License-Identifier: GPL-2.0-or-later
"""
An arm64 userland that runs rmem_inspect inside a factory guest, as root, on
the guest's own /proc/kcore.

PyPI has no aarch64 drgn wheel, so the guest gets drgn the way a board does:
from its distribution. The userland is Debian trixie's arm64 ``python3``,
``python3-drgn`` (drgn 0.0.31) and ``python3-tabulate`` with their dependency
closure (resolved with ``apt-cache depends --recurse``), fetched with the
factory's private apt and unpacked with ``dpkg-deb -x``; /bin, /sbin and /lib
are links into usr/ (merged /usr), busybox provides the shell, and this
project's ``rmem_inspect`` package is copied in. ``dpkg`` and ``libc-bin``
(ldconfig, which dpkg wants in PATH) are in the closure too, and
/var/lib/dpkg holds the status and file lists of every unpacked package (what
dpkg would have recorded), so that the guest can ``dpkg -i`` this project's
.deb (vmcores/deb.py) against real dependencies.

The vmlinux (270-420 MB) does not go into the initramfs: QEMU loads the initrd
at RAM base + 128 MiB (0x48000000), so a big one would cover the scenarios'
carveouts at 0x50000000 and the alloc-ranges window 0x60000000-0x70000000 and
change what the kernel does (SPEC §2). The guest gets it on a read-only raw
virtio-blk disk instead (``virtio_mmio`` and ``virtio_blk`` modules from the
kernel package) and copies it to its tmpfs at run time; the zstd-compressed
initramfs stays far below 0x50000000.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from vmcores.debian import (
    FetchError,
    Kernel,
    PrivateApt,
    _decompress_module,
    _extract,
    host_mirror,
)

__all__ = [
    "GUEST_PACKAGES",
    "INITRD_LIMIT",
    "GuestFiles",
    "build_userland",
    "guest_files",
    "kernel_modules",
    "merge_usr",
    "pack_initramfs",
    "resolve_closure",
    "vmlinux_disk",
]

#: What the guest needs; their dependency closure is added.
GUEST_PACKAGES = ("dpkg", "libc-bin", "python3", "python3-drgn", "python3-tabulate")
SUITE = "trixie"
#: The initrd must end below the scenarios' first carveout (QEMU puts it at 0x48000000).
INITRD_LIMIT = 0x50000000 - 0x48000000
#: Bump when the layout of the userland changes.
USERLAND_VERSION = 3
Log = Callable[[str], None]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def resolve_closure(apt: PrivateApt, packages: tuple[str, ...] = GUEST_PACKAGES) -> list[str]:
    """Real packages in the Depends/Pre-Depends closure of ``packages`` (virtuals dropped)."""
    out = apt._run(
        "apt-cache",
        "depends",
        "--recurse",
        "--no-recommends",
        "--no-suggests",
        "--no-conflicts",
        "--no-breaks",
        "--no-replaces",
        "--no-enhances",
        *packages,
    )
    names = [
        line.strip()
        for line in out.splitlines()
        if line and not line[0].isspace() and not line.startswith("<")
    ]
    return sorted(set(names))


def _merge_usr(root: Path) -> None:
    """Make /bin, /sbin, /lib links into usr/, moving anything unpacked there."""
    for d in ("bin", "sbin", "lib"):
        top = root / d
        usr = root / "usr" / d
        usr.mkdir(parents=True, exist_ok=True)
        if top.is_dir() and not top.is_symlink():
            for p in top.iterdir():
                dst = usr / p.name
                if not dst.exists() and not dst.is_symlink():
                    shutil.move(str(p), dst)
            shutil.rmtree(top)
        if not top.is_symlink():
            top.symlink_to(f"usr/{d}")


def _dpkg_database(root: Path, debs: list[Path]) -> None:
    """/var/lib/dpkg as dpkg leaves it after installing ``debs``: each package's
    control paragraph with ``Status: install ok installed`` in ``status``, and its
    paths in ``info/PACKAGE[:ARCH].list``."""
    db = root / "var" / "lib" / "dpkg"
    for d in ("info", "updates", "triggers", "alternatives"):
        (db / d).mkdir(parents=True, exist_ok=True)
    (root / "var" / "log").mkdir(parents=True, exist_ok=True)  # dpkg.log
    paragraphs = []
    for deb in debs:
        control = subprocess.run(
            ["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True
        ).stdout.rstrip("\n")
        fields = dict(re.findall(r"^([\w-]+): (.*)$", control, re.M))
        lines = control.splitlines()
        paragraphs.append("\n".join([lines[0], "Status: install ok installed", *lines[1:]]))
        name = fields["Package"]
        if fields.get("Multi-Arch") == "same":
            name += ":" + fields["Architecture"]
        listing = subprocess.run(
            ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
        ).stdout
        paths = []
        for line in listing.splitlines():
            path = line.split(" -> ")[0].split()[-1].lstrip(".").rstrip("/") or "/."
            paths.append(path)
        (db / "info" / f"{name}.list").write_text("\n".join(paths) + "\n")
    (db / "status").write_text("\n\n".join(paragraphs) + "\n")
    (db / "available").write_text("")
    (db / "diversions").write_text("")
    (db / "statoverride").write_text("")


def build_userland(cache: Path, log: Log = print) -> tuple[Path, list[dict[str, str]]]:
    """The unpacked trixie arm64 userland (cached); returns (root, packages used)."""
    apt = PrivateApt(cache / "apt", SUITE, host_mirror())
    names = resolve_closure(apt)
    # One apt-cache call for every version (a call per package costs seconds each).
    stanzas = apt._run("apt-cache", "show", "--no-all-versions", *names).split("\n\n")
    found = dict(
        re.findall(r"^Package: (\S+)\n(?:.*\n)*?Version: (\S+)", "\n\n".join(stanzas), re.M)
    )
    absent = [n for n in names if n not in found]
    if absent:
        raise FetchError(f"packages {', '.join(absent)} not found in {SUITE} (arm64)")
    versions = [f"{n}={found[n]}" for n in names]
    key = _sha(json.dumps([USERLAND_VERSION, versions]).encode())[:16]
    out = cache / "guest-userland" / key
    root = out / "root"
    stamp = out / "packages.json"
    if stamp.exists() and root.is_dir():
        pkgs: list[dict[str, str]] = json.loads(stamp.read_text())
        return root, pkgs
    log(f"guest userland: downloading {len(names)} trixie arm64 packages")
    debs = apt.download(names, cache / "debs")
    if out.exists():
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)
    for p in debs:
        _extract(p.file, tmp / "root")
    _merge_usr(tmp / "root")
    _dpkg_database(tmp / "root", [Path(p.file) for p in debs])
    pkgs = [{"name": p.name, "version": p.version, "sha256": p.sha256} for p in debs]
    (tmp / "packages.json").write_text(json.dumps(pkgs, indent=1) + "\n")
    tmp.replace(out)
    log(f"guest userland: {len(debs)} packages unpacked in {root}")
    return root, pkgs


def _kernel_modules(kernel: Kernel, wanted: tuple[str, ...], cache: Path) -> list[Path]:
    """``wanted`` modules and their dependencies, decompressed, in load order."""
    out_dir = cache / "kernels" / kernel.release / "live-modules"
    order_file = out_dir / "order"
    if order_file.exists():
        return [out_dir / n for n in order_file.read_text().split()]
    debs = [p.file for p in kernel.packages if "-dbg" not in p.name]
    tmp = Path(tempfile.mkdtemp(prefix="mods-", dir=cache))
    try:
        for deb in debs:
            try:
                _extract(deb, tmp, ["*/virtio*.ko*"])
            except (subprocess.CalledProcessError, FetchError):
                pass  # tar fails when the pattern matches nothing in this package
        # Debian ships no modules.dep (depmod runs at install): read .modinfo depends=.
        by_name = {re.sub(r"\.ko(\.\w+)?$", "", p.name): p for p in tmp.rglob("*.ko*")}
        plain: dict[str, Path] = {}
        for name, src in by_name.items():
            plain[name] = tmp / f"{name}.plain"
            _decompress_module(src, plain[name])
        deps: dict[str, list[str]] = {}
        for name, path in plain.items():
            m = re.search(rb"\0depends=([\w,-]*)\0", path.read_bytes())
            deps[name] = [d for d in (m.group(1).decode().split(",") if m else []) if d]
        order: list[str] = []

        def visit(mod: str) -> None:
            for d in deps.get(mod, []):
                visit(d)
            if mod not in order:
                order.append(mod)

        for w in wanted:
            if w in plain:  # absent: built in
                visit(w)
        missing = [m for m in order if m not in plain]
        if missing:
            raise FetchError(f"modules {missing} not found in the {kernel.release} packages")
        out_dir.mkdir(parents=True, exist_ok=True)
        for mod in order:
            shutil.copyfile(plain[mod], out_dir / f"{mod}.ko")
        order_file.write_text(" ".join(f"{m}.ko" for m in order) + "\n")
        return [out_dir / f"{m}.ko" for m in order]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def vmlinux_disk(kernel: Kernel, cache: Path) -> Path:
    """The vmlinux padded to whole 512-byte sectors (a raw disk image)."""
    src = Path(kernel.vmlinux)
    disk = cache / "kernels" / kernel.release / "vmlinux.img"
    size = src.stat().st_size
    padded = (size + 511) // 512 * 512
    if (
        disk.exists()
        and disk.stat().st_size == padded
        and disk.stat().st_mtime >= src.stat().st_mtime
    ):
        return disk
    part = disk.with_suffix(".part")
    shutil.copyfile(src, part)
    os.truncate(part, padded)
    part.replace(disk)
    return disk


class GuestFiles:
    """What a live guest boots with: the initramfs and the vmlinux disk."""

    def __init__(self, initrd: Path, disk: Path, vmlinux_size: int, packages: list[dict[str, str]]):
        self.initrd = initrd
        self.disk = disk
        self.vmlinux_size = vmlinux_size
        self.packages = packages


def _package_files(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*.py") if "__pycache__" not in p.parts)


def _cpio(tree: Path) -> bytes:
    """``tree`` as a newc cpio archive, every file owned by root."""
    names = subprocess.run(
        ["find", "."], cwd=tree, capture_output=True, text=True, check=True
    ).stdout
    return subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
        cwd=tree,
        input=names.encode(),
        capture_output=True,
        check=True,
    ).stdout


def pack_initramfs(
    kind: str,
    out_dir: Path,
    release: str,
    root: Path,
    busybox: Path,
    init: str,
    modules: list[Path],
    extra_modules: dict[str, Path],
    passwd: str,
    sh_link: bool = False,
    log: Log = print,
    files: dict[str, Path] | None = None,
) -> Path:
    """Build (or reuse) ``out_dir/<release>-<key>.cpio.zst``: the unpacked ``root``, then
    busybox, ``modules`` (loaded in that order, as ``/modules/order`` says) and
    ``extra_modules`` (name -> file) in /modules, rmem_inspect in /opt/rmem, ``passwd``
    and ``init`` as /init. ``sh_link`` adds /usr/bin/sh -> busybox; ``files`` maps more
    paths in the guest to host files. The key hashes every input file, so a change to
    any of them builds a new archive."""
    pkg_dir = Path(__file__).resolve().parent.parent / "rmem_inspect"
    h = hashlib.sha256()
    for blob in (init.encode(), str(root).encode(), busybox.read_bytes()):
        h.update(blob)
    for m in [*extra_modules.values(), *modules]:
        h.update(m.read_bytes())
    for dest, src in sorted((files or {}).items()):
        h.update(dest.encode() + src.read_bytes())
    for p in _package_files(pkg_dir):
        h.update(str(p.relative_to(pkg_dir)).encode() + p.read_bytes())
    out = out_dir / f"{release}-{h.hexdigest()[:16]}.cpio.zst"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    for old in out.parent.glob(f"{release}-*.cpio.zst"):
        old.unlink()
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        extra = Path(tmp) / "extra"
        (extra / "usr" / "bin").mkdir(parents=True)
        shutil.copy(busybox, extra / "usr" / "bin" / "busybox")
        (extra / "usr" / "bin" / "busybox").chmod(0o755)
        if sh_link:
            (extra / "usr" / "bin" / "sh").symlink_to("busybox")
        mdir = extra / "modules"
        mdir.mkdir()
        for name, m in extra_modules.items():
            shutil.copy(m, mdir / name)
        for m in modules:
            shutil.copy(m, mdir / m.name)
        (mdir / "order").write_text(" ".join(m.name for m in modules) + "\n")
        dst = extra / "opt" / "rmem" / "rmem_inspect"
        for p in _package_files(pkg_dir):
            q = dst / p.relative_to(pkg_dir)
            q.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, q)
        for dest, src in (files or {}).items():
            q = extra / dest.lstrip("/")
            q.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, q)
        for d in ("proc", "sys", "dev", "tmp", "root", "etc"):
            (extra / d).mkdir(exist_ok=True)
        (extra / "etc" / "passwd").write_text(passwd)
        (extra / "init").write_text(init)
        (extra / "init").chmod(0o755)
        cpio = Path(tmp) / "all.cpio"
        with open(cpio, "wb") as f:
            f.write(_cpio(root))
            f.write(_cpio(extra))
        part = out.with_suffix(".part")
        subprocess.run(["zstd", "-q", "-f", "-T0", "-9", str(cpio), "-o", str(part)], check=True)
        part.replace(out)
    if out.stat().st_size >= INITRD_LIMIT:
        raise FetchError(
            f"{kind} initramfs {out} is {out.stat().st_size} bytes: it would reach 0x50000000"
        )
    log(f"{kind} initramfs: {out.name} ({out.stat().st_size >> 20} MiB)")
    return out


def guest_files(
    kernel: Kernel,
    busybox: Path,
    init_script: str,
    cache: Path,
    log: Log = print,
    deb: Path | None = None,
) -> GuestFiles:
    """Build (or reuse) the zstd initramfs: userland, busybox, modules, rmem_inspect, /init.

    ``init_script`` may use ``@VMLINUX_SIZE@``, replaced by the vmlinux's size in bytes.
    ``deb`` (this project's package) goes to /opt/rmem-inspect.deb.
    """
    root, pkgs = build_userland(cache, log)
    modules = _kernel_modules(kernel, ("virtio_mmio", "virtio_blk"), cache)
    disk = vmlinux_disk(kernel, cache)
    size = Path(kernel.vmlinux).stat().st_size
    init = init_script.replace("@VMLINUX_SIZE@", str(size))
    out = pack_initramfs(
        "guest",
        cache / "live-initramfs",
        kernel.release,
        root,
        busybox,
        init,
        modules,
        {"qemu_fw_cfg.ko": Path(kernel.fw_cfg_module)},
        passwd="root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        log=log,
        files={"/opt/rmem-inspect.deb": deb} if deb is not None else None,
    )
    return GuestFiles(out, disk, size, pkgs)


def kernel_modules(kernel: Kernel, wanted: tuple[str, ...], cache: Path) -> list[Path]:
    """``wanted`` modules of ``kernel`` and their dependencies, decompressed, in load order."""
    return _kernel_modules(kernel, wanted, cache)


def merge_usr(root: Path) -> None:
    """Make ``root``'s /bin, /sbin, /lib links into usr/ (merged /usr)."""
    _merge_usr(root)
