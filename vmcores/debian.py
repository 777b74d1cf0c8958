# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fetch real Debian arm64 kernels (image, qemu_fw_cfg module, vmlinux with DWARF)
and busybox-static with a private apt configuration.

Nothing on the host changes: each suite gets its own sources list, lists, cache
and empty dpkg status under the factory cache, and packages are unpacked with
``dpkg-deb -x``. The archive mirror is the one the host's own apt uses (read
from its sources), or ``$RMEM_DEBIAN_MIRROR``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "SERIES",
    "Kernel",
    "Package",
    "PrivateApt",
    "Series",
    "fetch_busybox",
    "fetch_kernel",
    "host_mirror",
]


@dataclass(frozen=True)
class Series:
    """A kernel generation and the Debian suite that ships it."""

    key: str
    suite: str
    flavour: str = "cloud-arm64"


SERIES: dict[str, Series] = {
    s.key: s
    for s in (
        Series("6.1", "bookworm"),
        Series("6.12", "trixie"),
        Series("7.x", "trixie-backports"),
    )
}


@dataclass
class Package:
    name: str
    version: str
    sha256: str
    file: str


@dataclass
class Kernel:
    series: str
    release: str
    vmlinuz: str
    vmlinux: str
    fw_cfg_module: str
    debug_root: str
    packages: list[Package]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Kernel:
        d = dict(d)
        d["packages"] = [Package(**p) for p in d["packages"]]
        return cls(**d)


class FetchError(RuntimeError):
    pass


Log = Callable[[str], None]


