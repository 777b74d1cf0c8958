# SPDX-License-Identifier: GPL-2.0-or-later
"""
board_script
------------

The board side of a board pack: :data:`COLLECT_SCRIPT`, one POSIX ``sh``
script (busybox ash, Android's mksh with toybox; no bash-isms, checked with
``shellcheck -s sh``) that a board engineer runs as root on a board without
Python or drgn. It copies what the kernel exposes into a staging directory on a
tmpfs it mounts for the purpose (removed, with every change it made, on exit),
then writes one archive (tar, or cpio newc when the board has no tar) to
stdout or to the path given as its only argument:

=====================================  ===========================================
archive member                         board source
=====================================  ===========================================
``sys/firmware/fdt``                   the boot FDT (``/sys/firmware/fdt``)
``sys/firmware/devicetree/base/...``   the unflattened tree (or ``/proc/device-tree``)
``sys/kernel/debug/memblock/*``        debugfs memblock (debugfs mounted if needed,
                                       unmounted after)
``proc/iomem``, ``proc/cmdline``,      the same files (``/proc/kallsyms`` read with
``proc/version``, ``proc/meminfo``,    ``kptr_restrict`` set to 0, then restored)
``proc/kallsyms``
``sys/kernel/mm/cma/...``              CMA areas' counters
``sys/kernel/btf/vmlinux``             the kernel's BTF
``sys/kernel/vmcoreinfo``,             where VMCOREINFO lives; the kernel's notes
``sys/kernel/notes``                   (its build-id)
``proc/kcore.head``                    the first 256 KiB of ``/proc/kcore``: its ELF
                                       header, program headers and notes
``rmem/dmesg``                         the kernel log (``dmesg``, else ``/dev/kmsg``)
``rmem/uname``, ``rmem/pagesize``      ``uname -r``/``-m``, the page size
``rmem/missing``                       one ``path<TAB>reason`` line per source it
                                       could not read
``rmem/pack``                          the pack format version
=====================================  ===========================================

The host reads the archive with :mod:`rmem_inspect.formats.pack`.
"""

from __future__ import annotations

import re

__all__ = ["COLLECT_SCRIPT", "CUT_SCRIPT", "PACK_VERSION", "collect_script", "cut_script"]

#: Written to ``rmem/pack`` in every archive; the reader refuses other versions.
PACK_VERSION = 1

#: The parts both scripts share, spliced in by :func:`_assemble`. ``@CLEANUP@``: the
#: state a script may change and its undoing on exit or signal (a later round mounts no
#: debugfs and leaves kptr_restrict alone: those two stay empty there).
_CLEANUP_SH = r"""stage=
tmpfs=
debugfs=
kptr=
# shellcheck disable=SC2317  # called from the traps below
cleanup() {
    if [ -n "$kptr" ]; then
        { printf '%s\n' "$kptr" >/proc/sys/kernel/kptr_restrict; } 2>/dev/null
        kptr=
    fi
    if [ -n "$debugfs" ]; then
        umount "$debugfs" 2>/dev/null
        debugfs=
    fi
    if [ -n "$tmpfs" ]; then
        umount "$tmpfs" 2>/dev/null
        tmpfs=
    fi
    if [ -n "$stage" ]; then
        rm -rf "$stage"
        stage=
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
"""

#: ``@STAGE@``: a private staging directory, on a tmpfs mounted over it where the board
#: allows (else on the directory's own file system).
_STAGE_SH = r"""for base in "${TMPDIR:-}" /tmp /data/local/tmp /dev; do
    if [ -z "$base" ] || [ ! -d "$base" ] || [ ! -w "$base" ]; then
        continue
    fi
    stage="$base/rmem-pack.$$"
    mkdir -m 700 "$stage" 2>/dev/null && break
    stage=
done
if [ -z "$stage" ]; then
    say "no writable directory for staging (tried \$TMPDIR, /tmp, /data/local/tmp, /dev)"
    exit 2
fi
if mount -t tmpfs -o size=256m,mode=0700 rmem-pack "$stage" 2>/dev/null; then
    tmpfs=$stage
fi
"""

