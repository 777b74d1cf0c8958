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
    "memreserve_dts",
    "overlay_dts",
]

KiB = 1024
MiB = 1024 * KiB

#: /chosen/kaslr-seed used by every scenario but ``kaslr``, so that layouts are
#: reproducible. (QEMU's random rng-seed is deleted for the same reason.)
KASLR_SEED = (0x0, 0x5EED1234)
#: Where QEMU's virt machine puts RAM.
RAM_BASE = 0x40000000
GiB = 1024 * MiB
#: Guest RAM of every scenario that does not say otherwise (QEMU -m).
DEFAULT_MEMORY = 1 * GiB


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

    def dts(self, cells: tuple[int, int] = (2, 2)) -> str:
        """The node, with ``cells`` = (#address-cells, #size-cells) of its parent."""
        ac, sc = cells
        props: list[str] = []
        if self.compatible:
            props.append("compatible = " + ", ".join(f'"{c}"' for c in self.compatible) + ";")
        if self.reg:
            props.append("reg = " + ", ".join(_pair(b, s, ac, sc) for b, s in self.reg) + ";")
        if self.size is not None:
            props.append(f"size = <{_cells(self.size, sc)}>;")
        if self.alignment is not None:
            props.append(f"alignment = <{_cells(self.alignment, sc)}>;")
        if self.alloc_ranges:
            props.append(
                "alloc-ranges = "
                + ", ".join(_pair(b, s, ac, sc) for b, s in self.alloc_ranges)
                + ";"
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
    #: Guest RAM (QEMU ``-m``), always at 0x40000000 on ``virt``; the DT's memory
    #: node is rewritten to match, so that preflight sees what the kernel saw.
    memory: int = DEFAULT_MEMORY
    #: Extra kernel command line (``mem=``, ``crashkernel=``, ``cma=``).
    append: str = ""
    #: /chosen/linux,usable-memory-range: how a board gives the kernel several
    #: banks under QEMU 7.2, which replaces the DT's memory nodes with one node
    #: (drivers/of/fdt.c early_init_dt_check_for_usable_mem_range(): the first
    #: range caps memory, the second is added; at most two).
    usable_memory: tuple[tuple[int, int], ...] = ()
    #: #address-cells and #size-cells written into /reserved-memory (the root's
    #: are 2 and 2 on virt); the kernel rejects the node when they differ.
    rmem_cells: tuple[int, int] = (2, 2)
    #: /chosen/kaslr-seed.
    kaslr_seed: tuple[int, int] = KASLR_SEED
    #: /memreserve/ entries of the FDT header (base, size).
    memreserve: tuple[tuple[int, int], ...] = ()


def _cells(v: int, n: int) -> str:
    """``v`` as ``n`` 32-bit cells (dtc truncates nothing: a value too large is a bug)."""
    if v >> (32 * n):
        raise ValueError(f"{v:#x} does not fit in {n} cells")
    return " ".join(f"0x{(v >> (32 * i)) & 0xFFFFFFFF:x}" for i in reversed(range(n)))


def _pair(base: int, size: int, ac: int = 2, sc: int = 2) -> str:
    return f"<{_cells(base, ac)} {_cells(size, sc)}>"


def memreserve_dts(scenario: Scenario) -> str:
    """``/memreserve/`` lines: they must stand before the root node, after /dts-v1/."""
    return "".join(f"/memreserve/ {b:#x} {s:#x};\n" for b, s in scenario.memreserve)


def overlay_dts(scenario: Scenario) -> str:
    """DTS text that, appended to the decompiled virt DT, adds the scenario."""
    out = ["\n/* rmem_inspect vmcore factory scenario: " + scenario.name + " */\n", "/ {\n"]
    out.append("\tchosen {\n\t\t/delete-property/ rng-seed;\n")
    seed = scenario.kaslr_seed
    out.append(f"\t\tkaslr-seed = <{seed[0]:#x} {seed[1]:#x}>;\n")
    if scenario.usable_memory:
        ranges = ", ".join(_pair(b, s) for b, s in scenario.usable_memory)
        out.append(f"\t\tlinux,usable-memory-range = {ranges};\n")
    out.append("\t};\n")
    if scenario.memory != DEFAULT_MEMORY:
        # QEMU rewrites the memory node at boot; the DTB says the same for preflight
        out.append(f"\tmemory@40000000 {{\n\t\treg = {_pair(RAM_BASE, scenario.memory)};\n\t}};\n")
    if scenario.reserved_memory_node:
        ac, sc = scenario.rmem_cells
        out.append("\treserved-memory {\n")
        out.append(f"\t\t#address-cells = <{ac}>;\n\t\t#size-cells = <{sc}>;\n\t\tranges;\n")
        out.extend(r.dts(scenario.rmem_cells) for r in scenario.regions)
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


# --------------------------------------------------------------------------
# Real-board situations: memory that is not all RAM, command lines, cells, KASLR,
# and the reservations a boot makes beside reserved_mem.


def _nomap_outside_ram() -> Scenario:
    return Scenario(
        name="nomap-outside-ram",
        description="no-map firmware in SRAM below RAM and a no-map region straddling the "
        "start of RAM: the kernel accepts no-map ranges that are not memory on purpose",
        regions=(
            _static("sram-fw", 0x0E000000, 1 * MiB, nomap=True),
            _static("boot-fw", 0x3FF00000, 2 * MiB, nomap=True),
            _static("vpu", 0x50400000, 4 * MiB),
            _dynamic("dsp-pool", 8 * MiB, alignment=4 * MiB, alloc_ranges=(POOL_WINDOW,)),
        ),
        tags=("clean", "board"),
    )


#: The two banks of the ``banks`` scenario, with a 128 MiB hole between them.
BANKS = ((0x40000000, 512 * MiB), (0x68000000, 384 * MiB))


def _banks() -> Scenario:
    return Scenario(
        name="banks",
        description="two memory banks with a hole between them (linux,usable-memory-range): "
        "no-map and plain carveouts in the hole, pools and CMA in the second bank",
        regions=(
            _static("vpu", 0x50400000, 4 * MiB),
            _static("hole-fw", 0x62000000, 2 * MiB, nomap=True),
            _static("hole-buf", 0x64000000, 1 * MiB),
            _static("bank2-fw", 0x70000000, 2 * MiB, nomap=True),
            _dynamic(
                "dsp-pool", 8 * MiB, alignment=4 * MiB, alloc_ranges=((0x68000000, 128 * MiB),)
            ),
            CMA_DEFAULT,
        ),
        usable_memory=BANKS,
        tags=("clean", "board"),
    )


def _mem_limit() -> Scenario:
    return Scenario(
        name="mem-limit",
        description="mem=768M from the boot loader: a no-map and a plain carveout above the "
        "limit (kept as the kernel decides) and a pool whose window lies above it (fails)",
        regions=(
            _static("vpu", 0x50400000, 4 * MiB),
            _dynamic("dsp-pool", 8 * MiB, alignment=4 * MiB, alloc_ranges=(POOL_WINDOW,)),
            _static("modem-fw", 0x78000000, 2 * MiB, nomap=True),
            _static("ramlog", 0x7A000000, 1 * MiB),
            _dynamic("hi-pool", 8 * MiB, alloc_ranges=((0x74000000, 128 * MiB),)),
        ),
        append="mem=768M",
        tags=("board",),
    )


def _rmem_cells() -> Scenario:
    return Scenario(
        name="rmem-cells",
        description="/reserved-memory with #address-cells/#size-cells 1 under a root with 2: "
        "the kernel rejects the whole node",
        regions=(
            _static("fw", 0x50000000, 2 * MiB, nomap=True),
            _static("vpu", 0x50400000, 4 * MiB),
            _dynamic("dsp-pool", 8 * MiB, alignment=4 * MiB, alloc_ranges=(POOL_WINDOW,)),
        ),
        consumers=(Consumer("vpu-consumer", "rmem-inspect,test-vpu", ("vpu",)),),
        rmem_cells=(1, 1),
        tags=("board",),
    )


def _highmem() -> Scenario:
    return Scenario(
        name="highmem",
        description="4 GiB of RAM: fixed, no-map and dynamic carveouts above 4 GiB, CMA at "
        "the top of RAM",
        regions=(
            _static("vpu", 0x50400000, 4 * MiB),
            _static("hi-carveout", 0x110000000, 16 * MiB),
            _static("hi-fw", 0x120000000, 2 * MiB, nomap=True),
            _dynamic(
                "hi-pool", 32 * MiB, alignment=2 * MiB, alloc_ranges=((0x100000000, 1 * GiB),)
            ),
            CMA_DEFAULT,
        ),
        consumers=(Consumer("hi-consumer", "rmem-inspect,test-hi", ("hi-pool",)),),
        memory=4 * GiB,
        tags=("clean", "board"),
    )


#: The ``kaslr`` scenario's seed (every other scenario boots with KASLR_SEED).
KASLR_OTHER_SEED = (0x1234ABCD, 0x87654321)


def _kaslr() -> Scenario:
    base = _baseline()
    return Scenario(
        name="kaslr",
        description="the baseline board booted with another /chosen/kaslr-seed: the kernel "
        "image (and on 6.1/6.12 the linear map) moves, the verdicts must not",
        regions=base.regions,
        consumers=base.consumers,
        kaslr_seed=KASLR_OTHER_SEED,
        tags=("clean", "board"),
    )


#: /memreserve/ entries of the ``memreserve`` scenario.
MEMRESERVE = ((0x5F000000, 1 * MiB), (0x5F800000, 1 * MiB))


def _memreserve() -> Scenario:
    return Scenario(
        name="memreserve",
        description="/memreserve/ entries (one also described as a no-map region), "
        "crashkernel= and cma= on the command line: reservations beside reserved_mem",
        regions=(
            _static("spl-log", 0x5F000000, 1 * MiB, nomap=True),
            _static("vpu", 0x50400000, 4 * MiB),
            _dynamic("dsp-pool", 8 * MiB, alignment=4 * MiB, alloc_ranges=(POOL_WINDOW,)),
        ),
        memreserve=MEMRESERVE,
        append="crashkernel=64M cma=16M",
        tags=("board",),
    )


def _cma_cmdline() -> Scenario:
    base = _baseline()
    return Scenario(
        name="cma-cmdline",
        description="the baseline board with cma=16M from the boot loader: 6.1/6.12 keep the "
        "DT's linux,cma-default pool and ignore cma=, 7.x skips the DT pool in favour of cma=",
        regions=base.regions,
        consumers=base.consumers,
        append="cma=16M",
        tags=("board",),
    )


def _mt8192() -> Scenario:
    """
    The /reserved-memory of MediaTek's mt8192 Chromebooks, verbatim from
    arch/arm64/boot/dts/mediatek/mt8192-asurada.dtsi (Debian linux-source-7.3, 7.3.4; the
    6.1 and 6.12 sources lack audio-dma-pool). Its RAM starts at 0x40000000 as virt's does,
    so nothing moves; the boot loader gives the board more than the DTS's 2 GiB, so the
    guest gets 3 GiB and wifi@c0000000 lies in RAM. Debian's kernels are built without
    CONFIG_DMA_RESTRICTED_POOL: no handler for the restricted-dma-pool region.
    """
    return Scenario(
        name="mt8192",
        description="mt8192-asurada's /reserved-memory (a no-map dynamic and a no-map fixed "
        "shared-dma-pool, a restricted-dma-pool for the wifi) on 3 GiB",
        regions=(
            _dynamic(
                "audio-dma-pool",
                0x100000,
                alignment=0x10,
                compatible=("shared-dma-pool",),
                nomap=True,
            ),
            _static("scp", 0x50000000, 0x2900000, compatible=("shared-dma-pool",), nomap=True),
            _static("wifi", 0xC0000000, 0x4000000, compatible=("restricted-dma-pool",)),
        ),
        memory=3 * GiB,
        tags=("board",),
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
        _nomap_outside_ram(),
        _banks(),
        _mem_limit(),
        _rmem_cells(),
        _highmem(),
        _kaslr(),
        _memreserve(),
        _cma_cmdline(),
        _mt8192(),
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
