# SPDX-License-Identifier: GPL-2.0-or-later
"""
The board-pack collector on this host: ``rmem-inspect collect-script`` passes
``shellcheck -s sh``, runs under busybox ``sh``, under mksh (alone and with
toybox's commands alone, as on Android) and without tar (busybox's cpio),
leaves nothing behind (staging directory, debugfs mount, kptr_restrict), and
its archive is read back by ``--board-pack``. Hostile archives built around
that real pack give one line and exit status 2, and the reader opens nothing
for writing.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from rmem_inspect.board_script import PACK_VERSION, collect_script
from rmem_inspect.formats import pack as pack_mod
from rmem_inspect.formats.pack import PackError, parse_pack

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
OPEN = re.compile(r'^\d+\s+open(?:at2?)?\((?:AT_FDCWD, )?"([^"]*)", ([A-Z_|]+).*\) = (-?\d+)')
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: tools/setup.sh installs it")
    return path


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("script") / "collect.sh"
    p.write_text(collect_script())
    return p


def _mounts() -> int:
    return sum(" debugfs " in line for line in Path("/proc/mounts").read_text().splitlines())


def _kptr() -> str:
    return Path("/proc/sys/kernel/kptr_restrict").read_text()


def _collect(
    shell: list[str], script: Path, tmp: Path, to_path: bool, env: dict[str, str] | None = None
) -> tuple[bytes, str]:
    stage = tmp / "stage-parent"
    stage.mkdir(exist_ok=True)
    full_env = {"PATH": os.environ["PATH"], "TMPDIR": str(stage), **(env or {})}
    out = tmp / "pack.out"
    args = [*shell, str(script)] + ([str(out)] if to_path else [])
    before = (_mounts(), _kptr())
    p = subprocess.run(args, capture_output=True, env=full_env, timeout=120, cwd=tmp)
    assert p.returncode == 0, p.stderr.decode()
    assert (_mounts(), _kptr()) == before, "debugfs or kptr_restrict left changed"
    assert list(stage.iterdir()) == [], "staging directory left behind"
    data = out.read_bytes() if to_path else p.stdout
    if to_path:
        assert p.stdout == b""
    return data, p.stderr.decode()


def test_shellcheck(script: Path) -> None:
    p = subprocess.run([_need("shellcheck"), "-s", "sh", str(script)], capture_output=True)
    assert p.returncode == 0, p.stdout.decode()
    for shell in (["dash", "-n"], [_need("busybox"), "sh", "-n"], [_need("mksh"), "-n"]):
        p = subprocess.run([*shell, str(script)], capture_output=True)
        assert p.returncode == 0, (shell, p.stderr.decode())


@pytest.mark.parametrize(
    "shell,to_path",
    [(["busybox", "sh"], False), (["busybox", "sh"], True), (["mksh"], False), (["dash"], False)],
    ids=["busybox-stdout", "busybox-path", "mksh", "dash"],
)
def test_collect_on_this_host(
    script: Path, tmp_path: Path, shell: list[str], to_path: bool
) -> None:
    _need(shell[0])
    data, err = _collect(shell, script, tmp_path, to_path)
    pack = parse_pack(data)
    assert pack.kind == "tar"
    assert pack.text("rmem/pack") == f"{PACK_VERSION}\n"
    # what the board exposes is copied byte for byte (files that do not change)
    for f in ("proc/version", "proc/cmdline"):
        assert pack.read(f) == Path("/" + f).read_bytes()
    assert pack.text("rmem/uname") == f"{os.uname().release}\n{os.uname().machine}\n"
    missing = pack.text("rmem/missing") or ""
    listed = [line.split("\t") for line in missing.splitlines()]
    assert all(len(x) == 2 and x[0].startswith(("/", "dmesg")) and x[1] for x in listed)
    # each source is either in the pack or listed with its reason
    for src in ("/sys/firmware/fdt", "/proc/iomem", "/sys/kernel/btf/vmlinux", "/proc/kallsyms"):
        assert (src.lstrip("/") in pack.files) != any(x[0] == src for x in listed), src
    assert f"{len(listed)} sources unreadable" in err
    path = tmp_path / "board.tar"
    path.write_bytes(data)
    r = _cli("report", "--board-pack", str(path), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    assert '"kind": "board-pack"' in r.stdout


def test_collect_without_tar_uses_cpio(script: Path, tmp_path: Path) -> None:
    """A busybox built without tar: the archive is cpio newc, read the same way."""
    bb = _need("busybox")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "tar":
            (bindir / a).symlink_to(bb)
    data, _ = _collect([bb, "sh"], script, tmp_path, True, env={"PATH": str(bindir)})
    assert data[:6] == b"070701"
    pack = parse_pack(data)
    assert pack.kind == "cpio" and pack.read("proc/version") == Path("/proc/version").read_bytes()


def test_collect_with_mksh_and_toybox_alone(script: Path, tmp_path: Path) -> None:
    """Android's shell (mksh) with toybox's applets alone on PATH (Debian's toybox has
    neither dd nor tr): the same sources are read as under busybox."""
    toybox, mksh = _need("toybox"), _need("mksh")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for a in subprocess.run([toybox], capture_output=True, text=True).stdout.split():
        (bindir / a).symlink_to(toybox)
    data, _ = _collect([mksh], script, tmp_path, False, env={"PATH": str(bindir)})
    ref, _ = _collect([_need("busybox"), "sh"], script, tmp_path, False)
    pack, want = parse_pack(data), parse_pack(ref)
    assert pack.text("rmem/missing") == want.text("rmem/missing")
    assert set(pack.files) == set(want.files)
    for f in ("proc/version", "proc/cmdline", "rmem/uname", "rmem/pagesize"):
        assert pack.read(f) == want.read(f), f


def _cli(*args: str, strace: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rmem_inspect", *args]
    if strace is not None:
        cmd = ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(strace), *cmd]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd="/")


def _tar(members: list[tuple[str, bytes | None, bytes]]) -> bytes:
    """A tar of (name, type, data) members (type None: regular file)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, typ, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if typ is not None:
                info.type = typ
                info.linkname = "/etc/passwd"
                info.size = 0
                data = b""
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