#: ``@PACK@``: the archive's bookkeeping, written first.
_PACK_SH = r""": >"$stage/rmem/missing"
printf '%s\n' "@PACK_VERSION@" >"$stage/rmem/pack"
"""

#: ``@ARCHIVE members@``: the staged ``members`` as one tar (or cpio newc) archive.
_ARCHIVE_SH = r"""if command -v tar >/dev/null 2>&1; then
    if [ "$out" = - ]; then
        (cd "$stage" && tar -cf - @MEMBERS@ 2>/dev/null)
    else
        (cd "$stage" && tar -cf - @MEMBERS@ 2>/dev/null) >"$out"
    fi
    rc=$?
elif command -v cpio >/dev/null 2>&1; then
    if [ "$out" = - ]; then
        (cd "$stage" && find @MEMBERS@ | cpio -o -H newc 2>/dev/null)
    else
        (cd "$stage" && find @MEMBERS@ | cpio -o -H newc 2>/dev/null) >"$out"
    fi
    rc=$?
else
    say "neither tar nor cpio on this board"
    exit 2
fi
if [ "$rc" != 0 ]; then
    say "writing the archive failed"
    exit 2
fi
"""


def _assemble(template: str) -> str:
    """``template`` with the shared parts spliced in (versions still as placeholders)."""
    text = (
        template.replace("@CLEANUP@\n", _CLEANUP_SH)
        .replace("@STAGE@\n", _STAGE_SH)
        .replace("@PACK@\n", _PACK_SH)
    )
    return re.sub(
        r"^@ARCHIVE ([a-z ]+)@\n",
        lambda m: _ARCHIVE_SH.replace("@MEMBERS@", m.group(1)),
        text,
        flags=re.MULTILINE,
    )


