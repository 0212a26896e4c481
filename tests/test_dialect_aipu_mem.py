"""The aipu and mem dialects: Python-built IR round-trips through text, and every verifier rule."""

from __future__ import annotations

import io
import re

import pytest
from xdsl.context import Context
from xdsl.dialects import test as xdsl_test
from xdsl.dialects.builtin import (
    Builtin,
    DenseIntOrFPElementsAttr,
    IndexType,
    ModuleOp,
    TensorType,
    i8,
    i32,
)
from xdsl.ir import Attribute, Block, Operation, Region
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import IsTerminator
from xdsl.utils.exceptions import VerifyException

from aipuc.dialects import aipu, mem
from aipuc.dialects.aipu import DmaEngine, DwpuMode
from aipuc.hardware import AIPU, MemorySpace, Unit

L1, L2, DDR = MemorySpace.L1, MemorySpace.L2, MemorySpace.DDR


def make_context() -> Context:
    ctx = Context()
    for dialect in (Builtin, xdsl_test.Test, mem.Mem, aipu.Aipu):
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


def dense(shape: list[int], element, values) -> DenseIntOrFPElementsAttr:
    return DenseIntOrFPElementsAttr.from_list(TensorType(element, shape), values)


def dpu_program(source, bias, table, lut, exp_table, dest) -> list[Operation]:
    """Every DPU micro-op once, in one dataflow chain."""
    a = aipu.DpuLoadOp(source)
    b = aipu.DpuLoadOp(bias)
    ops: list[Operation] = [a, b]

    def then(op: Operation) -> Operation:
        ops.append(op)
        return op

    x = then(aipu.DpuAddImmOp(a, -3))
    x = then(aipu.DpuShiftLeftOp(x, 4))
    x = then(aipu.DpuAddOp(x, b))
    x = then(aipu.DpuSubOp(x, a))
    x = then(aipu.DpuMulOp(x, a))
    x = then(aipu.DpuMaxOp(x, a))
    x = then(aipu.DpuMinOp(x, b))
    x = then(aipu.DpuRescaleOp(x, 1 << 30, 31))
    x = then(aipu.DpuRequantOp(x, 1 << 30, 31, -3))
    x = then(aipu.DpuRequantTableOp(x, table))
    x = then(aipu.DpuLutOp(x, lut))
    x = then(aipu.DpuClampOp(x, -100, 100))
    x = then(aipu.DpuSelectOp(a, x, b))
    x = then(aipu.DpuIntToFloatOp(x))
    half = then(aipu.DpuFloatConstantOp(0.5))
    x = then(aipu.DpuFloatAddOp(x, half))
    x = then(aipu.DpuFloatMulOp(x, half))
    x = then(aipu.DpuFloatNegOp(x))
    x = then(aipu.DpuFloatReciprocalOp(x))
    x = then(aipu.DpuFloatRsqrtOp(x))
    x = then(aipu.DpuFloatMulOp(x, then(aipu.DpuFloatVectorOp(exp_table))))
    x = then(aipu.DpuRowMaxOp(x))
    x = then(aipu.DpuRowSumOp(x))
    x = then(aipu.DpuExpLutOp(x, exp_table))
    x = then(aipu.DpuFloatToIntOp(x, -128))
    then(aipu.DpuStoreOp(x, dest))
    return ops


