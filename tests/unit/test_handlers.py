# SPDX-License-Identifier: GPL-2.0-or-later
"""The reserved-memory handler table: the kernel sources' declarations, the pure .config
and vmlinux readers, and the gap between a node and the handlers a kernel has."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem_inspect.formats.elf import ElfError
from rmem_inspect.formats.of_table import open_table_image
from rmem_inspect.kernel.handlers import (
    GENERIC_DECLARATIONS,
    declarations_from_config,
    handler_gap,
    identify,
    parse_config,
)
from tests.unit.test_golden import load

pytestmark = pytest.mark.unit

CMA, COHERENT, RESTRICTED = GENERIC_DECLARATIONS


def test_debian_table_is_identified() -> None:
    # read from the vmlinux files of Debian's 6.1, 6.12 and 7.3 (goldens)
    for series, data in (
        ("6.1", "rmem_cma_setup"),
        ("6.12", "rmem_cma_setup"),
        ("7.x", "rmem_cma_ops"),
    ):
        k = load(series, "baseline").kernel
        assert k.rmem_handlers is not None
        found = [identify(h.name, h.compatible, h.data) for h in k.rmem_handlers]
        assert found == [CMA, COHERENT]
        assert k.rmem_handlers[0].data == data


def test_restricted_pool_without_its_option() -> None:
    gap = handler_gap(["restricted-dma-pool"], [], [CMA, COHERENT])
    assert gap is not None and gap.options == ["CONFIG_DMA_RESTRICTED_POOL"]
    assert not gap.refused_by
    assert handler_gap(["restricted-dma-pool"], [], [CMA, COHERENT, RESTRICTED]) is None


def test_reusable_pool_without_cma_is_refused_by_coherent() -> None:
    # kernel/dma/coherent.c refuses reusable nodes: the same mechanism explains a
    # kernel without CONFIG_DMA_CMA (Debian riscv64)
    gap = handler_gap(["shared-dma-pool"], ["reusable"], [COHERENT])
    assert gap is not None and gap.options == ["CONFIG_DMA_CMA"]
    assert [(d, why) for d, why in gap.refused_by] == [(COHERENT, "reusable")]
    assert "kernel/dma/coherent.c" in gap.sentence()
    # a non-reusable pool is the coherent handler's: nothing missing
    assert handler_gap(["shared-dma-pool"], ["no-map"], [COHERENT]) is None
    # reusable + no-map: every handler refuses it, a devicetree matter
    assert handler_gap(["shared-dma-pool"], ["reusable", "no-map"], []) is None
    # vendor compatibles are found by their drivers, not the table
    assert handler_gap(["mediatek,scp"], [], []) is None


def test_config() -> None:
    text = (
        "CONFIG_OF_RESERVED_MEM=y\nCONFIG_DMA_DECLARE_COHERENT=y\n"
        "# CONFIG_DMA_RESTRICTED_POOL is not set\nCONFIG_DMA_CMA=y\n"
    )
    assert declarations_from_config(parse_config(text)) == [CMA, COHERENT]
    assert declarations_from_config(parse_config(text.replace("OF_RESERVED_MEM=y", "X=y"))) == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_elf_image_never_crashes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    p = tmp_path_factory.mktemp("elf") / "vmlinux"
    p.write_bytes(b"\x7fELF\x02\x01" + data)
    try:
        open_table_image(str(p))
    except ElfError:
        pass
