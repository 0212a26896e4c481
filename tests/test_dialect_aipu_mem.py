"""The aipu and mem dialects: Python-built IR round-trips through text, and every verifier rule."""

from __future__ import annotations

import io
import re

import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, IndexType, ModuleOp, i8, i32
from xdsl.dialects.test import Test
from xdsl.ir import Attribute, Block, Operation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import IsTerminator
from xdsl.utils.exceptions import VerifyException

from aipuc.dialects import aipu, mem
from aipuc.dialects.aipu import DmaEngine, DwpuMode
from aipuc.hardware import MemorySpace, Unit

L1, L2, DDR = MemorySpace.L1, MemorySpace.L2, MemorySpace.DDR


def make_context() -> Context:
    ctx = Context()
    for dialect in (Builtin, Test, mem.Mem, aipu.Aipu):
        ctx.load_dialect(dialect)
    return ctx


def parse(text: str) -> ModuleOp:
    return Parser(make_context(), text).parse_module()


def generic(op: Operation) -> str:
    stream = io.StringIO()
    Printer(stream=stream, print_generic_format=True).print_op(op)
    return stream.getvalue()


def put(block: Block, *ops: Operation) -> None:
    """Appends ops to a block, before its terminator if it has one."""
    for op in ops:
        last = block.last_op
        if last is not None and last.has_trait(IsTerminator):
            block.insert_op_before(op, last)
        else:
            block.add_op(op)


# ---------------------------------------------------------------------------- round trips


def build_program() -> ModuleOp:
    """One core's stream that uses every op of both dialects, built with the Python API."""
    nhwc = mem.BufferType([1, 56, 56, 64], i8, L1)
    pools = [
        mem.PoolOp("ddr", DDR, 1 << 30, page_size=65536),
        mem.PoolOp("l2", L2, 32 << 20),
        mem.PoolOp("l1_core0", L1, 4 << 20, core=0),
    ]
    w_ddr = mem.BufferOp("ddr", mem.BufferType([512, 64], i8, DDR), offset=4096)
    x_ddr = mem.BufferOp("ddr", mem.BufferType([1, 56, 56, 64], i8, DDR))
    x_l2 = mem.BufferOp("l2", mem.BufferType([1, 56, 56, 64], i8, L2))
    lut = mem.BufferOp("l2", mem.BufferType([256], i8, L2))
    w = mem.BufferOp("l1_core0", mem.BufferType([512, 64], i8, L1), offset=0)
    dw = mem.BufferOp("l1_core0", mem.BufferType([3, 3, 64], i8, L1))
    rq = mem.BufferOp("l1_core0", mem.BufferType([64, 3], i32, L1), alignment=256)
    x = mem.BufferOp("l1_core0", nhwc, size=nhwc.nbytes + 64)
    y = mem.BufferOp("l1_core0", nhwc)
    p = mem.BufferOp("l1_core0", mem.BufferType([1, 56, 56, 64], i32, L1))
    buffers = [w_ddr, x_ddr, x_l2, lut, w, dw, rq, x, y, p]

    core = aipu.CoreOp(0)
    t0 = aipu.DmaOp(DmaEngine.SYSTEM, x_ddr, x_l2)
    t1 = aipu.DmaOp(DmaEngine.CORE, x_l2, x, deps=[t0])
    t2 = aipu.DmaOp(DmaEngine.CORE, w_ddr, w, channel=1)
    t3 = aipu.ImcLoadOp(w, 2, deps=[t2])
    put(core.body.block, t0, t1, t2, t3)

    loop = aipu.TileLoopOp(0, 14)
    inner = aipu.TileLoopOp(1, 3)
    i, j = loop.iv, inner.iv
    tile_in = mem.ViewOp(x, [0, 0, 0, 0], [1, 4, 56, 64], steps={i: [0, 4, 0, 0]})
    tile_out = mem.ViewOp(y, [0, 0, 0, 0], [1, 4, 56, 64], steps={i: [0, 4, 0, 0]})
    tile_p = mem.ViewOp(p, [0, 0, 0, 0], [1, 4, 56, 64], steps={i: [0, 4, 0, 0]})
    m0 = aipu.MvmOp(tile_in, tile_p, weightset=2, k=32, n=64, deps=[t1, t3])
    m1 = aipu.MvmOp(tile_in, tile_out, weightset=3, k=32, n=64, acc=tile_p, requant=rq, deps=[m0])
    signal = aipu.TokenSignalOp(Unit.MVM, 5, [m1])
    wait = aipu.TokenWaitOp(Unit.DPU, 5)
    a = aipu.DpuLoadOp(tile_out)
    b = aipu.DpuMulOp(a, a)
    c = aipu.DpuAddOp(b, a)
    e = aipu.DpuLutOp(c, lut)
    q = aipu.DpuRequantOp(e, 0.25, -3)
    dpu = aipu.DpuOp([a, b, c, e, q, aipu.DpuStoreOp(q, tile_out)], deps=[wait])
    put(loop.body.block, tile_in, tile_out, tile_p, m0, m1, signal, wait, dpu, inner)
    # Two induction variables, a negative coefficient and a strided window.
    window = mem.ViewOp(
        x,
        [0, 1, 52, 0],
        [1, 2, 4, 32],
        strides=[1, 2, 1, 1],
        steps={i: [0, 2, 0, 0], j: [0, 0, -4, 16]},
    )
    put(inner.body.block, window)
    put(core.body.block, loop)

    halo = mem.ViewOp(x, [0, 0, 0, 0], [1, 6, 56, 64])
    o32 = mem.ViewOp(y, [0, 0, 0, 0], [1, 4, 56, 32])
    o64 = mem.ViewOp(y, [0, 0, 0, 0], [1, 4, 56, 64])
    pooled = mem.ViewOp(y, [0, 0, 0, 0], [1, 2, 28, 64])
    conv = aipu.MvmOp(
        halo, o32, weightset=0, k=512, n=32, icr=2, kernel=[3, 3], pads=[0, 1, 0, 1], requant=rq
    )
    dconv = aipu.DwpuOp(
        DwpuMode.CONV, halo, o64, kernel=[3, 3], pads=[0, 1, 0, 1], weights=dw, requant=rq
    )
    pool = aipu.DwpuOp(DwpuMode.MAX, o64, pooled, kernel=[2, 2], stride=[2, 2], deps=[dconv])
    put(core.body.block, halo, o32, o64, pooled, conv, dconv, pool)
    return ModuleOp(
        [*pools, *buffers, core, aipu.CoreOp(2, [aipu.TileLoopOp(0, 2)]), aipu.CoreOp(3)]
    )