GOOD = [("rmem/pack", None, b"1\n"), ("proc/version", None, b"Linux version 6.12.0 (x)\n")]


def _huge_header() -> bytes:
    data = bytearray(_tar([("rmem/pack", None, b"1\n"), ("big", None, b"x")]))
    # the second header's size field (octal, 12 bytes at 124): 1 GiB
    h = 1024
    data[h + 124 : h + 136] = b"%011o\0" % (1 << 30)
    data[h + 148 : h + 156] = b" " * 8
    data[h + 148 : h + 155] = b"%06o\0" % sum(data[h : h + 512])
    return bytes(data)


HOSTILE = {
    "traversal": (_tar([*GOOD, ("../../etc/rmem-evil", None, b"x")]), "outside the archive"),
    "absolute": (_tar([*GOOD, ("/etc/rmem-evil", None, b"x")]), "absolute path"),
    "symlink": (_tar([*GOOD, ("sys/firmware/fdt", tarfile.SYMTYPE, b"")]), "not a regular"),
    "hardlink": (_tar([*GOOD, ("proc/iomem", tarfile.LNKTYPE, b"")]), "not a regular"),
    "duplicate": (_tar([*GOOD, ("proc/version", None, b"other")]), "appears twice"),
    "huge": (_huge_header(), "cap"),
    "truncated": (_tar([*GOOD, ("proc/iomem", None, b"y" * 5000)])[:2048], "truncated"),
    "not-an-archive": (b"hello\n" * 200, "neither a tar nor a cpio"),
    "no-version": (_tar([("proc/version", None, b"Linux version 6.12.0\n")]), "rmem/pack"),
    "cpio-truncated": (b"070701" + b"0" * 104, "truncated"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_one_line(case: str, tmp_path: Path) -> None:
    data, needle = HOSTILE[case]
    path = tmp_path / f"{case}.tar"
    path.write_bytes(data)
    log = tmp_path / "strace.log"
    r = _cli("report", "--board-pack", str(path), strace=log if shutil.which("strace") else None)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert needle in lines[0] and str(path) in lines[0], lines[0]
    assert not Path("/etc/rmem-evil").exists()
    if log.exists():
        written = [
            m.group(1)
            for m in map(OPEN.match, log.read_text().splitlines())
            if m and not m.group(3).startswith("-") and any(w in m.group(2) for w in WRITE_FLAGS)
        ]
        assert [w for w in written if w not in ("/dev/null", "/dev/tty")] == []


def test_gzip_bomb_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    monkeypatch.setattr(pack_mod, "MAX_TOTAL", 1 << 20)
    with pytest.raises(PackError, match="inflates beyond"):
        parse_pack(gzip.compress(b"\0" * (3 << 20)))
    assert parse_pack(gzip.compress(_tar(GOOD))).read("rmem/pack") == b"1\n"


def test_member_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pack_mod, "MAX_MEMBER", 100)
    with pytest.raises(PackError, match="over the"):
        parse_pack(_tar([*GOOD, ("proc/kallsyms", None, b"k" * 101)]))


def test_cut_script_shellcheck(tmp_path: Path) -> None:
    """A later round's script (``collect-script --from``), for a real boot's kcore piece."""
    from rmem_inspect.board_script import cut_script
    from rmem_inspect.formats.kcore import file_ranges, parse_kcore_head
    from tests.unit.kcore_fixture import kcore_fixture

    fx = kcore_fixture()
    head = parse_kcore_head(fx.head)
    uts = fx.symbol("init_uts_ns")
    cuts = file_ranges(head, uts - uts % 4096, 8192) + [(uts, 123, 7)]
    path = tmp_path / "round2.sh"
    path.write_text(cut_script(2, cuts))
    p = subprocess.run([_need("shellcheck"), "-s", "sh", str(path)], capture_output=True)
    assert p.returncode == 0, p.stdout.decode()
    for shell in (["dash", "-n"], [_need("busybox"), "sh", "-n"], [_need("mksh"), "-n"]):
        p = subprocess.run([*shell, str(path)], capture_output=True)
        assert p.returncode == 0, (shell, p.stderr.decode())
    # unaligned pieces are read with a block size that divides offset and length
    assert f"    cut {uts:016x} 123 1 7\n" in path.read_text()


@pytest.mark.parametrize(
    "head,kallsyms,said",
    [
        (b"\x7fELF" + bytes(60), b"", "not usable"),
        (None, b"", "no /proc/kcore head"),
        ("real", b"0000000000000000 T _text\n", "no addresses"),
        ("real", b"ffff800080000000 T _text\n", "no data symbols"),
    ],
    ids=["bad-head", "no-head", "hidden-kallsyms", "no-data-symbols"],
)
def test_hostile_kcore_cuts(head: bytes | str | None, kallsyms: bytes, said: str,
                            tmp_path: Path) -> None:  # fmt: skip
    """Packs with kcore cuts the host cannot read as a kernel (a wrapping address, a
    non-hex name, a bad head, no addresses): the report is the fallback's with the reason
    in ``source.kcore``, and ``--from`` says it in one line, exit 2."""
    from tests.unit.kcore_fixture import kcore_fixture

    members = [*GOOD, ("proc/kallsyms", None, kallsyms)]
    if head is not None:
        members.append(("proc/kcore.head", None, kcore_fixture().head if head == "real" else head))
    members += [("kcore/ffffffffffffff00", None, bytes(4096)), ("kcore/zz", None, b"x"),
                ("kcore/ffff800080000000", None, bytes(4096))]  # fmt: skip
    (tmp_path / "p.tar").write_bytes(_tar(members))
    r = _cli("report", "--board-pack", str(tmp_path / "p.tar"), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    assert said in json.loads(r.stdout)["source"]["kcore"]
    r = _cli("collect-script", "--from", str(tmp_path / "p.tar"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and said in r.stderr, r.stderr
