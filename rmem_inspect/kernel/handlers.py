# SPDX-License-Identifier: GPL-2.0-or-later
"""
kernel.handlers
---------------

Which reserved-memory handlers a kernel can have, and which one initialises a region.

Every ``RESERVEDMEM_OF_DECLARE(name, compat, fn)`` (include/linux/of_reserved_mem.h)
puts a ``struct of_device_id`` named ``__of_table_<name>`` (``.compatible = compat``,
``.data`` = the init function up to 7.0, a ``struct reserved_mem_ops`` from 7.1 on) in the
``__reservedmem_of_table`` section (init data), ended by ``__rmem_of_table_sentinel``
(drivers/of/of_reserved_mem.c). ``__reserved_mem_init_node()`` walks that table for each
saved region and calls every entry whose compatible the node has, until one returns 0:

- no entry matches: -ENOENT (6.1, 6.12) / -ENODEV (7.x): the entry is kept with ops NULL,
  nothing is logged ("no handler in this kernel");
- entries match but all refuse: "node %s compatible matching fail", the memory is freed or
  its no-map cleared (6.1 and 6.12; 7.x keeps walking only past -ENODEV refusals).

A declaration is in a kernel only when the file declaring it is built: the table below says
which option builds it, read from Debian's linux-source-6.1 (6.1.176), -6.12 (6.12.117) and
-7.3 (7.3.4). Line numbers are those of 6.1 / 6.12 / 7.3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DECLARATIONS",
    "GENERIC_DECLARATIONS",
    "Declaration",
    "HandlerGap",
    "declarations_from_config",
    "handler_gap",
    "identify",
    "parse_config",
]


@dataclass(frozen=True)
class Declaration:
    """One ``RESERVEDMEM_OF_DECLARE()`` of the kernel sources."""

    #: The macro's first argument: the entry is the symbol ``__of_table_<name>``.
    name: str
    compatible: str
    #: What the entry's ``.data`` points at: the init function (up to 7.0) and the
    #: ``reserved_mem_ops`` (7.1 on, commit "of: reserved_mem: ... ops").
    data: tuple[str, ...]
    #: Where it is declared (6.1 / 6.12 / 7.3 line numbers).
    source: str
    #: The Kconfig option that builds the declaring file (its Makefile line).
    config: str
    #: Properties whose presence makes the init function refuse the node.
    refuses_with: tuple[str, ...] = ()
    #: Properties whose absence makes it refuse the node.
    refuses_without: tuple[str, ...] = ()
    #: Where it refuses, the source lines that say so.
    rule: str = ""

    def refusal(self, props: Iterable[str]) -> str | None:
        """Why this handler refuses a node with the properties ``props``, or None."""
        have = set(props)
        bad = [p for p in self.refuses_with if p in have]
        bad += [f"no {p}" for p in self.refuses_without if p not in have]
        return ", ".join(bad) if bad else None


#: Every declaration of the three Debian kernel sources (none is arch-specific).
DECLARATIONS: tuple[Declaration, ...] = (
    Declaration(
        "cma",
        "shared-dma-pool",
        ("rmem_cma_setup", "rmem_cma_ops"),
        "kernel/dma/contiguous.c:440 / 495 / 589",
        "CONFIG_DMA_CMA",
        refuses_with=("no-map",),
        refuses_without=("reusable",),
        rule="rmem_cma_setup() (7.x __rmem_cma_verify_node()): "
        'if (!of_get_flat_dt_prop(node, "reusable", NULL) || '
        'of_get_flat_dt_prop(node, "no-map", NULL)) refuse',
    ),
    Declaration(
        "dma",
        "shared-dma-pool",
        ("rmem_dma_setup", "rmem_dma_ops"),
        "kernel/dma/coherent.c:402 / 409 / 409",
        "CONFIG_DMA_DECLARE_COHERENT",
        refuses_with=("reusable",),
        rule='rmem_dma_setup(): if (of_get_flat_dt_prop(node, "reusable", NULL)) refuse',
    ),
    Declaration(
        "dma",
        "restricted-dma-pool",
        ("rmem_swiotlb_setup", "rmem_swiotlb_ops"),
        "kernel/dma/swiotlb.c:1128 / 1906 / 2097",
        "CONFIG_DMA_RESTRICTED_POOL",
        refuses_with=("reusable", "linux,cma-default", "linux,dma-default", "no-map"),
        rule="rmem_swiotlb_setup(): refuses reusable, linux,cma-default, linux,dma-default "
        "and no-map nodes",
    ),
    Declaration(
        "tegra210_emc_table",
        "nvidia,tegra210-emc-table",
        ("tegra210_emc_table_init", "tegra210_emc_table_ops"),
        "drivers/memory/tegra/tegra210-emc-table.c:89 / 87 / 88",
        "CONFIG_TEGRA210_EMC_TABLE",
    ),
    Declaration(
        "qman_fqd",
        "fsl,qman-fqd",
        ("qman_fqd",),
        "drivers/soc/fsl/qbman/qman_ccsr.c:480 (6.1 only)",
        "CONFIG_FSL_DPAA",
    ),
    Declaration(
        "qman_pfdr",
        "fsl,qman-pfdr",
        ("qman_pfdr",),
        "drivers/soc/fsl/qbman/qman_ccsr.c:491 (6.1 only)",
        "CONFIG_FSL_DPAA",
    ),
    Declaration(
        "bman_fbpr",
        "fsl,bman-fbpr",
        ("bman_fbpr",),
        "drivers/soc/fsl/qbman/bman_ccsr.c:156 (6.1 only)",
        "CONFIG_FSL_DPAA",
    ),
)

#: The generic DMA handlers: CMA (contiguous.c), coherent (coherent.c), restricted (swiotlb.c).
GENERIC_DECLARATIONS: tuple[Declaration, Declaration, Declaration] = (
    DECLARATIONS[0],
    DECLARATIONS[1],
    DECLARATIONS[2],
)


def parse_config(text: str) -> dict[str, str]:
    """A kernel .config: ``CONFIG_X=value`` lines (``# CONFIG_X is not set`` is absent)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v.strip().strip('"')
    return out


def identify(name: str | None, compatible: str | None, data: str | None) -> Declaration | None:
    """The declaration behind one table entry, from what is known of it: the entry's
    symbol name (``__of_table_<name>``), its compatible and what its data points at."""
    for d in DECLARATIONS:
        if data is not None and data in d.data:
            return d
    hits = [
        d
        for d in DECLARATIONS
        if (name is None or d.name == name) and (compatible is None or d.compatible == compatible)
    ]
    return hits[0] if len(hits) == 1 else None


def declarations_from_config(options: Mapping[str, str]) -> list[Declaration]:
    """The declarations a kernel built with the .config ``options`` (``CONFIG_X`` -> ``y``
    / ``m`` / ...) holds; nothing without CONFIG_OF_RESERVED_MEM (the table is empty:
    RESERVEDMEM_OF_TABLES() in include/asm-generic/vmlinux.lds.h)."""
    if options.get("CONFIG_OF_RESERVED_MEM") != "y":
        return []
    return [d for d in DECLARATIONS if options.get(d.config) == "y"]


@dataclass(frozen=True)
class HandlerGap:
    """A region no handler of this kernel accepts, although a kernel built with another
    option would."""

    compatible: str
    #: The declarations that would accept it and are not in this kernel.
    missing: tuple[Declaration, ...]
    #: The declarations in this kernel that match its compatible, with why each refuses.
    refused_by: tuple[tuple[Declaration, str], ...]

    @property
    def options(self) -> list[str]:
        return sorted({d.config for d in self.missing})

    def sentence(self) -> str:
        """What is missing and, when a handler of this kernel matched, why it refused."""
        built = " or ".join(f"{d.config} ({d.source.split(':')[0]})" for d in self.missing)
        out = f"this kernel has no {self.compatible} handler that accepts it: {built} is not set"
        if self.refused_by:
            out += "; " + "; ".join(
                f"the one it has, {d.source.split(':')[0]}, refuses it ({why})"
                for d, why in self.refused_by
            )
        return out

    def evidence(self) -> list[str]:
        return [
            f'RESERVEDMEM_OF_DECLARE({d.name}, "{d.compatible}", ...) at {d.source}, '
            f"built with {d.config}: not in this kernel's __reservedmem_of_table"
            for d in self.missing
        ] + [f"{d.source.split(':')[0]}: {d.rule}" for d, _why in self.refused_by]


def handler_gap(
    compatibles: Iterable[str], props: Iterable[str], present: Iterable[Declaration]
) -> HandlerGap | None:
    """Does this kernel lack the handler for a node? ``compatibles`` and ``props`` are the
    node's; ``present`` the declarations in the kernel's table. None when a present handler
    accepts the node, when no known declaration matches its compatible (drivers find such
    regions themselves, with of_reserved_mem_lookup()), or when every known handler would
    refuse it (a devicetree matter, not the kernel's configuration)."""
    have = set(present)
    props = list(props)
    gap = None
    for compat in compatibles:
        known = [d for d in DECLARATIONS if d.compatible == compat]
        accepting = [d for d in known if d.refusal(props) is None]
        if any(d in have for d in accepting):
            return None  # __reserved_mem_init_node() tries every matching entry
        if accepting and gap is None:
            refused = tuple((d, d.refusal(props) or "") for d in known if d in have)
            gap = HandlerGap(compat, tuple(accepting), refused)
    return gap