def build_tasks() -> tuple[list[Operation], aipu.SegmentOp]:
    """Pools, buffers and one segment whose core uses every task op, with every option."""
    nhwc = mem.BufferType([1, 8, 8, 64], i8, L1)
    pools: list[Operation] = [
        mem.PoolOp("ddr", DDR, 1 << 20, page_size=AIPU.page_bytes, address=AIPU.ddr_address),
        mem.PoolOp("l2", L2, 1 << 20, address=AIPU.l2_address),
        mem.PoolOp("l1_core0", L1, 1 << 20, core=0),
    ]

    def buffer(pool: str, shape, element, space, **kwargs) -> mem.BufferOp:
        return mem.BufferOp(pool, mem.BufferType(shape, element, space), **kwargs)

    x_ddr = buffer("ddr", [1, 8, 8, 64], i8, DDR)
    out_ddr = buffer("ddr", [1, 8, 8, 64], i8, DDR, offset=8192)
    w_ddr = buffer("ddr", [64, 64], i8, DDR, offset=4096)
    rq_ddr = buffer("ddr", [2, 4], i32, DDR, init=dense([2, 4], i32, [5, 1 << 30, 31, -3] * 2))
    prog = buffer("ddr", [1024], i8, DDR)
    x_l2 = buffer("l2", [1, 8, 8, 64], i8, L2)
    w = buffer("l1_core0", [64, 64], i8, L1, offset=0)
    dw = buffer("l1_core0", [3, 3, 64], i8, L1)
    rq = buffer("l1_core0", [2, 4], i32, L1, alignment=256)
    dw_table = buffer("l1_core0", [64, 5], i32, L1)
    avg_table = buffer("l1_core0", [10, 1, 5], i32, L1)
    global_table = buffer("l1_core0", [1, 5], i32, L1)
    x = mem.BufferOp("l1_core0", nhwc, size=nhwc.nbytes + 64)
    y = mem.BufferOp("l1_core0", nhwc)
    bias = buffer("l1_core0", [1, 1, 1, 64], i32, L1)
    sums = buffer("l1_core0", [1, 8, 8, 2], i32, L1)
    narrow = buffer("l1_core0", [1, 8, 8, 2], i8, L1)
    pooled = buffer("l1_core0", [1, 1, 1, 64], i8, L1)
    table = buffer("l1_core0", [64, 3], i32, L1)
    lut = buffer("l1_core0", [256], i8, L1)
    exp_table = buffer("l1_core0", [256], i32, L1)
    flat = mem.ReinterpretOp(out_ddr, mem.BufferType([1, 4096], i8, DDR))
    buffers = [x_ddr, out_ddr, w_ddr, rq_ddr, prog, x_l2, w, dw, rq, dw_table, avg_table]
    buffers += [global_table, x, y, bias, sums, narrow, pooled, table, lut, exp_table, flat]

    core = aipu.CoreOp(0)
    t0 = aipu.DmaOp(DmaEngine.SYSTEM, x_ddr, x_l2)
    t1 = aipu.DmaOp(DmaEngine.CORE, x_l2, x, deps=[t0])
    t2 = aipu.DmaOp(DmaEngine.CORE, w_ddr, w, channel=1)
    t3 = aipu.ImcLoadOp(w, 2, deps=[t2])
    t4 = aipu.DmaOp(DmaEngine.CORE, rq_ddr, rq)
    fill = aipu.FillOp(y, -3, deps=[t4])
    put(core.body.block, t0, t1, t2, t3, t4, fill)

    # Height tiles of two rows: a 1x1 conv in two K chunks, then a DPU program on the tile.
    loop = aipu.TileLoopOp(0, 4)
    inner = aipu.TileLoopOp(1, 3)
    i, j = loop.iv, inner.iv
    rows = {i: [0, 2, 0, 0]}
    tile_in = mem.ViewOp(x, [0, 0, 0, 0], [1, 2, 8, 64], steps=rows)
    tile_out = mem.ViewOp(y, [0, 0, 0, 0], [1, 2, 8, 64], steps=rows)
    tile_sums = mem.ViewOp(sums, [0, 0, 0, 0], [1, 2, 8, 2], steps=rows)
    tile_narrow = mem.ViewOp(narrow, [0, 0, 0, 0], [1, 2, 8, 2], steps=rows)
    chunk = {"weightset": 2, "k": 32, "n": 2, "in_c": 64, "icr": 4}
    m0 = aipu.MvmOp(tile_in, tile_sums, **chunk, deps=[t1, t3])
    m1 = aipu.MvmOp(
        tile_in,
        tile_narrow,
        **chunk,
        k_start=32,
        in_zp=-3,
        w_zp=1,
        acc=tile_sums,
        requant=rq,
        deps=[m0],
    )
    signal = aipu.TokenSignalOp(Unit.MVM, 5, [m1])
    wait = aipu.TokenWaitOp(Unit.DPU, 5)
    dpu = aipu.DpuOp(
        dpu_program(tile_in, bias, table, lut, exp_table, tile_out), deps=[wait], program=prog
    )
    put(loop.body.block, tile_in, tile_out, tile_sums, tile_narrow, m0, m1, signal, wait, dpu)
    # Two induction variables, a negative coefficient and a strided window.
    window = mem.ViewOp(
        x,
        [0, 1, 6, 0],
        [1, 2, 2, 32],
        strides=[1, 2, 1, 1],
        steps={i: [0, 1, 0, 0], j: [0, 0, -2, 16]},
    )
    put(inner.body.block, window)
    put(loop.body.block, inner)
    put(core.body.block, loop)

    # Whole-tensor tasks: swICR and dilated/strided MVM, every DWPU mode, a strided DMA.
    quarter = mem.ViewOp(narrow, [0, 0, 0, 0], [1, 4, 4, 2])
    half = mem.ViewOp(y, [0, 0, 0, 0], [1, 4, 4, 64])
    conv = aipu.MvmOp(
        x, narrow, weightset=0, k=27, n=2, in_c=3, swicr=True, kernel=[3, 3], pads=[1] * 4,
        requant=rq,
    )  # fmt: skip
    dilated = aipu.MvmOp(
        x, quarter, weightset=1, k=64, n=2, in_c=64, kernel=[3, 3], stride=[2, 2],
        dilation=[2, 2], pads=[2] * 4, requant=rq,
    )  # fmt: skip
    dconv = aipu.DwpuOp(
        DwpuMode.CONV, x, y, kernel=[3, 3], pads=[1] * 4, per_channel=True, weights=dw,
        requant=dw_table,
    )  # fmt: skip
    avg = aipu.DwpuOp(
        DwpuMode.AVG, y, half, kernel=[3, 3], stride=[2, 2], pads=[1, 1, 0, 0], extra=[1, 1],
        count_include_pad=True, requant=avg_table, deps=[dconv],
    )  # fmt: skip
    peak = aipu.DwpuOp(DwpuMode.MAX, y, half, kernel=[2, 2], stride=[2, 2], dilation=[1, 1])
    mean = aipu.DwpuOp(DwpuMode.GLOBAL_AVG, y, pooled, requant=global_table)
    top = aipu.DwpuOp(DwpuMode.GLOBAL_MAX, y, pooled, deps=[mean])
    transpose = aipu.DmaOp(
        DmaEngine.CORE, x_ddr, y, pattern=([8, 8], [512, 64], [64, 512]), offsets=(0, 5)
    )
    out = aipu.DmaOp(DmaEngine.CORE, y, out_ddr, deps=[top, transpose])
    put(core.body.block, quarter, half, conv, dilated, dconv, avg, peak, mean, top)
    put(core.body.block, transpose, out)

    segment = aipu.SegmentOp(0, [x_ddr], [flat], [[0, 2, 3, 1]], [[0, 1]], Region(Block([core])))
    return pools + buffers, segment