def test_round_trip_every_op():
    module = build_program()
    module.verify()
    ops = {type(op) for op in module.walk()}
    assert set(mem.Mem.operations) | set(aipu.Aipu.operations) <= ops

    text = str(module)
    parsed = parse(text)
    parsed.verify()
    assert str(parsed) == text
    assert parsed.is_structurally_equivalent(module)

    from_generic = parse(generic(module))
    assert str(from_generic) == text
    assert from_generic.is_structurally_equivalent(module)


def test_printed_forms():
    text = str(build_program())
    for line in (
        "mem.pool @l1_core0 global.l1 core 0 capacity 4194304",
        "mem.pool @ddr global.ddr capacity 1073741824 page 65536",
        "mem.buffer @l1_core0 size 200768 align 64 : !mem.buffer<1x56x56x64xi8, global.l1>",
        "aipu.tile_loop %14 = 0 to 14 {",
        "mem.view %7[0, 4 * %14, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1>"
        " -> !mem.view<1x4x56x64xi8, global.l1>",
        "[0, 2 * %14 + 1, -4 * %27 + 52, 16 * %27] strides [1, 2, 1, 1]",
        "aipu.token_signal mvm 5 after",
        "aipu.token_wait dpu 5",
        "aipu.dpu.requant %25 scale 2.500000e-01 zero_point -3",
        "weightset 0 k 512 n 32 icr 2 kernel [3, 3] pads [0, 1, 0, 1]",
        "aipu.dwpu max ins(",
        "kernel [2, 2] stride [2, 2] after",
        "aipu.core 3 {\n  }",
    ):
        assert line in text, line


@pytest.mark.parametrize(
    "attr",
    [
        mem.MemorySpaceAttr(L2),
        aipu.UnitKindAttr(Unit.DWPU),
        aipu.DwpuModeAttr(DwpuMode.AVG),
        aipu.DmaEngineAttr(DmaEngine.SYSTEM),
        aipu.TokenType(),
        aipu.VRegType(),
        mem.BufferType([1, 2, 3, 64], i32, DDR),
        mem.ViewType([256], i8, L1),
    ],
)
def test_attribute_round_trip(attr: Attribute):
    assert Parser(make_context(), str(attr)).parse_attribute() == attr


