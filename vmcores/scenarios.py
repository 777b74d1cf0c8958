# SPDX-License-Identifier: GPL-2.0-or-later
"""
Devicetree scenarios for the vmcore factory.

Each scenario is a set of ``/reserved-memory`` children (and optionally device
nodes that consume them through ``memory-region``), rendered as a DTS overlay
that is appended to QEMU's own ``virt`` devicetree (dumped with
``-M virt,dumpdtb=``) and compiled with dtc. The guest has 1 GiB of RAM at
0x40000000; QEMU loads the kernel at 0x40200000 and the initramfs and DTB at
0x48000000, so every fixed carveout here lives at or above 0x50000000 and every
``alloc-ranges`` window stays clear of the loader's images.

What each kernel series actually did with each scenario is recorded, from its
boot log, in ``vmcores/facts.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Consumer",
    "EXTRA_SCENARIOS",
    "Region",
    "SCENARIOS",
    "Scenario",
    "overlay_dts",
]

KiB = 1024
MiB = 1024 * KiB

#: /chosen/kaslr-seed used by every scenario, so that layouts are reproducible.
#: (QEMU's random rng-seed is deleted for the same reason.)
KASLR_SEED = (0x0, 0x5EED1234)


@dataclass(frozen=True)
class Region:
    """One child of /reserved-memory."""

    name: str
    #: ``reg`` entries (base, size); empty for a dynamic region.
    reg: tuple[tuple[int, int], ...] = ()
    #: ``size`` of a dynamic region.
    size: int | None = None
    alignment: int | None = None
    alloc_ranges: tuple[tuple[int, int], ...] = ()
    compatible: tuple[str, ...] = ()
    nomap: bool = False
    reusable: bool = False
    cma_default: bool = False
    status: str | None = None
    #: Extra properties rendered verbatim (``name = value``).
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def node_name(self) -> str:
        """The node name as the kernel sees it (``name@unit`` for fixed regions)."""
        if self.reg:
            return f"{self.name}@{self.reg[0][0]:x}"
        return self.name

    @property
    def label(self) -> str:
        return "rm_" + "".join(c if c.isalnum() else "_" for c in self.name)

    def dts(self) -> str:
        props: list[str] = []
        if self.compatible:
            props.append("compatible = " + ", ".join(f'"{c}"' for c in self.compatible) + ";")
        if self.reg:
            props.append("reg = " + ", ".join(_cells2(b, s) for b, s in self.reg) + ";")
        if self.size is not None:
            props.append(f"size = <{_hi(self.size)} {_lo(self.size)}>;")
        if self.alignment is not None:
            props.append(f"alignment = <{_hi(self.alignment)} {_lo(self.alignment)}>;")
        if self.alloc_ranges:
            props.append(
                "alloc-ranges = " + ", ".join(_cells2(b, s) for b, s in self.alloc_ranges) + ";"
            )
        if self.reusable:
            props.append("reusable;")
        if self.nomap:
            props.append("no-map;")
        if self.cma_default:
            props.append("linux,cma-default;")
        if self.status is not None:
            props.append(f'status = "{self.status}";')
        props.extend(f"{k} = {v};" for k, v in self.extra)
        body = "".join(f"\t\t\t{p}\n" for p in props)
        return f"\t\t{self.label}: {self.node_name} {{\n{body}\t\t}};\n"


@dataclass(frozen=True)
class Consumer:
    """A device node that points at carveouts through ``memory-region``."""

    name: str
    compatible: str
    regions: tuple[str, ...]
    region_names: tuple[str, ...] = ()

    def dts(self, by_name: dict[str, Region]) -> str:
        phandles = " ".join(f"&{by_name[r].label}" for r in self.regions)
        props = [
            f'compatible = "{self.compatible}";',
            f"memory-region = <{phandles}>;",
        ]
        if self.region_names:
            props.append(
                "memory-region-names = " + ", ".join(f'"{n}"' for n in self.region_names) + ";"
            )
        body = "".join(f"\t\t{p}\n" for p in props)
        return f"\t{self.name} {{\n{body}\t}};\n"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    regions: tuple[Region, ...] = ()
    consumers: tuple[Consumer, ...] = ()
    #: False: the DT has no /reserved-memory node at all.
    reserved_memory_node: bool = True
    tags: tuple[str, ...] = field(default=())


def _hi(v: int) -> str:
    return f"0x{v >> 32:x}"


def _lo(v: int) -> str:
    return f"0x{v & 0xFFFFFFFF:x}"


def _cells2(base: int, size: int) -> str:
    return f"<{_hi(base)} {_lo(base)} {_hi(size)} {_lo(size)}>"


def overlay_dts(scenario: Scenario) -> str:
    """DTS text that, appended to the decompiled virt DT, adds the scenario."""
    out = ["\n/* rmem_inspect vmcore factory scenario: " + scenario.name + " */\n", "/ {\n"]
    out.append("\tchosen {\n\t\t/delete-property/ rng-seed;\n")
    out.append(f"\t\tkaslr-seed = <{KASLR_SEED[0]:#x} {KASLR_SEED[1]:#x}>;\n\t}};\n")
    if scenario.reserved_memory_node:
        out.append("\treserved-memory {\n")
        out.append("\t\t#address-cells = <2>;\n\t\t#size-cells = <2>;\n\t\tranges;\n")
        out.extend(r.dts() for r in scenario.regions)
        out.append("\t};\n")
    by_name = {r.name: r for r in scenario.regions}
    out.extend(c.dts(by_name) for c in scenario.consumers)
    out.append("};\n")
    return "".join(out)


# --------------------------------------------------------------------------
# Building blocks


def _static(name: str, base: int, size: int, **kw: object) -> Region:
    return Region(name=name, reg=((base, size),), **kw)  # type: ignore[arg-type]


def _dynamic(name: str, size: int, **kw: object) -> Region:
    return Region(name=name, size=size, **kw)  # type: ignore[arg-type]


CMA_DEFAULT = _dynamic(
    "linux,cma",
    32 * MiB,
    compatible=("shared-dma-pool",),
    reusable=True,
    cma_default=True,
    alignment=4 * MiB,
)

#: The window dynamic pools are allocated from (kept above the loader's images).
POOL_WINDOW = (0x60000000, 0x10000000)


def _baseline() -> Scenario:
    return Scenario(
        name="baseline",
        description="a handful of healthy regions: fixed, dynamic with alloc-ranges and "
        "alignment, a no-map firmware region, a coherent shared-dma-pool, the default CMA pool",
        regions=(
            _static("firmware", 0x50000000, 2 * MiB, nomap=True),
            _static("vpu", 0x50400000, 4 * MiB),
            _static("coherent", 0x51000000, 1 * MiB, compatible=("shared-dma-pool",), nomap=True),
            _dynamic("dsp-pool", 8 * MiB, alignment=4 * MiB, alloc_ranges=(POOL_WINDOW,)),
            CMA_DEFAULT,
        ),
        consumers=(
            Consumer("vpu-consumer", "rmem-inspect,test-vpu", ("vpu",)),
            Consumer(
                "dsp-consumer",
                "rmem-inspect,test-dsp",
                ("dsp-pool", "coherent"),
                ("pool", "dma"),
            ),
        ),
        tags=("clean",),
    )


def _overflow_regions() -> tuple[Region, ...]:
    """A board-like layout of 69 regions: firmware, per-IP carveouts, pools, CMA last."""
    regions: list[Region] = []
    for i, fw in enumerate(("atf", "tee", "scp", "mcu")):
        regions.append(_static(f"fw-{fw}", 0x50000000 + i * MiB, 1 * MiB, nomap=True))
    base = 0x52000000
    step = 256 * KiB
    idx = 0
    for group in range(8):
        for _ in range(6):
            regions.append(_static(f"ip{idx}", base + idx * step, step))
            idx += 1
        regions.append(
            _dynamic(f"pool{group}", 1 * MiB, alignment=1 * MiB, alloc_ranges=(POOL_WINDOW,))
        )
    for _ in range(6):
        regions.append(_static(f"ip{idx}", base + idx * step, step))
        idx += 1
    for group in (8, 9):
        regions.append(
            _dynamic(f"pool{group}", 1 * MiB, alignment=1 * MiB, alloc_ranges=(POOL_WINDOW,))
        )
    regions.append(CMA_DEFAULT)
    return tuple(regions)


def _overflow() -> Scenario:
    return Scenario(
        name="overflow",
        description="board-like DT with 69 regions (4 no-map firmware, 54 fixed, 10 dynamic, "
        "CMA last): more than the 64 entries of the static reserved_mem array",
        regions=_overflow_regions(),
        consumers=(
            Consumer("isp-consumer", "rmem-inspect,test-isp", ("ip3",)),
            Consumer(
                "codec-consumer",
                "rmem-inspect,test-codec",
                ("pool9", "ip53"),
                ("frames", "firmware"),
            ),
        ),
    )


def _dynamic_limit() -> Scenario:
    return Scenario(
        name="dynamic-limit",
        description="70 dynamic regions: more than the 64 the early scan can collect",
        regions=tuple(
            _dynamic(f"dyn{i}", 256 * KiB, alignment=64 * KiB, alloc_ranges=(POOL_WINDOW,))
            for i in range(70)
        ),
    )


def _alloc_fail() -> Scenario:
    return Scenario(
        name="alloc-fail",
        description="a 64 MiB dynamic region whose alloc-ranges window is only 16 MiB",
        regions=(
            _static("vpu", 0x50400000, 4 * MiB),
            _dynamic("big-pool", 64 * MiB, alloc_ranges=((0x58000000, 16 * MiB),)),
            _dynamic("dsp-pool", 8 * MiB, alignment=4 * MiB, alloc_ranges=(POOL_WINDOW,)),
        ),
    )


def _nomap_conflict() -> Scenario:
    return Scenario(
        name="nomap-conflict",
        description="a no-map firmware region inside a range an earlier node already reserved",
        regions=(
            _static("vpu", 0x52000000, 4 * MiB),
            _static("fw-shared", 0x52100000, 1 * MiB, nomap=True),
            _static("firmware", 0x50000000, 2 * MiB, nomap=True),
        ),
    )


def _overlap() -> Scenario:
    return Scenario(
        name="overlap",
        description="two fixed regions that overlap by 2 MiB",
        regions=(
            _static("camera", 0x54000000, 4 * MiB),
            _static("display", 0x54200000, 4 * MiB),
            _static("audio", 0x55000000, 1 * MiB),
        ),
    )


def _disabled() -> Scenario:
    return Scenario(
        name="disabled",
        description='status = "disabled" fixed and dynamic regions next to healthy ones',
        regions=(
            _static("vpu", 0x50400000, 4 * MiB),
            _static("gpu-old", 0x51000000, 8 * MiB, status="disabled"),
            _dynamic(
                "old-pool",
                4 * MiB,
                alloc_ranges=(POOL_WINDOW,),
                status="disabled",
            ),
            _dynamic("dsp-pool", 8 * MiB, alignment=4 * MiB, alloc_ranges=(POOL_WINDOW,)),
            _static("modem", 0x53000000, 2 * MiB, status="okay"),
        ),
        tags=("clean",),
    )


def _multi_reg() -> Scenario:
    return Scenario(
        name="multi-reg",
        description="one node with three reg entries (the kernel tracks only the first)",
        regions=(
            Region(
                name="multi",
                reg=(
                    (0x55000000, 1 * MiB),
                    (0x55400000, 1 * MiB),
                    (0x55800000, 2 * MiB),
                ),
            ),
            _static("vpu", 0x50400000, 4 * MiB),
        ),
    )


def _no_reserved_memory() -> Scenario:
    return Scenario(
        name="no-reserved-memory",
        description="no /reserved-memory node at all",
        reserved_memory_node=False,
        tags=("clean",),
    )


def _consumers() -> Scenario:
    return Scenario(
        name="consumers",
        description="device nodes whose memory-region points at tracked, dropped and "
        "disabled regions",
        regions=(
            _static("vpu", 0x50400000, 4 * MiB),
            _dynamic("dsp-pool", 8 * MiB, alignment=4 * MiB, alloc_ranges=(POOL_WINDOW,)),
            _dynamic("missing-pool", 64 * MiB, alloc_ranges=((0x58000000, 16 * MiB),)),
            _static("old-fb", 0x51000000, 8 * MiB, status="disabled"),
            CMA_DEFAULT,
        ),
        consumers=(
            Consumer("video-consumer", "rmem-inspect,test-video", ("vpu",)),
            Consumer(
                "camera-consumer",
                "rmem-inspect,test-camera",
                ("dsp-pool", "missing-pool"),
                ("work", "frames"),
            ),
            Consumer("fb-consumer", "rmem-inspect,test-fb", ("old-fb",)),
        ),
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _baseline(),
        _overflow(),
        _dynamic_limit(),
        _alloc_fail(),
        _nomap_conflict(),
        _overlap(),
        _disabled(),
        _multi_reg(),
        _no_reserved_memory(),
        _consumers(),
    )
}


# --------------------------------------------------------------------------
# Extra scenarios: built on request only (``python -m vmcores.build -s NAME``), never part
# of the test matrix, which iterates SCENARIOS.

#: Fixed regions of the scale scenario, and how many sit side by side in one group.
SCALE_FIXED = 1000
SCALE_GROUP = 25
SCALE_DYNAMIC = 16


def _scale_1000() -> Scenario:
    """
    1,000 fixed 64 KiB regions in 40 groups of 25 adjacent regions, 1 MiB apart, plus 16
    dynamic pools. The early scan memblock_reserve()s the fixed regions before memblock may
    resize its arrays (128 entries): adjacent regions merge, so memblock.reserved gains only
    one entry per group and the boot does not panic ("cannot resize reserved array").
    """
    regions: list[Region] = []
    for i in range(SCALE_FIXED):
        group, slot = divmod(i, SCALE_GROUP)
        base = 0x50000000 + group * 4 * MiB + slot * 64 * KiB
        regions.append(_static(f"fixed{i}", base, 64 * KiB))
    regions.extend(
        _dynamic(f"dpool{i}", 256 * KiB, alignment=64 * KiB, alloc_ranges=(POOL_WINDOW,))
        for i in range(SCALE_DYNAMIC)
    )
    return Scenario(
        name="scale-1000",
        description=f"{SCALE_FIXED} fixed 64 KiB regions in groups of {SCALE_GROUP} at "
        f"0x50000000..0x5fffffff plus {SCALE_DYNAMIC} dynamic pools (benchmarks; not in the "
        "test matrix)",
        regions=tuple(regions),
        tags=("scale",),
    )


EXTRA_SCENARIOS: dict[str, Scenario] = {s.name: s for s in (_scale_1000(),)}