def build_layers() -> list[Operation]:
    """Every layer op on device tensors, between to_device and from_device, and a launch."""
    host_in = xdsl_test.TestOp(result_types=[TensorType(i8, [1, 64, 8, 8])])
    device = aipu.ToDeviceOp(host_in.res[0], [0, 2, 3, 1], TensorType(i8, [1, 8, 8, 64]))
    weights = aipu.ConstOp(dense([576, 16], i8, [1] * 576 * 16))
    table = aipu.ConstOp(dense([16, 4], i32, [0, 1 << 30, 31, 0] * 16))
    conv = aipu.ConvLayerOp(
        device.result, weights.result, table.result, TensorType(i8, [1, 8, 8, 16]),
        in_c=64, k_chunk=256, w_zp=2, in_zp=-1, kernel=(3, 3), pads=(1, 1, 1, 1),
    )  # fmt: skip
    conv.home = mem.MemorySpaceAttr(L2)
    conv.tiles = aipu._array((2, 1))
    conv.dfs_group = aipu._i64(0)
    dw_weights = aipu.ConstOp(dense([3, 3, 16], i8, [1] * 144))
    dw_table = aipu.ConstOp(dense([16, 5], i32, [0, 1 << 30, 31, 0, 0] * 16))
    dconv = aipu.PoolLayerOp(
        DwpuMode.CONV, conv.result, TensorType(i8, [1, 8, 8, 16]), weights=dw_weights.result,
        table=dw_table.result, kernel=(3, 3), dilation=(2, 2), pads=(2, 2, 2, 2),
        per_channel=True,
    )  # fmt: skip
    peak = aipu.PoolLayerOp(
        DwpuMode.MAX, dconv.result, TensorType(i8, [1, 4, 4, 16]), kernel=(2, 2), stride=(2, 2)
    )
    avg_table = aipu.ConstOp(dense([5, 1, 5], i32, [0, 1 << 30, 31, 0, 0] * 5))
    avg = aipu.PoolLayerOp(
        DwpuMode.AVG, peak.result, TensorType(i8, [1, 2, 2, 16]), table=avg_table.result,
        kernel=(2, 2), stride=(2, 2), extra=(1, 1), count_include_pad=True,
    )  # fmt: skip
    mean_table = aipu.ConstOp(dense([1, 5], i32, [0, 1 << 30, 31, 0, 0]))
    mean = aipu.PoolLayerOp(
        DwpuMode.GLOBAL_AVG, avg.result, TensorType(i8, [1, 1, 1, 16]), table=mean_table.result
    )
    top = aipu.PoolLayerOp(DwpuMode.GLOBAL_MAX, avg.result, TensorType(i8, [1, 1, 1, 16]))
    lut = aipu.ConstOp(dense([256], i8, list(range(-128, 128))))
    rows = aipu.ConstOp(dense([16, 3], i32, [1 << 30, 31, 0] * 16))
    body = Block(arg_types=[aipu.VRegType(), aipu.VRegType()])
    summed = aipu.DpuAddOp(*body.args)
    scaled = aipu.DpuRequantTableOp(summed, rows.result)
    mapped = aipu.DpuLutOp(scaled, lut.result)
    body.add_ops([summed, scaled, mapped, aipu.DpuYieldOp(mapped)])
    elt = aipu.EltwiseOp([mean.result, top.result], TensorType(i8, [1, 1, 1, 16]), Region(body))
    both = aipu.MoveLayerOp(
        [elt.result, top.result],
        TensorType(i8, [1, 1, 1, 48]),
        [(0, 0, 0, (16,), (1,), (1,)), (1, 0, 16, (2, 8), (8, 1), (1, 2))],
        fill=-128,
    )
    flat = aipu.ReinterpretOp(both.result, TensorType(i8, [1, 48]))
    host_out = aipu.FromDeviceOp(flat.result, [0, 1], TensorType(i8, [1, 48]))
    launch = aipu.LaunchOp(0, [host_in.res[0]], [TensorType(i8, [1, 48])])
    return [
        host_in, device, weights, table, conv, dw_weights, dw_table, dconv, peak, avg_table,
        avg, mean_table, mean, top, lut, rows, elt, both, flat, host_out, launch,
    ]  # fmt: skip


def build_program() -> ModuleOp:
    """A module that uses every op of both dialects, built with the Python API."""
    memory, segment = build_tasks()
    spare = [aipu.CoreOp(2, [aipu.TileLoopOp(0, 2)]), aipu.CoreOp(3)]
    return ModuleOp([*memory, segment, *spare, *build_layers()])


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
        "mem.pool @l1_core0 global.l1 core 0 capacity 1048576\n",
        "mem.pool @ddr global.ddr capacity 1048576 page 65536 at 4294967296",
        "mem.buffer @l1_core0 size 4160 align 64 : !mem.buffer<1x8x8x64xi8, global.l1>",
        "init dense<[[5, 1073741824, 31, -3], [5, 1073741824, 31, -3]]> : tensor<2x4xi32> :",
        "mem.reinterpret %1 : !mem.buffer<1x8x8x64xi8, global.ddr> -> "
        "!mem.buffer<1x4096xi8, global.ddr>",
        "aipu.segment 0 ins(%0 : !mem.buffer<1x8x8x64xi8, global.ddr>) outs(%21 : "
        "!mem.buffer<1x4096xi8, global.ddr>) attributes {input_perms = array<i64: 0, 2, 3, 1>, "
        "output_perms = array<i64: 0, 1>} {",
        "aipu.tile_loop %28 = 0 to 4 {",
        "mem.view %12[0, 2 * %28, 0, 0] : !mem.buffer<1x8x8x64xi8, global.l1>"
        " -> !mem.view<1x2x8x64xi8, global.l1>",
        "[0, %28 + 1, -2 * %65 + 6, 16 * %65] strides [1, 2, 1, 1]",
        "aipu.fill %13 : !mem.buffer<1x8x8x64xi8, global.l1> value -3 after %26",
        "{weightset = 2 : i64, k = 32 : i64, n = 2 : i64, in_c = 64 : i64, k_start = 32 : i64, "
        "icr = 4 : i64, in_zp = -3 : i64, w_zp = 1 : i64}",
        "in_c = 3 : i64, swicr = true, kernel = array<i64: 3, 3>",
        "dilation = array<i64: 2, 2>, pads = array<i64: 2, 2, 2, 2>}",
        "aipu.token_signal mvm 5 after",
        "aipu.token_wait dpu 5",
        "aipu.dpu program(%4 : !mem.buffer<1024xi8, global.ddr>) after %35 {",
        "aipu.dpu.requant %46 multiplier 1073741824 shift 31 zero_point -3",
        "aipu.dpu.ftoi %63 zero_point -128",
        "aipu.dwpu global_max ins(",
        "extra = array<i64: 1, 1>, count_include_pad = true}",
        "{sizes = array<i64: 8, 8>, src_strides = array<i64: 512, 64>, "
        "dst_strides = array<i64: 64, 512>, offsets = array<i64: 0, 5>}",
        "aipu.core 3 {\n  }",
        "home = #mem<space global.l2>, tiles = array<i64: 2, 1>, dfs_group = 0 : i64}",
        "aipu.pool avg %87 : tensor<1x4x4x16xi8> table %88 : tensor<5x1x5xi32>",
        "aipu.move(%95, %92) {copies = array<i64: 0, 1, 0, 0, 16, 1, 1, 1, 2, 0, 16, 2, 8, 8, 1, "
        "1, 2>, fill = -128 : i64}",
        "aipu.launch 0(%79) : (tensor<1x64x8x8xi8>) -> tensor<1x48xi8>",
    ):
        assert line in text, line