def test_typed_enums_print_readably():
    assert str(mem.MemorySpaceAttr(L1)) == "#mem<space global.l1>"
    assert str(aipu.UnitKindAttr(Unit.MVM)) == "#aipu<unit mvm>"
    assert str(mem.BufferType([4, 64], i8, L2)) == "!mem.buffer<4x64xi8, global.l2>"


def test_view_bounds_follow_the_loop_range():
    """A view is checked at the first and last iteration of the loops that move it."""
    loop = aipu.TileLoopOp(0, 14)
    buffer = mem.BufferOp("l1", mem.BufferType([1, 56, 56, 64], i8, L1))
    view = mem.ViewOp(buffer, [0, 0, 0, 0], [1, 4, 56, 64], steps={loop.iv: [0, 4, 0, 0]})
    put(loop.body.block, view)
    module = ModuleOp([mem.PoolOp("l1", L1, 1 << 20, core=0), buffer, aipu.CoreOp(0, [loop])])
    module.verify()
    loop.ub = aipu._i64(15)
    with pytest.raises(VerifyException, match="elements 0..59 of a buffer of size 56"):
        module.verify()


# ---------------------------------------------------------------------------- verifier rules

PRELUDE = """
!b8 = !mem.buffer<1x4x8x64xi8, global.l1>
!b32 = !mem.buffer<1x4x8x64xi32, global.l1>
!w = !mem.buffer<64x64xi8, global.l1>
!rq = !mem.buffer<64x3xi32, global.l1>
!b8l2 = !mem.buffer<1x4x8x64xi8, global.l2>
!b8ddr = !mem.buffer<1x4x8x64xi8, global.ddr>
!lut = !mem.buffer<256xi8, global.l1>
mem.pool @ddr global.ddr capacity 1048576
mem.pool @l2 global.l2 capacity 1048576
mem.pool @l1 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1 size 2048 align 64 : !b8
%y = mem.buffer @l1 size 2048 align 64 : !b8
%y32 = mem.buffer @l1 size 8192 align 64 : !b32
%w = mem.buffer @l1 size 4096 align 64 : !w
%rq = mem.buffer @l1 size 768 align 64 : !rq
%x2 = mem.buffer @l2 size 2048 align 64 : !b8l2
%xd = mem.buffer @ddr size 2048 align 64 : !b8ddr
%lut = mem.buffer @l1 size 256 align 64 : !lut
"""

MVM = "%t = aipu.mvm ins(%x : !b8) outs(%y : !b8) requant(%rq : !rq) weightset 0 k 64 n 64"
DPU = "%t = aipu.dpu {{\n{}\n}}"
LOAD_STORE = "%a = aipu.dpu.load %x : !b8\naipu.dpu.store %a, %y : !b8"


def core(*lines: str, index: int = 0) -> str:
    return f"aipu.core {index} {{\n" + "\n".join(lines) + "\n}"


def dpu(*lines: str) -> str:
    return core(DPU.format("\n".join(lines)))


VALID = [
    core(MVM),
    core("%t = aipu.imc_load ins(%w : !w) weightset 3"),
    core("%t = aipu.dwpu avg ins(%x : !b8) outs(%y : !b8) kernel [3, 3] pads [1, 1, 1, 1]"),
    core("%t = aipu.dma core ins(%y : !b8) outs(%xd : !b8ddr) channel 1"),
    core("%t = aipu.dma system ins(%xd : !b8ddr) outs(%x2 : !b8l2)"),
    core("%go = aipu.token_wait dpu 31", DPU.format(LOAD_STORE).replace("{", "after %go {")),
    "%c = mem.buffer @l1 size 64 align 64 : !mem.buffer<1x1x1x64xi8, global.l1>\n"
    + dpu(
        "%a = aipu.dpu.load %c : !mem.buffer<1x1x1x64xi8, global.l1>",
        "%b = aipu.dpu.load %x : !b8",
        "%s = aipu.dpu.add %a, %b",
        "aipu.dpu.store %s, %y : !b8",
    ),
    core(
        "aipu.tile_loop %i = 0 to 2 {",
        "%v = mem.view %x[0, 2 * %i, 0, 0] : !b8 -> !mem.view<1x2x8x64xi8, global.l1>",
        "}",
    ),
]