def host_mirror() -> str:
    """The Debian archive URI the host's apt uses (deb822 or one-line sources)."""
    env = os.environ.get("RMEM_DEBIAN_MIRROR")
    if env:
        return env.rstrip("/")
    candidates: list[Path] = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        candidates += sorted(d.glob("*.sources")) + sorted(d.glob("*.list"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for m in re.finditer(r"^\s*URIs:\s*(.+)$", text, re.M):
            for uri in m.group(1).split():
                if uri.rstrip("/").endswith("/debian"):
                    return uri.rstrip("/")
        for m in re.finditer(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s", text, re.M):
            if m.group(1).rstrip("/").endswith("/debian"):
                return m.group(1).rstrip("/")
    raise FetchError(
        "cannot find a Debian archive in the host's apt sources; set RMEM_DEBIAN_MIRROR"
    )


class PrivateApt:
    """apt-get/apt-cache for one suite and architecture (arm64 unless told), with state
    kept under ``root``."""

    def __init__(self, root: Path, suite: str, mirror: str, arch: str = "arm64") -> None:
        self.root = root / (suite if arch == "arm64" else f"{suite}-{arch}")
        self.suite = suite
        self.mirror = mirror
        self.arch = arch
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        _write_if_changed(self.root / "sources.list", f"deb [arch={arch}] {mirror} {suite} main\n")
        self.conf = self.root / "apt.conf"
        _write_if_changed(
            self.conf,
            "\n".join(
                [
                    f'Dir::Etc::SourceList "{self.root}/sources.list";',
                    'Dir::Etc::SourceParts "/dev/null";',
                    f'Dir::State::Lists "{self.root}/lists";',
                    f'Dir::State::status "{self.root}/status";',
                    f'Dir::Cache "{self.root}/cache";',
                    f'APT::Architecture "{arch}";',
                    f'APT::Architectures {{ "{arch}"; }};',
                    'Acquire::Languages "none";',
                    # downloads go to a root-owned directory: do not drop to _apt
                    'APT::Sandbox::User "root";',
                    "",
                ]
            ),
        )
        self._updated = False

    def _run(self, *args: str, cwd: Path | None = None) -> str:
        env = dict(os.environ, APT_CONFIG=str(self.conf), LC_ALL="C")
        # apt refuses to run twice on one state directory: serialise builders
        # that share the cache instead of failing on apt's lock.
        with open(self.root / ".rmem-lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            p = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
        if p.returncode != 0:
            raise FetchError(f"{' '.join(args)} failed: {p.stderr.strip()[-2000:]}")
        return p.stdout

    def update(self) -> None:
        if not self._updated:
            self._run("apt-get", "update", "-q")
            self._updated = True

    def show(self, package: str) -> dict[str, str] | None:
        """The newest candidate's control fields, or None if unknown."""
        self.update()
        try:
            out = self._run("apt-cache", "show", "--no-all-versions", package)
        except FetchError as e:
            # Only "no such package" means absent; any other apt failure is reported.
            if "No packages found" in str(e) or "Unable to locate" in str(e):
                return None
            raise
        fields: dict[str, str] = {}
        for line in out.splitlines():
            if not line.strip():
                break
            if line[0].isspace() or ":" not in line:
                continue
            k, v = line.split(":", 1)
            fields[k] = v.strip()
        return fields or None

    def download(self, packages: Iterable[str], dest: Path) -> list[Package]:
        self.update()
        dest.mkdir(parents=True, exist_ok=True)
        out: list[Package] = []
        for name in packages:
            info = self.show(name)
            if info is None:
                raise FetchError(f"package {name} not found in {self.suite} ({self.arch})")
            version = info["Version"]
            # apt-get download names files name_version_arch.deb, epoch colon quoted.
            fname = (
                f"{name}_{version.replace(':', '%3a')}_{info.get('Architecture', self.arch)}.deb"
            )
            path = dest / fname
            if not (path.exists() and _sha256(path) == info.get("SHA256")):
                self._run("apt-get", "download", "-q", f"{name}={version}", cwd=dest)
            if not path.exists():
                raise FetchError(f"apt-get download {name} did not produce {fname}")
            out.append(Package(name, version, _sha256(path), str(path)))
        return out


def _write_if_changed(path: Path, text: str) -> None:
    """Replace ``path`` atomically, and only when its content changes: other builders
    sharing the cache may be running apt with this very file at the same moment."""
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _extract(deb: str, dest: Path, members: list[str] | None = None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if members is None:
        subprocess.run(["dpkg-deb", "-x", deb, str(dest)], check=True)
        return
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    subprocess.run(
        ["tar", "-x", "-C", str(dest), "--wildcards", *members], stdin=tar.stdout, check=True
    )
    if tar.wait() != 0:
        raise FetchError(f"dpkg-deb --fsys-tarfile {deb} failed")


def _decompress_module(src: Path, dst: Path) -> None:
    if src.suffix == ".xz":
        import lzma

        dst.write_bytes(lzma.decompress(src.read_bytes()))
    elif src.suffix == ".zst":
        data = subprocess.run(["zstd", "-dc", str(src)], capture_output=True, check=True).stdout
        dst.write_bytes(data)
    elif src.suffix == ".gz":
        import gzip

        dst.write_bytes(gzip.decompress(src.read_bytes()))
    else:
        shutil.copyfile(src, dst)


def fetch_kernel(series: Series, cache: Path, log: Log = print) -> Kernel:
    """Resolve the newest kernel of ``series``, download and unpack what the factory needs.

    Returns quickly when the same package versions are already unpacked.
    """
    apt = PrivateApt(cache / "apt", series.suite, host_mirror())
    meta = apt.show(f"linux-image-{series.flavour}-dbg")
    if meta is None:
        raise FetchError(f"no linux-image-{series.flavour}-dbg in {series.suite}")
    m = re.search(r"linux-image-(\S+)-dbg\b", meta.get("Depends", ""))
    if not m:
        raise FetchError(f"cannot resolve the kernel behind {meta.get('Package')}")
    release = m.group(1)
    kdir = cache / "kernels" / release
    kdir.parent.mkdir(parents=True, exist_ok=True)
    # Builders sharing the cache unpack each kernel once: the others wait here.
    with open(kdir.parent / f".{release}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _unpack_kernel(apt, series, release, kdir, cache, log)


def _unpack_kernel(
    apt: PrivateApt, series: Series, release: str, kdir: Path, cache: Path, log: Log
) -> Kernel:
    stamp = kdir / "kernel.json"
    if stamp.exists():
        import json

        k = Kernel.from_json(json.loads(stamp.read_text()))
        if all(Path(p).exists() for p in (k.vmlinuz, k.vmlinux, k.fw_cfg_module)):
            log(f"[{series.key}] {release}: cached")
            return k

    # Image packaging differs: bookworm/trixie ship linux-image-VER-unsigned with
    # /boot/vmlinuz; the 7.x backports split it into linux-binary(-unsigned) + linux-modules.
    names: list[str]
    if apt.show(f"linux-image-{release}-unsigned"):
        names = [f"linux-image-{release}-unsigned"]
    elif apt.show(f"linux-binary-unsigned-{release}"):
        names = [f"linux-binary-unsigned-{release}", f"linux-modules-{release}"]
    else:
        names = [f"linux-binary-{release}", f"linux-modules-{release}"]
    names.append(f"linux-image-{release}-dbg")
    log(f"[{series.key}] {release}: downloading {', '.join(names)}")
    pkgs = apt.download(names, cache / "debs")

    tree = kdir / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    for p in pkgs[:-1]:
        _extract(p.file, tree)
    log(f"[{series.key}] {release}: unpacking vmlinux from {Path(pkgs[-1].file).name}")
    dbg = kdir / "dbg"
    if dbg.exists():
        shutil.rmtree(dbg)
    _extract(pkgs[-1].file, dbg, ["*/vmlinux*"])

    vmlinuz = _find_one(tree, lambda p: p.name.startswith("vmlinuz"))
    vmlinux = _find_one(dbg, lambda p: p.name.startswith("vmlinux") and p.is_file())
    module = _find_one(tree, lambda p: p.name.startswith("qemu_fw_cfg.ko"))
    fw = kdir / "qemu_fw_cfg.ko"
    _decompress_module(module, fw)
    # Keep only what boots and what drgn reads; the module tree is large.
    kernel_image = kdir / "vmlinuz"
    shutil.move(str(vmlinuz), kernel_image)
    shutil.rmtree(tree)

    k = Kernel(
        series=series.key,
        release=release,
        vmlinuz=str(kernel_image),
        vmlinux=str(vmlinux),
        fw_cfg_module=str(fw),
        debug_root=str(dbg),
        packages=pkgs,
    )
    import json

    stamp.write_text(json.dumps(k.to_json(), indent=2) + "\n")
    return k


def fetch_busybox(cache: Path, log: Log = print) -> tuple[Path, Package]:
    """A static arm64 busybox from trixie."""
    apt = PrivateApt(cache / "apt", "trixie", host_mirror())
    (pkg,) = apt.download(["busybox-static"], cache / "debs")
    out = cache / "busybox" / pkg.version / "busybox"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            _unpack_busybox(pkg, out, log)
    return out, pkg


def _unpack_busybox(pkg: Package, out: Path, log: Log) -> None:
    tmp = out.parent / "x"
    if tmp.exists():
        shutil.rmtree(tmp)
    _extract(pkg.file, tmp)
    shutil.move(str(_find_one(tmp, lambda p: p.name == "busybox" and p.is_file())), out)
    shutil.rmtree(tmp)
    log(f"busybox-static {pkg.version}: unpacked")


def _find_one(root: Path, pred: Callable[[Path], bool]) -> Path:
    found = sorted(p for p in root.rglob("*") if pred(p))
    if not found:
        raise FetchError(f"expected file not found under {root}")
    return found[0]