COLLECT_SCRIPT = _assemble(r"""#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# rmem-inspect board pack collector, pack format @PACK_VERSION@ (rmem_inspect @TOOL_VERSION@).
# Run as root on the board: sh collect.sh [ARCHIVE] (default: the archive on stdout).
# Reads the kernel's reserved-memory evidence; writes only ARCHIVE (or stdout). It stages
# the files on a tmpfs it mounts under $TMPDIR (or /tmp, /data/local/tmp) and removes it,
# restores kptr_restrict and unmounts debugfs if it mounted it, also when interrupted.
# Then, on the host: rmem-inspect report --board-pack ARCHIVE
out=${1:--}
say() { printf 'rmem-collect: %s\n' "$*" >&2; }
@CLEANUP@

if [ "$(id -u 2>/dev/null)" != 0 ]; then
    say "not root: debugfs, /proc/kallsyms and /proc/kcore need root; reading what is readable"
fi
@STAGE@
mkdir -p "$stage/rmem" "$stage/proc" "$stage/sys"
@PACK@

# miss PATH REASON: record a source that could not be read.
miss() {
    printf '%s\t%s\n' "$1" "$2" >>"$stage/rmem/missing"
}
# why FILE: the first line of an error output, or a default.
why() {
    r=$(head -n 1 "$1" 2>/dev/null)
    printf '%s' "${r:-unreadable}"
}
# grab SRC: copy a file to the same path under the stage.
grab() {
    if [ ! -e "$1" ]; then
        miss "$1" "not present"
        return 1
    fi
    mkdir -p "$stage$(dirname "$1")"
    if ! cat "$1" >"$stage$1" 2>"$stage/rmem/err"; then
        miss "$1" "$(why "$stage/rmem/err")"
        rm -f "$stage$1"
        return 1
    fi
    return 0
}
# grabdir SRC DEST: copy a directory tree (following the /proc/device-tree link).
grabdir() {
    if [ ! -d "$1" ]; then
        miss "$1" "not present"
        return 1
    fi
    mkdir -p "$stage$2"
    if ! cp -R "$1/." "$stage$2/" 2>"$stage/rmem/err"; then
        miss "$1" "$(why "$stage/rmem/err")"
        return 1
    fi
    return 0
}

uname -r >"$stage/rmem/uname" 2>/dev/null
uname -m >>"$stage/rmem/uname" 2>/dev/null
ps=$(sed -n 's/^KernelPageSize: *\([0-9]*\) kB$/\1/p' /proc/self/smaps 2>/dev/null | head -n 1)
if [ -n "$ps" ]; then
    printf '%s\n' "$((ps * 1024))" >"$stage/rmem/pagesize"
else
    miss /proc/self/smaps "no KernelPageSize line"
fi

grab /sys/firmware/fdt
if [ -d /sys/firmware/devicetree/base ]; then
    grabdir /sys/firmware/devicetree/base /sys/firmware/devicetree/base
elif [ -d /proc/device-tree ]; then
    grabdir /proc/device-tree /sys/firmware/devicetree/base
else
    miss /sys/firmware/devicetree/base "not present (no devicetree)"
fi
for f in /proc/iomem /proc/cmdline /proc/version /proc/meminfo /sys/kernel/btf/vmlinux \
    /sys/kernel/vmcoreinfo /sys/kernel/notes; do
    grab "$f"
done
if [ -d /sys/kernel/mm/cma ]; then
    grabdir /sys/kernel/mm/cma /sys/kernel/mm/cma
else
    miss /sys/kernel/mm/cma "not present (no CONFIG_CMA_SYSFS or no CMA area)"
fi

# debugfs memblock: mounted by this script only if it is not mounted already.
mb=/sys/kernel/debug/memblock
if [ ! -d "$mb" ] && [ -d /sys/kernel/debug ]; then
    if mount -t debugfs debugfs /sys/kernel/debug 2>"$stage/rmem/err"; then
        debugfs=/sys/kernel/debug
    else
        miss /sys/kernel/debug "mount -t debugfs failed: $(why "$stage/rmem/err")"
    fi
fi
if [ -d "$mb" ]; then
    grab "$mb/memory"
    grab "$mb/reserved"
elif [ -n "$debugfs" ] || [ -d /sys/kernel/debug/bdi ]; then
    miss "$mb" "not present (memblock not kept after boot: no CONFIG_ARCH_KEEP_MEMBLOCK)"
else
    miss "$mb" "no debugfs (no /sys/kernel/debug: CONFIG_DEBUG_FS off, or debugfs=off)"
fi
if [ -n "$debugfs" ]; then
    umount "$debugfs" 2>/dev/null
    debugfs=
fi

# /proc/kallsyms with addresses: kptr_restrict lifted for the read, restored right after.
k=/proc/sys/kernel/kptr_restrict
old=$(cat "$k" 2>/dev/null)
if [ -n "$old" ] && [ "$old" != 0 ]; then
    if { printf '0\n' >"$k"; } 2>"$stage/rmem/err"; then
        kptr=$old
    else
        miss "$k" "kptr_restrict=$old could not be lowered: $(why "$stage/rmem/err")"
    fi
fi
grab /proc/kallsyms
if [ -n "$kptr" ]; then
    { printf '%s\n' "$kptr" >"$k"; } 2>/dev/null
    kptr=
fi
if [ -f "$stage/proc/kallsyms" ] && head -n 1 "$stage/proc/kallsyms" | grep -q '^0* '; then
    miss /proc/kallsyms "addresses hidden (kptr_restrict=$old): names only"
fi

# The first 256 KiB of /proc/kcore; toybox as Debian builds it has no dd: head -c then.
kcore_head() {
    if command -v dd >/dev/null 2>&1; then
        dd if=/proc/kcore bs=4096 count=64
    else
        head -c 262144 /proc/kcore
    fi
}
if [ -r /proc/kcore ]; then
    if ! kcore_head >"$stage/proc/kcore.head" 2>"$stage/rmem/err"; then
        miss /proc/kcore "$(why "$stage/rmem/err")"
        rm -f "$stage/proc/kcore.head"
    fi
elif [ -e /proc/kcore ]; then
    miss /proc/kcore "not readable"
else
    miss /proc/kcore "not present (no CONFIG_PROC_KCORE)"
fi

if dmesg >"$stage/rmem/dmesg" 2>"$stage/rmem/err" && [ -s "$stage/rmem/dmesg" ]; then
    :
else
    miss dmesg "$(why "$stage/rmem/err")"
    rm -f "$stage/rmem/dmesg"
fi
rm -f "$stage/rmem/err"

@ARCHIVE rmem proc sys@
n=$(wc -l <"$stage/rmem/missing")
say "done; $((n)) sources unreadable (listed in the archive's rmem/missing)"
exit 0
""")


