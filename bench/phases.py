# SPDX-License-Identifier: GPL-2.0-or-later
"""
Where the time of one no-vmlinux report goes: run as ``python bench/phases.py VMCORE``
in a fresh interpreter (``bench/no_vmlinux.py --phases`` does, several times), it
prints one JSON object of CPU seconds (``time.process_time``) per phase: importing
drgn, importing rmem_inspect's report path, ``set_core_dump()``, the kallsyms finder,
reading the BTF blob, the BTF index (from the cache when warm), ``inspect()`` (the
collectors), the checks with the table rendering and writing the index cache (cold).
Interpreter start is measured by the caller (``python -c pass``).
"""

from __future__ import annotations

import json
import os
import sys
import time

__all__ = ["main"]


def main(vmcore: str) -> dict[str, float]:
    out: dict[str, float] = {}
    t = time.process_time()

    def lap(name: str) -> None:
        nonlocal t
        now = time.process_time()
        out[name] = now - t
        t = now

    import drgn

    lap("import drgn")
    from rmem_inspect import checks
    from rmem_inspect.collect.btf_cache import flush, load_btf
    from rmem_inspect.collect.drgn_plugins import skip_command_plugins
    from rmem_inspect.collect.kallsyms_finder import install_kallsyms, vmcoreinfo
    from rmem_inspect.collect.kernel_btf import KernelSymbols, btf_blob_from_image, install
    from rmem_inspect.collect.program import open_vmcore  # noqa: F401 (as the report path)
    from rmem_inspect.collect.snapshot import inspect
    from rmem_inspect.output import render

    lap("import rmem_inspect")
    skip_command_plugins(os.environ)
    prog = drgn.Program()
    prog.set_core_dump(vmcore)
    lap("set_core_dump")
    install_kallsyms(prog)
    lap("kallsyms")
    blob = btf_blob_from_image(prog)
    lap("BTF blob read")
    btf, _ = load_btf(blob, vmcoreinfo(prog).get("BUILD-ID"))
    install(prog, btf, KernelSymbols(btf_source="__start_BTF..__stop_BTF", btf_bytes=len(blob)))
    lap("BTF index + finders")
    snap = inspect(prog, source={"kind": "vmcore"})
    lap("inspect (collectors)")
    render(checks.run(snap), "table")
    lap("checks + render")
    flush()  # what the cold run writes when it is done with the BTF
    lap("index cache write")
    return out


if __name__ == "__main__":
    json.dump(main(sys.argv[1]), sys.stdout)
