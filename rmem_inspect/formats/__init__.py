# SPDX-License-Identifier: GPL-2.0-or-later
"""Pure readers of the binary formats this tool meets (no drgn): the flattened
devicetree (:mod:`.fdt`) and its decoding into the model (:mod:`.devicetree`), ELF
headers and notes (:mod:`.elf`), makedumpfile's kdump-compressed and flattened
headers (:mod:`.kdump`), and BTF (:mod:`.btf`). Preflight uses them offline; each is
fuzzed in tests/unit."""