def collect_script() -> str:
    """The collector as the board runs it: :data:`COLLECT_SCRIPT` with the versions filled in."""
    from rmem_inspect.version import __version__

    return COLLECT_SCRIPT.replace("@PACK_VERSION@", str(PACK_VERSION)).replace(
        "@TOOL_VERSION@", __version__
    )


#: A later round (``collect-script --from PACKS``): pieces of /proc/kcore, cut by ``dd``.
CUT_SCRIPT = _assemble(r"""#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# rmem-inspect board pack round @ROUND@: @COUNT@ pieces of /proc/kcore (@BYTES@ bytes), pack
# format @PACK_VERSION@ (rmem_inspect @TOOL_VERSION@), computed from the packs of this boot.
# Run as root on the same boot: sh round@ROUND@.sh [ARCHIVE] (default: stdout).
out=${1:--}
say() { printf 'rmem-collect: %s\n' "$*" >&2; }
@CLEANUP@
@STAGE@
mkdir -p "$stage/rmem" "$stage/kcore"
@PACK@
printf '%s\n' "@ROUND@" >"$stage/rmem/round@ROUND@"
if ! command -v dd >/dev/null 2>&1; then
    printf '%s\t%s\n' /proc/kcore "no dd on this board to cut it (busybox dd, toybox dd)" \
        >>"$stage/rmem/missing"
fi
# cut VADDR OFFSET BLOCK COUNT: COUNT blocks of BLOCK bytes at OFFSET of /proc/kcore.
cut() {
    if ! dd if=/proc/kcore of="$stage/kcore/$1" bs="$3" skip="$(($2 / $3))" count="$4" \
        2>"$stage/rmem/err"; then
        printf '%s\t%s\n' "/proc/kcore@$1" "$(head -n 1 "$stage/rmem/err")" \
            >>"$stage/rmem/missing"
        rm -f "$stage/kcore/$1"
    fi
}
if command -v dd >/dev/null 2>&1; then
@CUTS@
fi
rm -f "$stage/rmem/err"
@ARCHIVE rmem kcore@
n=$(wc -l <"$stage/rmem/missing")
say "round @ROUND@ done; $((n)) pieces unreadable (listed in the archive's rmem/missing)"
exit 0
""")


def cut_script(number: int, cuts: list[tuple[int, int, int]]) -> str:
    """Round ``number``'s script: ``cuts`` are (vaddr, /proc/kcore offset, length)."""
    from rmem_inspect.version import __version__

    lines = []
    for vaddr, offset, length in cuts:
        block = next(b for b in (4096, 512, 1) if offset % b == 0 and length % b == 0)
        lines.append(f"    cut {vaddr:016x} {offset} {block} {length // block}")
    return (
        CUT_SCRIPT.replace("@CUTS@", "\n".join(lines) or "    :")
        .replace("@ROUND@", str(number))
        .replace("@COUNT@", str(len(cuts)))
        .replace("@BYTES@", str(sum(n for _v, _o, n in cuts)))
        .replace("@PACK_VERSION@", str(PACK_VERSION))
        .replace("@TOOL_VERSION@", __version__)
    )