@pytest.mark.parametrize("snippet", VALID)
def test_valid_snippets_verify(snippet: str):
    parse(PRELUDE + snippet).verify()


VIEW = "%v = mem.view %x[{}] : !b8 -> !mem.view<{}, global.l1>"
LOOP = "aipu.tile_loop %i = {} {{\n{}\n}}"

INVALID = {
    # mem.pool
    "l1 pool without core": ("mem.pool @p global.l1 capacity 64", "give `core` for L1 only"),
    "l2 pool with core": ("mem.pool @p global.l2 core 0 capacity 64", "give `core` for L1 only"),
    "pool core": ("mem.pool @p global.l1 core 4 capacity 64", "core 4 out of range"),
    "pool capacity": ("mem.pool @p global.l2 capacity 0", "capacity must be positive"),
    "page size": ("mem.pool @p global.l2 capacity 64 page 128", "page size must be in 1..capacity"),
    # mem.buffer
    "buffer size": ("%b = mem.buffer @l1 size 2047 align 64 : !b8", "smaller than the 2048 bytes"),
    "alignment": ("%b = mem.buffer @l1 size 2048 align 48 : !b8", "power of two, got 48"),
    "offset alignment": (
        "%b = mem.buffer @l1 size 2048 align 64 offset 96 : !b8",
        "offset 96 is not a multiple of alignment 64",
    ),
    "negative offset": (
        "%b = mem.buffer @l1 size 2048 align 64 offset -64 : !b8",
        "offset -64 is not a multiple",
    ),
    "unknown pool": (
        "%b = mem.buffer @nowhere size 2048 align 64 : !b8",
        "does not name a mem.pool",
    ),
    "pool space": ("%b = mem.buffer @l2 size 2048 align 64 : !b8", "but pool @l2 is global.l2"),
    "pool overflow": (
        "%b = mem.buffer @l1 size 2048 align 64 offset 1047552 : !b8",
        "overflows pool @l1 of 1048576 bytes",
    ),
    # mem.view
    "view rank": (VIEW.format("0, 0, 0, 0", "4x64xi8"), "needs 4 offsets, sizes and strides"),
    "view coefficients": (
        '%v = "mem.view"(%x) <{static_offsets = array<i64: 0, 0, 0, 0>, coefficients = '
        "array<i64: 1>, strides = array<i64: 1, 1, 1, 1>}> : (!b8) -> "
        "!mem.view<1x4x8x64xi8, global.l1>",
        "expected 0 coefficients",
    ),
    "view element type": (VIEW.format("0, 0, 0, 0", "1x4x8x16xi32"), "element type and memory"),
    "view space": (
        "%v = mem.view %x[0, 0, 0, 0] : !b8 -> !mem.view<1x4x8x64xi8, global.l2>",
        "element type and memory space",
    ),
    "view stride": (
        "%v = mem.view %x[0, 0, 0, 0] strides [1, 0, 1, 1] : !b8 -> "
        "!mem.view<1x4x8x64xi8, global.l1>",
        "strides must be positive",
    ),
    "view repeated iv": (
        core(
            LOOP.format(
                "0 to 2",
                '%v = "mem.view"(%x, %i, %i) <{static_offsets = array<i64: 0, 0, 0, 0>, '
                "coefficients = array<i64: 0, 1, 0, 0, 0, 1, 0, 0>, strides = array<i64: 1, 1, 1, "
                "1>}> : (!b8, index, index) -> !mem.view<1x2x8x64xi8, global.l1>",
            )
        ),
        "each induction variable appears once",
    ),
    "view unused iv": (
        core(
            LOOP.format(
                "0 to 2",
                '%v = "mem.view"(%x, %i) <{static_offsets = array<i64: 0, 0, 0, 0>, '
                "coefficients = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1, 1, 1>}> : "
                "(!b8, index) -> !mem.view<1x2x8x64xi8, global.l1>",
            )
        ),
        "every induction variable needs a nonzero coefficient",
    ),
    "view static bounds": (VIEW.format("0, 1, 0, 0", "1x4x8x64xi8"), "elements 1..4 of a buffer"),
    "view strided bounds": (
        "%v = mem.view %x[0, 0, 0, 0] strides [1, 2, 1, 1] : !b8 -> "
        "!mem.view<1x3x8x64xi8, global.l1>",
        "elements 0..4 of a buffer of size 4",
    ),
    "view loop upper bound": (
        core(LOOP.format("0 to 3", VIEW.format("0, 2 * %i, 0, 0", "1x2x8x64xi8"))),
        "elements 0..5 of a buffer of size 4",
    ),
    "view loop lower bound": (
        core(LOOP.format("0 to 2", VIEW.format("0, 2 * %i - 1, 0, 0", "1x2x8x64xi8"))),
        "elements -1..2",
    ),
    # aipu.core
    "core index": (core(index=4), "core 4 out of range"),
    "core nesting": (core(core()), "aipu.core regions do not nest"),
    "core foreign l1": (
        "mem.pool @l1c1 global.l1 core 1 capacity 4096\n"
        "%b = mem.buffer @l1c1 size 4096 align 64 : !w\n"
        + core("%t = aipu.imc_load ins(%b : !w) weightset 0"),
        "core 0 uses a buffer in @l1c1, the L1 of core 1",
    ),
    # aipu.tile_loop
    "loop empty": (core(LOOP.format("2 to 2", "")), "needs 0 <= lb < ub, got 2 to 2"),
    "loop negative": (core(LOOP.format("-1 to 2", "")), "needs 0 <= lb < ub, got -1 to 2"),
    "loop arguments": (
        core(
            '"aipu.tile_loop"() <{lb = 0 : i64, ub = 2 : i64}> ({\n'
            "^bb0(%i: index, %j: index):\n"
            '"aipu.yield"() : () -> ()\n'
            "}) : () -> ()"
        ),
        "takes exactly one index argument",
    ),
    # aipu.imc_load
    "imc weightset": (core("%t = aipu.imc_load ins(%w : !w) weightset 4"), "weightset 4 out of"),
    "imc l1": (
        core("%t = aipu.imc_load ins(%x2 : !b8l2) weightset 0"),
        "weights must be in global.l1",
    ),
    "imc element": (
        core("%t = aipu.imc_load ins(%rq : !rq) weightset 0"),
        "weights must have i8 elements",
    ),
    "imc size": (
        "%big = mem.buffer @l1 size 36864 align 64 : !mem.buffer<576x64xi8, global.l1>\n"
        + core("%t = aipu.imc_load ins(%big : !mem.buffer<576x64xi8, global.l1>) weightset 0"),
        "36864 weights exceed one weightset of 32768",
    ),
    "imc deps unit": (
        core(
            "%go = aipu.token_wait dma 0", "%t = aipu.imc_load ins(%w : !w) weightset 0 after %go"
        ),
        "aipu.imc_load runs on mvm but waits on a token_wait of dma",
    ),
    # aipu.mvm
    "mvm weightset": (core(MVM.replace("weightset 0", "weightset 9")), "weightset 9 out of"),
    "mvm k zero": (core(MVM.replace("k 64", "k 0")), "K chunk 0 out of range 1..512"),
    "mvm k large": (core(MVM.replace("k 64", "k 513")), "K chunk 513 out of range"),
    "mvm n": (core(MVM.replace("n 64", "n 65")), "N chunk 65 out of range 1..64"),
    "mvm icr": (core(MVM + " icr 2"), "ICR factor 2 with N 64 does not fit"),
    "mvm kernel rank": (core(MVM + " kernel [3]"), "expected kernel [kh, kw]"),
    "mvm pads": (core(MVM + " pads [0, -1, 0, 1]"), "pads non-negative"),
    "mvm rank": (
        core("%t = aipu.mvm ins(%w : !w) outs(%w : !w) requant(%rq : !rq) weightset 0 k 64 n 64"),
        "must be NHWC (rank 4)",
    ),
    "mvm batch": (
        "%x2b = mem.buffer @l1 size 4096 align 64 : !mem.buffer<2x4x8x64xi8, global.l1>\n"
        + core(MVM.replace("%x : !b8", "%x2b : !mem.buffer<2x4x8x64xi8, global.l1>")),
        "batch 2 in but 1 out",
    ),
    "mvm height": (core(MVM + " kernel [3, 3]"), "output height 4 does not match input height 4"),
    "mvm width": (core(MVM + " kernel [1, 3]"), "output width 8 does not match input width 8"),
    "mvm n vs output": (core(MVM.replace("n 64", "n 32")), "output has 64 channels, N chunk is 32"),
    "mvm k vs depth": (
        core(MVM.replace("k 64", "k 65")),
        "K chunk 65 exceeds kernel area x input channels 64",
    ),
    "mvm l1": (core(MVM.replace("%x : !b8", "%x2 : !b8l2")), "input must be in global.l1"),
    "mvm input element": (
        core(MVM.replace("ins(%x : !b8)", "ins(%y32 : !b32)")),
        "input must have i8 elements",
    ),
    "mvm raw output": (
        core("%t = aipu.mvm ins(%x : !b8) outs(%y : !b8) weightset 0 k 64 n 64"),
        "output must have i32 elements",
    ),
    "mvm requant output": (
        core(MVM.replace("outs(%y : !b8)", "outs(%y32 : !b32)")),
        "output must have i8 elements",
    ),
    "mvm acc element": (
        core(MVM.replace("requant(", "acc(%x : !b8) requant(")),
        "acc must have i32 elements",
    ),
    "mvm acc shape": (
        "%a = mem.buffer @l1 size 4096 align 64 : !mem.buffer<1x2x8x64xi32, global.l1>\n"
        + core(MVM.replace("requant(", "acc(%a : !mem.buffer<1x2x8x64xi32, global.l1>) requant(")),
        "acc must have the shape of the output",
    ),
    "mvm requant element": (
        core(MVM.replace("requant(%rq : !rq)", "requant(%w : !w)")),
        "requant must have i32 elements",
    ),
    "mvm deps unit": (
        core("%go = aipu.token_wait dpu 0", MVM + " after %go"),
        "aipu.mvm runs on mvm but waits on a token_wait of dpu",
    ),
    # aipu.dwpu
    "dwpu conv without weights": (
        core("%t = aipu.dwpu conv ins(%x : !b8) outs(%y : !b8) kernel [1, 1]"),
        "weights are given in conv mode, and only there",
    ),
    "dwpu pool with weights": (
        core("%t = aipu.dwpu max ins(%x : !b8) outs(%y : !b8) weights(%w : !w) kernel [1, 1]"),
        "weights are given in conv mode, and only there",
    ),
    "dwpu window": (
        core("%t = aipu.dwpu max ins(%x : !b8) outs(%y : !b8) kernel [1, 1] stride [0, 1]"),
        "kernel and stride must be positive",
    ),
    "dwpu channels": (
        "%z = mem.buffer @l1 size 1024 align 64 : !mem.buffer<1x4x8x32xi8, global.l1>\n"
        + core(
            "%t = aipu.dwpu max ins(%x : !b8) outs(%z : !mem.buffer<1x4x8x32xi8, global.l1>) "
            "kernel [1, 1]"
        ),
        "depthwise: 64 channels in, 32 out",
    ),
    "dwpu l1": (
        core("%t = aipu.dwpu max ins(%x : !b8) outs(%x2 : !b8l2) kernel [1, 1]"),
        "output must be in global.l1",
    ),
    "dwpu element": (
        core("%t = aipu.dwpu max ins(%y32 : !b32) outs(%y : !b8) kernel [1, 1]"),
        "input must have i8 elements",
    ),
    "dwpu weights element": (
        core("%t = aipu.dwpu conv ins(%x : !b8) outs(%y : !b8) weights(%rq : !rq) kernel [1, 1]"),
        "weights must have i8 elements",
    ),
    "dwpu requant element": (
        core("%t = aipu.dwpu avg ins(%x : !b8) outs(%y : !b8) requant(%w : !w) kernel [1, 1]"),
        "requant must have i32 elements",
    ),
    "dwpu deps unit": (
        core(
            "%go = aipu.token_wait mvm 0",
            "%t = aipu.dwpu max ins(%x : !b8) outs(%y : !b8) kernel [1, 1] after %go",
        ),
        "aipu.dwpu runs on dwpu but waits on a token_wait of mvm",
    ),
    # aipu.dma
    "dma like to like": (
        core("%t = aipu.dma core ins(%x : !b8) outs(%y32 : !b32)"),
        "DMA copies like to like",
    ),
    "dma core without l1": (
        core("%t = aipu.dma core ins(%xd : !b8ddr) outs(%x2 : !b8l2)"),
        "the core DMA moves data to or from the core's L1",
    ),
    "dma system with l1": (
        core("%t = aipu.dma system ins(%x2 : !b8l2) outs(%x : !b8)"),
        "the system DMA moves data between DDR and L2, not L1",
    ),
    "dma channel": (
        core("%t = aipu.dma core ins(%x2 : !b8l2) outs(%x : !b8) channel 2"),
        "DMA channel 2 out of range 0..1",
    ),
    "dma deps unit": (
        core(
            "%go = aipu.token_wait dpu 1",
            "%t = aipu.dma core ins(%x2 : !b8l2) outs(%x : !b8) after %go",
        ),
        "aipu.dma runs on dma but waits on a token_wait of dpu",
    ),
    # aipu.token_signal / aipu.token_wait
    "signal id": (core("aipu.token_signal dma 32"), "token 32 out of range 0..31"),
    "signal unit": (
        core(MVM, "aipu.token_signal dpu 0 after %t"),
        "dpu cannot signal completion of a mvm task",
    ),
    "wait id": (core("%t = aipu.token_wait dma -1"), "token -1 out of range"),
    # aipu.dpu.*
    "dpu store l1": (
        dpu("%a = aipu.dpu.load %x : !b8", "aipu.dpu.store %a, %x2 : !b8l2"),
        "DPU store destination must be in global.l1",
    ),
    "dpu lut shape": (
        dpu(
            "%a = aipu.dpu.load %x : !b8",
            "%b = aipu.dpu.lut %a, %w : !w",
            "aipu.dpu.store %b, %y : !b8",
        ),
        "a LUT has 256 entries, got shape [64, 64]",
    ),
    "dpu requant scale": (
        dpu(
            "%a = aipu.dpu.load %x : !b8",
            "%b = aipu.dpu.requant %a scale 0.0 zero_point 0",
            "aipu.dpu.store %b, %y : !b8",
        ),
        "scale must be positive and finite",
    ),
    "dpu requant zero point": (
        dpu(
            "%a = aipu.dpu.load %x : !b8",
            "%b = aipu.dpu.requant %a scale 1.0 zero_point -129",
            "aipu.dpu.store %b, %y : !b8",
        ),
        "zero point -129 out of int8 range",
    ),
    # aipu.dpu
    "dpu stray op": (
        dpu(LOAD_STORE, VIEW.format("0, 0, 0, 0", "1x4x8x64xi8")),
        "a DPU program holds only aipu.dpu.* micro-ops, got ['mem.view']",
    ),
    "dpu without store": (dpu("%a = aipu.dpu.load %x : !b8"), "stores at least one tile"),
    "dpu store shapes": (
        dpu(LOAD_STORE, "aipu.dpu.store %a, %w : !w"),
        "all tiles a DPU program stores have one shape",
    ),
    "dpu load broadcast": (
        dpu("%a = aipu.dpu.load %w : !w", "aipu.dpu.store %a, %y : !b8"),
        "loaded tile [64, 64] does not broadcast to [1, 4, 8, 64]",
    ),
    "dpu deps unit": (
        core("%go = aipu.token_wait mvm 0", DPU.format(LOAD_STORE).replace("{", "after %go {")),
        "aipu.dpu runs on dpu but waits on a token_wait of mvm",
    ),
}


@pytest.mark.parametrize("snippet, message", INVALID.values(), ids=INVALID.keys())
def test_verifier_rejects(snippet: str, message: str):
    module = parse(PRELUDE + snippet)
    with pytest.raises(VerifyException, match=re.escape(message)):
        module.verify()


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: mem.BufferType([1, 0, 4], i8, L1), "static shape of positive sizes"),
        (lambda: mem.ViewType([], i8, L1), "static shape of positive sizes"),
        (lambda: mem.BufferType([4], IndexType(), L1), "element_type"),
    ],
)
def test_memory_types_reject(build, message: str):
    with pytest.raises(VerifyException, match=message):
        build()


def test_unknown_memory_space_is_a_parse_error():
    with pytest.raises(Exception, match="Expected `global.ddr`, `global.l2`, or `global.l1`"):
        parse('%x = "test.op"() : () -> !mem.buffer<64xi8, global.l3>')