def test_op_helpers_read_back_what_was_built():
    module = build_program()
    dmas = [op for op in module.walk() if isinstance(op, aipu.DmaOp)]
    assert dmas[0].pattern() is None and dmas[0].pattern_offsets() == (0, 0)
    transpose = next(op for op in dmas if op.pattern() is not None)
    assert transpose.pattern() == ((8, 8), (512, 64), (64, 512))
    assert transpose.pattern_offsets() == (0, 5)
    move = next(op for op in module.walk() if isinstance(op, aipu.MoveLayerOp))
    assert move.copy_list() == [(0, 0, 0, (16,), (1,), (1,)), (1, 0, 16, (2, 8), (8, 1), (1, 2))]
    segment = next(op for op in module.walk() if isinstance(op, aipu.SegmentOp))
    assert segment.perms("inputs") == [(0, 2, 3, 1)] and segment.perms("outputs") == [(0, 1)]
    output = segment.outputs[0]
    assert mem.root_buffer(output).buffer_type.get_shape() == (1, 8, 8, 64)
    loops = [op for op in module.walk() if isinstance(op, aipu.TileLoopOp)]
    assert [loop.trip_count for loop in loops] == [4, 2, 2]
    conv = next(op for op in module.walk() if isinstance(op, aipu.ConvLayerOp))
    assert conv.out_channels == 16 and conv.tile_counts() == (2, 1)
    pools = [op for op in module.walk() if isinstance(op, aipu.PoolLayerOp)]
    assert [p.is_global for p in pools] == [False, False, False, True, True]
    assert pools[0].tile_counts() == (1, 1)


@pytest.mark.parametrize(
    "attr",
    [
        mem.MemorySpaceAttr(L2),
        aipu.UnitKindAttr(Unit.DWPU),
        aipu.DwpuModeAttr(DwpuMode.GLOBAL_AVG),
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
    assert str(aipu.DwpuModeAttr(DwpuMode.GLOBAL_MAX)) == "#aipu<dwpu_mode global_max>"
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
!rq = !mem.buffer<64x4xi32, global.l1>
!dt = !mem.buffer<64x5xi32, global.l1>
!b8l2 = !mem.buffer<1x4x8x64xi8, global.l2>
!b8ddr = !mem.buffer<1x4x8x64xi8, global.ddr>
!lut = !mem.buffer<256xi8, global.l1>
!g = !mem.buffer<1x1x1x64xi8, global.l1>
mem.pool @ddr global.ddr capacity 1048576
mem.pool @l2 global.l2 capacity 1048576
mem.pool @l1 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1 size 2048 align 64 : !b8
%y = mem.buffer @l1 size 2048 align 64 : !b8
%y32 = mem.buffer @l1 size 8192 align 64 : !b32
%w = mem.buffer @l1 size 4096 align 64 : !w
%rq = mem.buffer @l1 size 1024 align 64 : !rq
%dt = mem.buffer @l1 size 1280 align 64 : !dt
%x2 = mem.buffer @l2 size 2048 align 64 : !b8l2
%xd = mem.buffer @ddr size 2048 align 64 : !b8ddr
%lut = mem.buffer @l1 size 256 align 64 : !lut
%g = mem.buffer @l1 size 64 align 64 : !g
%a8 = "test.op"() : () -> tensor<1x4x8x64xi8>
%wt = "test.op"() : () -> tensor<64x64xi8>
%tab = "test.op"() : () -> tensor<64x4xi32>
%logical = "test.op"() : () -> tensor<1x64x4x8xi8>
"""


def attr_dict(props: dict) -> str:
    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return f"{v} : i64"
        return f"array<i64: {', '.join(str(x) for x in v)}>"

    return "{" + ", ".join(f"{k} = {value(v)}" for k, v in props.items()) + "}" if props else ""


def mvm(
    ins: str = "%x : !b8",
    outs: str = "%y : !b8",
    more: str = "requant(%rq : !rq)",
    after: str = "",
    **props,
) -> str:
    props = {"weightset": 0, "k": 64, "n": 64, "in_c": 64} | props
    return f"%t = aipu.mvm ins({ins}) outs({outs}) {more} {after} {attr_dict(props)}"


def dwpu(
    mode: str,
    ins: str = "%x : !b8",
    outs: str = "%y : !b8",
    more: str = "",
    after: str = "",
    **props,
) -> str:
    return f"%t = aipu.dwpu {mode} ins({ins}) outs({outs}) {more} {after} {attr_dict(props)}"


def dma(engine: str, ins: str, outs: str, after: str = "", **props) -> str:
    return f"%t = aipu.dma {engine} ins({ins}) outs({outs}) {after} {attr_dict(props)}"


DPU = "%t = aipu.dpu {{\n{}\n}}"
LOAD_STORE = "%a = aipu.dpu.load %x : !b8\naipu.dpu.store %a, %y : !b8"


def core(*lines: str, index: int = 0) -> str:
    return f"aipu.core {index} {{\n" + "\n".join(lines) + "\n}"


def dpu(*lines: str) -> str:
    return core(DPU.format("\n".join(lines)))


def micro(*lines: str) -> str:
    """A DPU program: load %x, the given micro-ops from %a to %b, store %b into %y."""
    return dpu("%a = aipu.dpu.load %x : !b8", *lines, "aipu.dpu.store %b, %y : !b8")


T8 = "tensor<1x4x8x64xi8>"
CONV_LAYER = (
    "%r = aipu.conv %a8, %wt, %tab {{in_c = 64 : i64{}}} : "
    f"({T8}, tensor<64x64xi8>, tensor<64x4xi32>) -> {{}}"
)


def eltwise(inputs: str, types: str, result: str, *body: str) -> str:
    return f"%r = aipu.eltwise({inputs}) : ({types}) -> {result} {{\n" + "\n".join(body) + "\n}"


def move(copies: list[int], result: str = T8) -> str:
    flat = ", ".join(str(c) for c in copies)
    return f"%r = aipu.move(%a8) {{copies = array<i64: {flat}>}} : ({T8}) -> {result}"


VALID = [
    core(mvm()),
    core(mvm(more="", outs="%y32 : !b32")),
    core(mvm(k=27, in_c=3, swicr=True, kernel=[3, 3], pads=[1, 1, 1, 1])),
    core("%t = aipu.imc_load ins(%w : !w) weightset 3"),
    core(dwpu("avg", more="requant(%dt : !dt)", kernel=[3, 3], pads=[1, 1, 1, 1])),
    core(dwpu("max", kernel=[3, 7], stride=[3, 3], pads=[0, 0, 1, 1], outs="%g : !g")),
    core(dwpu("global_max", outs="%g : !g")),
    core(dma("core", "%y : !b8", "%xd : !b8ddr", channel=1)),
    core(dma("system", "%xd : !b8ddr", "%x2 : !b8l2")),
    core(
        dma("core", "%x : !b8", "%w : !w", sizes=[2048], src_strides=[1], dst_strides=[2]).replace(
            "dst_strides = array<i64: 2>", "dst_strides = array<i64: 2>, offsets = array<i64: 0, 1>"
        )
    ),  # fmt: skip
    core("%t = aipu.fill %x : !b8 value -128"),
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
    CONV_LAYER.format("", T8),
    # Computed weights (attention's matmul): one matrix per image.
    '%wb = "test.op"() : () -> tensor<1x64x64xi8>\n'
    + CONV_LAYER.format("", T8).replace("%wt,", "%wb,").replace("<64x64xi8>", "<1x64x64xi8>"),
    f"%r = aipu.to_device %logical {{perm = array<i64: 0, 2, 3, 1>}} : tensor<1x64x4x8xi8> -> {T8}",
    move([0, 1, 0, 0, 2048, 1, 1]),
    f"%r = aipu.reinterpret %a8 : {T8} -> tensor<2048xi8>",
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
    # mem.reinterpret
    "reinterpret bytes": (
        "%r = mem.reinterpret %x : !b8 -> !mem.buffer<1024xi8, global.l1>",
        "a reinterpretation keeps the bytes and the memory space",
    ),
    "reinterpret space": (
        "%r = mem.reinterpret %x : !b8 -> !mem.buffer<2048xi8, global.l2>",
        "a reinterpretation keeps the bytes and the memory space",
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
    "core foreign l1 view": (
        "mem.pool @l1c1 global.l1 core 1 capacity 4096\n"
        "%b = mem.buffer @l1c1 size 4096 align 64 : !w\n"
        + core(
            "%v = mem.view %b[0, 0] : !w -> !mem.view<64x64xi8, global.l1>",
            "%t = aipu.imc_load ins(%v : !mem.view<64x64xi8, global.l1>) weightset 0",
        ),
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
    "loop outside core": (LOOP.format("0 to 2", ""), "expects ancestor op 'aipu.core'"),
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
    "task outside core": (
        "%t = aipu.imc_load ins(%w : !w) weightset 0",
        "expects ancestor op 'aipu.core'",
    ),
    # aipu.mvm
    "mvm weightset": (core(mvm(weightset=9)), "weightset 9 out of"),
    "mvm k zero": (core(mvm(k=0)), "K chunk 0 out of range 1..512"),
    "mvm k large": (core(mvm(k=513)), "K chunk 513 out of range"),
    "mvm n": (core(mvm(n=65)), "N chunk 65 out of range 1..64"),
    "mvm icr": (core(mvm(icr=2)), "ICR factor 2 with N 64 does not fit"),
    "mvm icr zero": (core(mvm(icr=0)), "ICR factor 0 with N 64 does not fit"),
    "mvm kernel rank": (core(mvm(kernel=[3])), "expected kernel [kh, kw], stride [sh, sw]"),
    "mvm dilation rank": (core(mvm(dilation=[1])), "dilation [dh, dw], pads [t, l, b, r]"),
    "mvm pads": (core(mvm(pads=[0, -1, 0, 1])), "pads non-negative"),
    "mvm dilation zero": (core(mvm(dilation=[0, 1])), "stride and dilation must be positive"),
    "mvm rank": (
        core(mvm(ins="%w : !w", outs="%w : !w")),
        "must be NHWC (rank 4)",
    ),
    "mvm batch": (
        "%x2b = mem.buffer @l1 size 4096 align 64 : !mem.buffer<2x4x8x64xi8, global.l1>\n"
        + core(mvm(ins="%x2b : !mem.buffer<2x4x8x64xi8, global.l1>")),
        "batch 2 in but 1 out",
    ),
    "mvm height": (
        core(mvm(kernel=[3, 3], k=64)),
        "output height 4 does not match input height 4 (expected 2)",
    ),
    "mvm width": (core(mvm(kernel=[1, 3])), "output width 8 does not match input width 8"),
    "mvm dilated width": (
        core(mvm(kernel=[1, 3], pads=[0, 1, 0, 1], dilation=[1, 2])),
        "output width 8 does not match input width 8 (expected 6)",
    ),
    "mvm kernel larger than input": (
        core(mvm(kernel=[5, 1], stride=[4, 1])),
        "output height 4 does not match input height 4 (expected 0)",
    ),
    "mvm n vs output": (core(mvm(n=32)), "output has 64 channels, N chunk is 32"),
    "mvm in_c zero": (core(mvm(in_c=0, swicr=True)), "in_c 0 out of range 1..64 input channels"),
    "mvm in_c large": (core(mvm(in_c=65)), "in_c 65 out of range 1..64"),
    "mvm in_c pwords": (
        core(mvm(in_c=32, k=32)),
        "without swICR each tap is whole PWORDs: in_c 32 is not a multiple of 64",
    ),
    "mvm k vs depth": (core(mvm(k=64, k_start=1)), "K rows 1..65 exceed kernel area x in_c = 64"),
    "mvm swicr depth": (
        core(mvm(k=28, in_c=3, swicr=True, kernel=[3, 3], pads=[1, 1, 1, 1])),
        "K rows 0..28 exceed kernel area x in_c = 27",
    ),
    "mvm l1": (core(mvm(ins="%x2 : !b8l2")), "input must be in global.l1"),
    "mvm output l1": (core(mvm(outs="%x2 : !b8l2")), "output must be in global.l1"),
    "mvm input element": (core(mvm(ins="%y32 : !b32")), "input must have i8 elements"),
    "mvm raw output": (core(mvm(more="")), "output must have i32 elements"),
    "mvm requant output": (core(mvm(outs="%y32 : !b32")), "output must have i8 elements"),
    "mvm acc element": (
        core(mvm(more="acc(%x : !b8) requant(%rq : !rq)")),
        "acc must have i32 elements",
    ),
    "mvm acc l1": (
        "%a = mem.buffer @l2 size 8192 align 64 : !mem.buffer<1x4x8x64xi32, global.l2>\n"
        + core(mvm(more="acc(%a : !mem.buffer<1x4x8x64xi32, global.l2>) requant(%rq : !rq)")),
        "acc must be in global.l1",
    ),
    "mvm acc shape": (
        "%a = mem.buffer @l1 size 4096 align 64 : !mem.buffer<1x2x8x64xi32, global.l1>\n"
        + core(mvm(more="acc(%a : !mem.buffer<1x2x8x64xi32, global.l1>) requant(%rq : !rq)")),
        "acc must have the shape of the output",
    ),
    "mvm requant element": (core(mvm(more="requant(%w : !w)")), "requant must have i32 elements"),
    "mvm requant shape": (
        core(mvm(more="requant(%dt : !dt)")),
        "the requantization table of 64 channels is [64, 4]",
    ),
    "mvm deps unit": (
        core("%go = aipu.token_wait dpu 0", mvm(after="after %go")),
        "aipu.mvm runs on mvm but waits on a token_wait of dpu",
    ),
    # aipu.dwpu
    "dwpu conv without weights": (
        core(dwpu("conv", more="requant(%dt : !dt)")),
        "weights are given in conv mode, and only there",
    ),
    "dwpu pool with weights": (
        core(dwpu("max", more="weights(%w : !w)")),
        "weights are given in conv mode, and only there",
    ),
    "dwpu conv without table": (
        core(dwpu("conv", more="weights(%w : !w)")),
        "conv mode needs requant",
    ),
    "dwpu avg without table": (core(dwpu("avg")), "avg mode needs requant"),
    "dwpu global avg without table": (
        core(dwpu("global_avg", outs="%g : !g")),
        "global_avg mode needs requant",
    ),
    "dwpu max with table": (core(dwpu("max", more="requant(%dt : !dt)")), "max mode takes no"),
    "dwpu global max with table": (
        core(dwpu("global_max", outs="%g : !g", more="requant(%dt : !dt)")),
        "global_max mode takes no requant",
    ),
    "dwpu global shape": (
        core(dwpu("global_max")),
        "global pooling of [1, 4, 8, 64] gives [N, 1, 1, C]",
    ),
    "dwpu window": (
        core(dwpu("max", kernel=[1, 1], stride=[0, 1])),
        "kernel, stride and dilation must be positive",
    ),
    "dwpu extra": (
        core(dwpu("max", extra=[1, 0])),
        "output height 4 does not match input height 4 (expected 5)",
    ),
    "dwpu dilation": (
        core(dwpu("max", kernel=[3, 3], pads=[1, 1, 1, 1], dilation=[2, 1])),
        "output height 4 does not match input height 4 (expected 2)",
    ),
    "dwpu channels": (
        "%z = mem.buffer @l1 size 1024 align 64 : !mem.buffer<1x4x8x32xi8, global.l1>\n"
        + core(dwpu("max", outs="%z : !mem.buffer<1x4x8x32xi8, global.l1>")),
        "depthwise: 64 channels in, 32 out",
    ),
    "dwpu global channels": (
        "%z = mem.buffer @l1 size 64 align 64 : !mem.buffer<1x1x1x32xi8, global.l1>\n"
        + core(dwpu("global_max", outs="%z : !mem.buffer<1x1x1x32xi8, global.l1>")),
        "global pooling of [1, 4, 8, 64] gives [N, 1, 1, C]",
    ),
    "dwpu input l1": (core(dwpu("max", ins="%x2 : !b8l2")), "input must be in global.l1"),
    "dwpu l1": (core(dwpu("max", outs="%x2 : !b8l2")), "output must be in global.l1"),
    "dwpu element": (core(dwpu("max", ins="%y32 : !b32")), "input must have i8 elements"),
    "dwpu output element": (core(dwpu("max", outs="%y32 : !b32")), "output must have i8"),
    "dwpu weights element": (
        core(dwpu("conv", more="weights(%rq : !rq) requant(%dt : !dt)")),
        "weights must have i8 elements",
    ),
    "dwpu requant element": (
        core(dwpu("avg", more="requant(%w : !w)")),
        "requant must have i32 elements",
    ),
    "dwpu deps unit": (
        core("%go = aipu.token_wait mvm 0", dwpu("max", after="after %go")),
        "aipu.dwpu runs on dwpu but waits on a token_wait of mvm",
    ),
    # aipu.dma
    "dma like to like": (core(dma("core", "%x : !b8", "%y32 : !b32")), "DMA copies like to like"),
    "dma shape without pattern": (
        core(dma("core", "%x : !b8", "%w : !w")),
        "DMA copies like to like",
    ),
    "dma partial pattern": (
        core(dma("core", "%x : !b8", "%w : !w", sizes=[2048], src_strides=[1])),
        "a DMA pattern needs sizes, src_strides and dst_strides",
    ),
    "dma pattern rank": (
        core(
            dma(
                "core",
                "%x : !b8",
                "%y : !b8",
                sizes=[1] * 6,
                src_strides=[1] * 6,
                dst_strides=[1] * 6,
            )
        ),
        "a DMA pattern has 1..5 axes, each with strides",
    ),  # fmt: skip
    "dma pattern strides": (
        core(dma("core", "%x : !b8", "%y : !b8", sizes=[2, 2], src_strides=[1], dst_strides=[1])),
        "a DMA pattern has 1..5 axes, each with strides",
    ),
    "dma pattern source": (
        core(dma("core", "%x : !b8", "%w : !w", sizes=[2049], src_strides=[1], dst_strides=[1])),
        "DMA pattern reaches past the source",
    ),
    "dma pattern negative stride": (
        core(dma("core", "%x : !b8", "%w : !w", sizes=[2], src_strides=[-1], dst_strides=[1])),
        "DMA pattern reaches past the source",
    ),
    "dma pattern empty axis": (
        core(dma("core", "%x : !b8", "%w : !w", sizes=[0], src_strides=[1], dst_strides=[1])),
        "DMA pattern reaches past the source",
    ),
    "dma pattern dest": (
        core(dma("core", "%x : !b8", "%y : !b8", sizes=[2048], src_strides=[1], dst_strides=[2])),
        "DMA pattern reaches past the dest",
    ),
    "dma pattern offset": (
        core(
            dma(
                "core",
                "%x : !b8",
                "%y : !b8",
                sizes=[2048],
                src_strides=[1],
                dst_strides=[1],
                offsets=[0, 1],
            )
        ),
        "DMA pattern reaches past the dest",
    ),  # fmt: skip
    "dma system with l1": (
        core(dma("system", "%x2 : !b8l2", "%x : !b8")),
        "the system DMA moves data between DDR and L2, not L1",
    ),
    "dma channel": (
        core(dma("core", "%x2 : !b8l2", "%x : !b8", channel=2)),
        "DMA channel 2 out of range 0..1",
    ),
    "dma deps unit": (
        core("%go = aipu.token_wait dpu 1", dma("core", "%x2 : !b8l2", "%x : !b8", "after %go")),
        "aipu.dma runs on dma but waits on a token_wait of dpu",
    ),
    # aipu.fill
    "fill element": (
        core("%t = aipu.fill %y32 : !b32 value 0"),
        "fill destination must have i8 elements",
    ),
    "fill value": (core("%t = aipu.fill %x : !b8 value 128"), "fill value 128 out of int8 range"),
    "fill deps unit": (
        core("%go = aipu.token_wait mvm 1", "%t = aipu.fill %x : !b8 value 0 after %go"),
        "aipu.fill runs on dma but waits on a token_wait of mvm",
    ),
    # aipu.token_signal / aipu.token_wait
    "signal id": (core("aipu.token_signal dma 32"), "token 32 out of range 0..31"),
    "signal unit": (
        core(mvm(), "aipu.token_signal dpu 0 after %t"),
        "dpu cannot signal completion of a mvm task",
    ),
    "wait id": (core("%t = aipu.token_wait dma -1"), "token -1 out of range"),
    # aipu.dpu.*
    "dpu store l1": (
        dpu("%a = aipu.dpu.load %x : !b8", "aipu.dpu.store %a, %x2 : !b8l2"),
        "DPU store destination must be in global.l1",
    ),
    "dpu shift": (micro("%b = aipu.dpu.shli %a, 32"), "shift 32 out of range 0..31"),
    "dpu negative shift": (micro("%b = aipu.dpu.shli %a, -1"), "shift -1 out of range 0..31"),
    "dpu rescale multiplier": (
        micro("%b = aipu.dpu.rescale %a multiplier -1 shift 3"),
        "multiplier -1 out of range [0, 2**31)",
    ),
    "dpu rescale large multiplier": (
        micro("%b = aipu.dpu.rescale %a multiplier 2147483648 shift 3"),
        "multiplier 2147483648 out of range",
    ),
    "dpu rescale shift": (
        micro("%b = aipu.dpu.rescale %a multiplier 1 shift 63"),
        "shift 63 out of range 0..62",
    ),
    "dpu requant shift": (
        micro("%b = aipu.dpu.requant %a multiplier 1 shift -1 zero_point 0"),
        "shift -1 out of range 0..62",
    ),
    "dpu requant zero point": (
        micro("%b = aipu.dpu.requant %a multiplier 1 shift 1 zero_point -129"),
        "zero point -129 out of int8 range",
    ),
    "dpu requant table shape": (
        micro("%b = aipu.dpu.requant_table %a, %rq : !rq"),
        "a requantization table is [C, 3], got [64, 4]",
    ),
    "dpu lut shape": (
        micro("%b = aipu.dpu.lut %a, %w : !w"),
        "a LUT has 256 entries, got shape [64, 64]",
    ),
    "dpu exp table shape": (
        micro("%b = aipu.dpu.explut %a, %w : !w"),
        "an exp table has 256 entries, got shape [64, 64]",
    ),
    "dpu micro-op outside a program": (
        core('%a = "test.op"() : () -> !aipu.vreg', "%b = aipu.dpu.add %a, %a"),
        "'aipu.dpu.add' expects parent op to be one of 'aipu.dpu', 'aipu.eltwise'",
    ),
    "dpu load outside a program": (
        core("%a = aipu.dpu.load %x : !b8"),
        "expects parent op 'aipu.dpu'",
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
    # aipu.to_device / aipu.from_device
    "to_device perm": (
        f"%r = aipu.to_device %logical {{perm = array<i64: 0, 2, 2, 1>}} : "
        f"tensor<1x64x4x8xi8> -> {T8}",
        "perm [0, 2, 2, 1] is not a permutation of 4 axes",
    ),
    "to_device shape": (
        f"%r = aipu.to_device %logical {{perm = array<i64: 0, 3, 2, 1>}} : "
        f"tensor<1x64x4x8xi8> -> {T8}",
        "device shape must be the logical shape permuted by perm",
    ),
    "from_device perm": (
        f"%r = aipu.from_device %a8 {{perm = array<i64: 0, 1, 2>}} : {T8} -> tensor<1x64x4x8xi8>",
        "perm [0, 1, 2] is not a permutation of 4 axes",
    ),
    "from_device shape": (
        f"%r = aipu.from_device %a8 {{perm = array<i64: 0, 2, 3, 1>}} : {T8} -> {T8}",
        "device shape must be the logical shape permuted by perm",
    ),
    # aipu.conv
    "conv layer window": (
        CONV_LAYER.format(", kernel = array<i64: 3, 3>", T8),
        "output height 4 does not match input height 4 (expected 2)",
    ),
    "conv layer weights": (
        CONV_LAYER.format(", icr = 2 : i64", T8),
        "weights must be [64, 128] (or one such matrix per image, [1, 64, 128]), got [64, 64]",
    ),
    "conv layer table": (
        '%wt32 = "test.op"() : () -> tensor<64x32xi8>\n'
        + CONV_LAYER.format("", "tensor<1x4x8x32xi8>")
        .replace("%wt,", "%wt32,")
        .replace("64x64xi8", "64x32xi8"),
        "the table of 32 channels is [32, 4]",
    ),
    # aipu.pool
    "pool layer global shape": (
        f"%r = aipu.pool global_max %a8 : {T8} -> {T8}",
        "global pooling of [1, 4, 8, 64] gives [N, 1, 1, C]",
    ),
    "pool layer window": (
        f"%r = aipu.pool max %a8 : {T8} {{kernel = array<i64: 2, 2>, extra = array<i64: 0, 1>}}"
        " -> tensor<1x3x7x64xi8>",
        "output width 7 does not match input width 8 (expected 8)",
    ),
    # aipu.eltwise
    "eltwise arguments": (
        eltwise("%a8", T8, T8, "^bb0(%v: !aipu.vreg, %u: !aipu.vreg):", "aipu.dpu.yield %v"),
        "an eltwise body takes one !aipu.vreg per input",
    ),
    "eltwise argument type": (
        eltwise(
            "%a8",
            T8,
            T8,
            "^bb0(%v: i32):",
            '%u = "test.op"() : () -> !aipu.vreg',
            "aipu.dpu.yield %u",
        ),
        "an eltwise body takes one !aipu.vreg per input",
    ),
    "eltwise without yield": (
        eltwise("%a8", T8, T8, "^bb0(%v: !aipu.vreg):", '"test.termop"() : () -> ()'),
        "an eltwise body ends with aipu.dpu.yield",
    ),
    "eltwise broadcast": (
        eltwise("%a8", T8, "tensor<1x4x8x32xi8>", "^bb0(%v: !aipu.vreg):", "aipu.dpu.yield %v"),
        "input [1, 4, 8, 64] does not broadcast to [1, 4, 8, 32]",
    ),
    "dpu yield outside eltwise": (
        dpu("%a = aipu.dpu.load %x : !b8", "aipu.dpu.yield %a"),
        "expects parent op 'aipu.eltwise'",
    ),
    # aipu.move
    "move malformed": (move([0, 1, 0]), "malformed copy list"),
    "move input": (move([1, 1, 0, 0, 4, 1, 1]), "a copy reads input 1 of 1"),
    "move rank": (move([0, 0, 0, 0]), "a copy has 1..5 axes of positive size"),
    "move size": (move([0, 1, 0, 0, 0, 1, 1]), "a copy has 1..5 axes of positive size"),
    "move input bounds": (move([0, 1, 1, 0, 2048, 1, 1]), "a copy reaches outside the input"),
    "move result bounds": (
        move([0, 1, 0, 0, 2048, 1, 1], "tensor<1x4x8x32xi8>"),
        "a copy reaches outside the result",
    ),
    "move negative stride": (move([0, 1, 0, 0, 2, -1, 1]), "a copy reaches outside the input"),
    # aipu.reinterpret
    "reinterpret layer": (
        f"%r = aipu.reinterpret %a8 : {T8} -> tensor<2047xi8>",
        "a reinterpretation keeps the element count",
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
