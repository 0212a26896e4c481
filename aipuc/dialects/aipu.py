"""The `aipu` dialect: the hardware ops of one AIPU core, over `mem` buffers and views.

A program is a sequence of `aipu.core N { ... }` regions, one instruction stream per core.
Inside, tile loops (`aipu.tile_loop %i = 0 to 14 { ... }`) repeat their body once per tile,
with `mem.view` windows whose offsets are affine in `%i`, so IR size grows with ops, not
with tiles. Tasks run asynchronously on their unit (MVM, DWPU, DPU, DMA); each returns a
`!aipu.token` that completes with it, and waits for the tokens listed after `after`. The
scheduler turns cross-unit dependencies into hardware tokens: `aipu.token_signal` on the
producing unit, `aipu.token_wait` on the consuming one.

Tasks read and write `!mem.buffer` or `!mem.view` values; compute units see only their
core's L1. Conv-like tasks (`aipu.mvm`, `aipu.dwpu`) take NHWC operands, a kernel
`[kh, kw]`, a stride `[sh, sw]` and pads `[top, left, bottom, right]` (ONNX order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum, auto
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    f32,
    i8,
    i32,
    i64,
)
from xdsl.dialects.utils.enum_attribute import EnumAttribute
from xdsl.ir import (
    Block,
    BlockArgument,
    Dialect,
    Operation,
    ParametrizedAttribute,
    Region,
    SpacedOpaqueSyntaxAttribute,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    lazy_traits_def,
    operand_def,
    opt_operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasAncestor,
    HasParent,
    IsTerminator,
    NoTerminator,
    Pure,
    SingleBlockImplicitTerminator,
    ensure_terminator,
)
from xdsl.utils.exceptions import VerifyException

from aipuc.dialects.mem import (
    AnyMemoryType,
    BufferOp,
    InductionRange,
    MemoryType,
    PoolOp,
    ViewOp,
)
from aipuc.hardware import AIPU, MemorySpace, Unit

_INT8_MIN, _INT8_MAX = -128, 127


# ---------------------------------------------------------------------------------------
# Attributes and types
# ---------------------------------------------------------------------------------------


@irdl_attr_definition
class UnitKindAttr(EnumAttribute[Unit], SpacedOpaqueSyntaxAttribute):
    """A compute unit of a core: `#aipu<unit mvm>`."""

    name = "aipu.unit"


class DwpuMode(StrEnum):
    """What the depthwise unit computes."""

    CONV = auto()  # depthwise convolution
    MAX = auto()  # max pooling
    AVG = auto()  # average pooling


@irdl_attr_definition
class DwpuModeAttr(EnumAttribute[DwpuMode], SpacedOpaqueSyntaxAttribute):
    """`#aipu<dwpu_mode max>`."""

    name = "aipu.dwpu_mode"


class DmaEngine(StrEnum):
    """Which DMA moves the data."""

    CORE = auto()  # per-core DMA: between the core's L1 and L2 or DDR
    SYSTEM = auto()  # shared system DMA: between DDR and L2 (`use_sysdma`)


@irdl_attr_definition
class DmaEngineAttr(EnumAttribute[DmaEngine], SpacedOpaqueSyntaxAttribute):
    """`#aipu<dma_engine core>`."""

    name = "aipu.dma_engine"


@irdl_attr_definition
class TokenType(ParametrizedAttribute, TypeAttribute):
    """Completion of an asynchronous task: `!aipu.token`."""

    name = "aipu.token"


@irdl_attr_definition
class VRegType(ParametrizedAttribute, TypeAttribute):
    """A 64-lane float18 DPU vector register (virtual until register allocation)."""

    name = "aipu.vreg"


# ---------------------------------------------------------------------------------------
# Helpers shared by the verifiers
# ---------------------------------------------------------------------------------------


def _int(attr: IntegerAttr) -> int:
    return attr.value.data


def _ints(attr: DenseArrayBase) -> tuple[int, ...]:
    return tuple(attr.iter_values())  # pyright: ignore[reportReturnType]


def _mem(value: SSAValue) -> MemoryType:
    assert isinstance(value.type, MemoryType)
    return value.type


def _require_l1(what: str, value: SSAValue) -> None:
    if (space := _mem(value).space) != MemorySpace.L1:
        raise VerifyException(f"{what} must be in {MemorySpace.L1}, got {space}")


def _require_element(what: str, value: SSAValue, *allowed: IntegerType) -> None:
    element = _mem(value).element_type
    if element not in allowed:
        names = " or ".join(str(t) for t in allowed)
        raise VerifyException(f"{what} must have {names} elements, got {element}")


def _verify_deps(op: Operation, unit: Unit, deps: Sequence[SSAValue]) -> None:
    """A hardware-token wait gates only tasks of the unit whose queue it sits in."""
    for dep in deps:
        if isinstance(wait := dep.owner, TokenWaitOp) and wait.unit.data != unit:
            raise VerifyException(
                f"{op.name} runs on {unit} but waits on a token_wait of {wait.unit.data}"
            )


def _verify_window(
    in_shape: Sequence[int],
    out_shape: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    pads: Sequence[int],
) -> None:
    """NHWC sliding-window geometry: out = (in + pads - kernel) // stride + 1 on H and W."""
    if len(kernel) != 2 or len(stride) != 2 or len(pads) != 4:
        raise VerifyException("expected kernel [kh, kw], stride [sh, sw], pads [t, l, b, r]")
    if min(kernel) < 1 or min(stride) < 1 or min(pads) < 0:
        raise VerifyException("kernel and stride must be positive, pads non-negative")
    if len(in_shape) != 4 or len(out_shape) != 4:
        raise VerifyException("input and output must be NHWC (rank 4)")
    if in_shape[0] != out_shape[0]:
        raise VerifyException(f"batch {in_shape[0]} in but {out_shape[0]} out")
    for axis, name in ((1, "height"), (2, "width")):
        padded = in_shape[axis] + pads[axis - 1] + pads[axis + 1]
        expected = (padded - kernel[axis - 1]) // stride[axis - 1] + 1
        if out_shape[axis] != expected or padded < kernel[axis - 1]:
            raise VerifyException(
                f"output {name} {out_shape[axis]} does not match input {name} "
                f"{in_shape[axis]} (expected {expected})"
            )


def _i64(value: int) -> IntegerAttr:
    return IntegerAttr(value, i64)


def _array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, values)


def _parse_body(parser: Parser) -> Region:
    """A single-block region without terminator; `{ }` parses as one empty block."""
    region = parser.parse_region()
    if not region.blocks:
        region.add_block(Block())
    return region


_ONE_ONE = _array((1, 1))
_NO_PADS = _array((0, 0, 0, 0))


# ---------------------------------------------------------------------------------------
# Structure: cores and tile loops
# ---------------------------------------------------------------------------------------


@irdl_op_definition
class CoreOp(IRDLOperation):
    """The instruction stream of one AI core."""

    name = "aipu.core"

    index = prop_def(IntegerAttr[I64])
    body = region_def("single_block")

    traits = traits_def(NoTerminator())

    def __init__(self, index: int, body: Region | Block | Sequence[Operation] = ()):
        if not isinstance(body, Region):
            body = Region(body if isinstance(body, Block) else Block(body))
        super().__init__(properties={"index": _i64(index)}, regions=[body])

    def verify_(self) -> None:
        index = _int(self.index)
        if not 0 <= index < AIPU.cores:
            raise VerifyException(f"core {index} out of range: the AIPU has {AIPU.cores} cores")
        parent = self.parent_op()
        while parent is not None:
            if isinstance(parent, CoreOp):
                raise VerifyException("aipu.core regions do not nest")
            parent = parent.parent_op()
        # A core reaches only its own L1.
        pools: dict[BufferOp, PoolOp | None] = {}
        for op in self.body.walk():
            for operand in op.operands:
                if not isinstance(t := operand.type, MemoryType) or t.space != MemorySpace.L1:
                    continue
                owner = operand.owner
                if isinstance(owner, ViewOp):
                    owner = owner.source.owner
                if not isinstance(owner, BufferOp):
                    continue
                if owner not in pools:
                    pools[owner] = owner.get_pool()
                pool = pools[owner]
                if pool is not None and pool.core is not None and _int(pool.core) != index:
                    raise VerifyException(
                        f"core {index} uses a buffer in {owner.pool}, "
                        f"the L1 of core {_int(pool.core)}"
                    )

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {_int(self.index)}")
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_empty_block=False)

    @classmethod
    def parse(cls, parser: Parser) -> CoreOp:
        index = parser.parse_integer(allow_boolean=False)
        attributes = parser.parse_optional_attr_dict_with_keyword()
        op = cls(index, _parse_body(parser))
        if attributes is not None:
            op.attributes |= attributes.data
        return op


class _TileLoopRange(InductionRange):
    def get_range(self, op: Operation, arg: BlockArgument) -> tuple[int, int] | None:
        assert isinstance(op, TileLoopOp)
        if arg.index != 0 or arg.block is not op.body.block:
            return None
        return _int(op.lb), _int(op.ub) - 1


@irdl_op_definition
class YieldOp(IRDLOperation):
    """End of a tile loop's body."""

    name = "aipu.yield"

    traits = lazy_traits_def(lambda: (IsTerminator(), HasParent(TileLoopOp)))

    assembly_format = "attr-dict"


@irdl_op_definition
class TileLoopOp(IRDLOperation):
    """Repeats its body once per tile, `%i` running from `lb` to `ub - 1`, on one core."""

    name = "aipu.tile_loop"

    lb = prop_def(IntegerAttr[I64])
    ub = prop_def(IntegerAttr[I64])
    body = region_def("single_block")

    traits = lazy_traits_def(
        lambda: (
            SingleBlockImplicitTerminator(YieldOp),
            HasAncestor(CoreOp),
            _TileLoopRange(),
        )
    )

    def __init__(self, lb: int, ub: int, body: Region | Block | Sequence[Operation] = ()):
        """With operations (or nothing) as body, creates the block and its index argument."""
        if not isinstance(body, Region):
            if not isinstance(body, Block):
                body = Block(body, arg_types=[IndexType()])
            body = Region(body)
        super().__init__(properties={"lb": _i64(lb), "ub": _i64(ub)}, regions=[body])
        for trait in self.get_traits_of_type(SingleBlockImplicitTerminator):
            ensure_terminator(self, trait)

    @property
    def iv(self) -> BlockArgument:
        return self.body.block.args[0]

    @property
    def trip_count(self) -> int:
        return _int(self.ub) - _int(self.lb)

    def verify_(self) -> None:
        if not 0 <= _int(self.lb) < _int(self.ub):
            raise VerifyException(
                f"tile loop needs 0 <= lb < ub, got {_int(self.lb)} to {_int(self.ub)}"
            )
        args = self.body.block.args
        if len(args) != 1 or not isinstance(args[0].type, IndexType):
            raise VerifyException("tile loop body takes exactly one index argument")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.iv)
        printer.print_string(f" = {_int(self.lb)} to {_int(self.ub)} ")
        printer.print_region(
            self.body,
            print_entry_block_args=False,
            print_empty_block=False,
            print_block_terminators=False,
        )
        printer.print_op_attributes(self.attributes, print_keyword=True)

    @classmethod
    def parse(cls, parser: Parser) -> TileLoopOp:
        iv = parser.parse_argument(expect_type=False)
        parser.parse_punctuation("=")
        lb = parser.parse_integer(allow_boolean=False)
        parser.parse_keyword("to")
        ub = parser.parse_integer(allow_boolean=False)
        body = parser.parse_region((iv.resolve(IndexType()),))
        attributes = parser.parse_optional_attr_dict_with_keyword()
        op = cls(lb, ub, body)
        if attributes is not None:
            op.attributes |= attributes.data
        return op


# ---------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------


_TASK_TRAITS = lazy_traits_def(lambda: (HasAncestor(CoreOp),))


@irdl_op_definition
class ImcLoadOp(IRDLOperation):
    """Loads one IMC weightset of the MVM unit from L1."""

    name = "aipu.imc_load"
    UNIT: ClassVar[Unit] = Unit.MVM

    weights = operand_def(AnyMemoryType)
    deps = var_operand_def(TokenType)
    weightset = prop_def(IntegerAttr[I64])
    done = result_def(TokenType)

    traits = _TASK_TRAITS

    assembly_format = (
        "`ins` `(` $weights `:` type($weights) `)` `weightset` $weightset"
        " (`after` $deps^)? attr-dict"
    )

    def __init__(
        self,
        weights: SSAValue | Operation,
        weightset: int,
        deps: Sequence[SSAValue | Operation] = (),
    ):
        super().__init__(
            operands=[weights, deps],
            properties={"weightset": _i64(weightset)},
            result_types=[TokenType()],
        )

    def verify_(self) -> None:
        if not 0 <= (ws := _int(self.weightset)) < AIPU.imc_weightsets:
            raise VerifyException(f"weightset {ws} out of range 0..{AIPU.imc_weightsets - 1}")
        _require_l1("weights", self.weights)
        _require_element("weights", self.weights, i8)
        if (count := _mem(self.weights).element_count) > AIPU.imc_weightset_bytes:
            raise VerifyException(
                f"{count} weights exceed one weightset of {AIPU.imc_weightset_bytes}"
            )
        _verify_deps(self, self.UNIT, self.deps)


@irdl_op_definition
class MvmOp(IRDLOperation):
    """A matrix-vector task on the in-memory-compute unit: conv or dense over a tile.

    Each input vector of `k` int8 values (kernel taps x input channels) meets the `k x n`
    weights of `weightset`; `icr` replicates them across the columns to compute that many
    x-positions per cycle. Without `requant` the int32 sums are stored (partial sums of a K
    chunk); `acc` adds the partial sums of earlier K chunks first.
    """

    name = "aipu.mvm"
    UNIT: ClassVar[Unit] = Unit.MVM

    input = operand_def(AnyMemoryType)
    output = operand_def(AnyMemoryType)
    acc = opt_operand_def(AnyMemoryType)
    requant = opt_operand_def(AnyMemoryType)
    """Per-output-channel bias and fixed-point multiplier/shift, int32."""
    deps = var_operand_def(TokenType)

    weightset = prop_def(IntegerAttr[I64])
    k = prop_def(IntegerAttr[I64])
    n = prop_def(IntegerAttr[I64])
    icr = prop_def(IntegerAttr[I64], default_value=_i64(1))
    kernel = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    stride = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    pads = prop_def(DenseArrayBase.constr(i64), default_value=_NO_PADS)

    done = result_def(TokenType)

    traits = _TASK_TRAITS
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    assembly_format = (
        "`ins` `(` $input `:` type($input) `)` `outs` `(` $output `:` type($output) `)`"
        " (`acc` `(` $acc^ `:` type($acc) `)`)?"
        " (`requant` `(` $requant^ `:` type($requant) `)`)?"
        " `weightset` $weightset `k` $k `n` $n (`icr` $icr^)?"
        " (`kernel` $kernel^)? (`stride` $stride^)? (`pads` $pads^)?"
        " (`after` $deps^)? attr-dict"
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        output: SSAValue | Operation,
        *,
        weightset: int,
        k: int,
        n: int,
        icr: int = 1,
        kernel: Sequence[int] = (1, 1),
        stride: Sequence[int] = (1, 1),
        pads: Sequence[int] = (0, 0, 0, 0),
        acc: SSAValue | Operation | None = None,
        requant: SSAValue | Operation | None = None,
        deps: Sequence[SSAValue | Operation] = (),
    ):
        super().__init__(
            operands=[input, output, acc, requant, deps],
            properties={
                "weightset": _i64(weightset),
                "k": _i64(k),
                "n": _i64(n),
                "icr": _i64(icr),
                "kernel": _array(kernel),
                "stride": _array(stride),
                "pads": _array(pads),
            },
            result_types=[TokenType()],
        )

    def verify_(self) -> None:
        ws, k, n, icr = (_int(a) for a in (self.weightset, self.k, self.n, self.icr))
        if not 0 <= ws < AIPU.imc_weightsets:
            raise VerifyException(f"weightset {ws} out of range 0..{AIPU.imc_weightsets - 1}")
        if not 1 <= k <= AIPU.mvm_k:
            raise VerifyException(f"K chunk {k} out of range 1..{AIPU.mvm_k}")
        if not 1 <= n <= AIPU.mvm_n:
            raise VerifyException(f"N chunk {n} out of range 1..{AIPU.mvm_n}")
        if icr < 1 or icr * n > AIPU.mvm_n:
            raise VerifyException(
                f"ICR factor {icr} with N {n} does not fit the {AIPU.mvm_n} MVM columns"
            )
        in_shape, out_shape = _mem(self.input).get_shape(), _mem(self.output).get_shape()
        kernel = _ints(self.kernel)
        _verify_window(in_shape, out_shape, kernel, _ints(self.stride), _ints(self.pads))
        if out_shape[3] != n:
            raise VerifyException(f"output has {out_shape[3]} channels, N chunk is {n}")
        if k > (depth := kernel[0] * kernel[1] * in_shape[3]):
            raise VerifyException(f"K chunk {k} exceeds kernel area x input channels {depth}")
        for what, value in (("input", self.input), ("output", self.output), ("acc", self.acc)):
            if value is not None:
                _require_l1(what, value)
        _require_element("input", self.input, i8)
        _require_element("output", self.output, i8 if self.requant else i32)
        if self.acc is not None:
            _require_element("acc", self.acc, i32)
            if _mem(self.acc).get_shape() != out_shape:
                raise VerifyException("acc must have the shape of the output")
        if self.requant is not None:
            _require_element("requant", self.requant, i32)
        _verify_deps(self, self.UNIT, self.deps)


@irdl_op_definition
class DwpuOp(IRDLOperation):
    """A depthwise-conv or pooling task on the depthwise unit (64 channels x 9 taps/cycle)."""

    name = "aipu.dwpu"
    UNIT: ClassVar[Unit] = Unit.DWPU

    input = operand_def(AnyMemoryType)
    output = operand_def(AnyMemoryType)
    weights = opt_operand_def(AnyMemoryType)
    """Depthwise kernels, int8; only in conv mode."""
    requant = opt_operand_def(AnyMemoryType)
    deps = var_operand_def(TokenType)

    mode = prop_def(DwpuModeAttr)
    kernel = prop_def(DenseArrayBase.constr(i64))
    stride = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    pads = prop_def(DenseArrayBase.constr(i64), default_value=_NO_PADS)

    done = result_def(TokenType)

    traits = _TASK_TRAITS
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    assembly_format = (
        "$mode `ins` `(` $input `:` type($input) `)` `outs` `(` $output `:` type($output) `)`"
        " (`weights` `(` $weights^ `:` type($weights) `)`)?"
        " (`requant` `(` $requant^ `:` type($requant) `)`)?"
        " `kernel` $kernel (`stride` $stride^)? (`pads` $pads^)?"
        " (`after` $deps^)? attr-dict"
    )

    def __init__(
        self,
        mode: DwpuMode,
        input: SSAValue | Operation,
        output: SSAValue | Operation,
        *,
        kernel: Sequence[int],
        stride: Sequence[int] = (1, 1),
        pads: Sequence[int] = (0, 0, 0, 0),
        weights: SSAValue | Operation | None = None,
        requant: SSAValue | Operation | None = None,
        deps: Sequence[SSAValue | Operation] = (),
    ):
        super().__init__(
            operands=[input, output, weights, requant, deps],
            properties={
                "mode": DwpuModeAttr(mode),
                "kernel": _array(kernel),
                "stride": _array(stride),
                "pads": _array(pads),
            },
            result_types=[TokenType()],
        )

    def verify_(self) -> None:
        if (self.mode.data == DwpuMode.CONV) != (self.weights is not None):
            raise VerifyException("weights are given in conv mode, and only there")
        in_shape, out_shape = _mem(self.input).get_shape(), _mem(self.output).get_shape()
        _verify_window(
            in_shape, out_shape, _ints(self.kernel), _ints(self.stride), _ints(self.pads)
        )
        if in_shape[3] != out_shape[3]:
            raise VerifyException(f"depthwise: {in_shape[3]} channels in, {out_shape[3]} out")
        _require_l1("input", self.input)
        _require_l1("output", self.output)
        _require_element("input", self.input, i8)
        _require_element("output", self.output, i8)
        if self.weights is not None:
            _require_element("weights", self.weights, i8)
        if self.requant is not None:
            _require_element("requant", self.requant, i32)
        _verify_deps(self, self.UNIT, self.deps)


@irdl_op_definition
class DmaOp(IRDLOperation):
    """A DMA transfer between memory levels, on a core DMA channel or the system DMA."""

    name = "aipu.dma"
    UNIT: ClassVar[Unit] = Unit.DMA

    source = operand_def(AnyMemoryType)
    dest = operand_def(AnyMemoryType)
    deps = var_operand_def(TokenType)
    engine = prop_def(DmaEngineAttr)
    channel = prop_def(IntegerAttr[I64], default_value=_i64(0))
    done = result_def(TokenType)

    traits = _TASK_TRAITS

    assembly_format = (
        "$engine `ins` `(` $source `:` type($source) `)` `outs` `(` $dest `:` type($dest) `)`"
        " (`channel` $channel^)? (`after` $deps^)? attr-dict"
    )

    def __init__(
        self,
        engine: DmaEngine,
        source: SSAValue | Operation,
        dest: SSAValue | Operation,
        *,
        channel: int = 0,
        deps: Sequence[SSAValue | Operation] = (),
    ):
        super().__init__(
            operands=[source, dest, deps],
            properties={"engine": DmaEngineAttr(engine), "channel": _i64(channel)},
            result_types=[TokenType()],
        )

    def verify_(self) -> None:
        src, dst = _mem(self.source), _mem(self.dest)
        if src.get_shape() != dst.get_shape() or src.element_type != dst.element_type:
            raise VerifyException(f"DMA copies like to like, got {src} to {dst}")
        touches_l1 = MemorySpace.L1 in (src.space, dst.space)
        if self.engine.data == DmaEngine.CORE and not touches_l1:
            raise VerifyException("the core DMA moves data to or from the core's L1")
        if self.engine.data == DmaEngine.SYSTEM and touches_l1:
            raise VerifyException("the system DMA moves data between DDR and L2, not L1")
        if not 0 <= (channel := _int(self.channel)) < AIPU.core_dma_channels:
            raise VerifyException(
                f"DMA channel {channel} out of range 0..{AIPU.core_dma_channels - 1}"
            )
        _verify_deps(self, self.UNIT, self.deps)


@irdl_op_definition
class TokenSignalOp(IRDLOperation):
    """Unit `unit` raises hardware token `id` of its core once `deps` have completed."""

    name = "aipu.token_signal"

    unit = prop_def(UnitKindAttr)
    id = prop_def(IntegerAttr[I64])
    deps = var_operand_def(TokenType)

    traits = _TASK_TRAITS

    assembly_format = "$unit $id (`after` $deps^)? attr-dict"

    def __init__(self, unit: Unit, id: int, deps: Sequence[SSAValue | Operation] = ()):
        super().__init__(operands=[deps], properties={"unit": UnitKindAttr(unit), "id": _i64(id)})

    def verify_(self) -> None:
        if not 0 <= (id := _int(self.id)) < AIPU.hw_tokens_per_core:
            raise VerifyException(f"token {id} out of range 0..{AIPU.hw_tokens_per_core - 1}")
        unit = self.unit.data
        for dep in self.deps:
            if not isinstance(task := dep.owner, TASK_OPS):
                continue
            if (producer := task.UNIT) != unit:
                raise VerifyException(f"{unit} cannot signal completion of a {producer} task")


@irdl_op_definition
class TokenWaitOp(IRDLOperation):
    """Unit `unit` waits for hardware token `id`; tasks of that unit wait on the result."""

    name = "aipu.token_wait"

    unit = prop_def(UnitKindAttr)
    id = prop_def(IntegerAttr[I64])
    done = result_def(TokenType)

    traits = _TASK_TRAITS

    assembly_format = "$unit $id attr-dict"

    def __init__(self, unit: Unit, id: int):
        super().__init__(
            properties={"unit": UnitKindAttr(unit), "id": _i64(id)}, result_types=[TokenType()]
        )

    def verify_(self) -> None:
        if not 0 <= (id := _int(self.id)) < AIPU.hw_tokens_per_core:
            raise VerifyException(f"token {id} out of range 0..{AIPU.hw_tokens_per_core - 1}")


# ---------------------------------------------------------------------------------------
# DPU programs: a region of vector micro-ops, run once per 64-lane vector of the tile
# ---------------------------------------------------------------------------------------


_MICRO_OP_TRAITS = lazy_traits_def(lambda: (HasParent(DpuOp),))
_PURE_MICRO_OP_TRAITS = lazy_traits_def(lambda: (HasParent(DpuOp), Pure()))


@irdl_op_definition
class DpuLoadOp(IRDLOperation):
    """Loads the current vector of a tile into a register, converting to float18."""

    name = "aipu.dpu.load"

    source = operand_def(AnyMemoryType)
    result = result_def(VRegType)

    traits = _MICRO_OP_TRAITS

    assembly_format = "$source attr-dict `:` type($source)"

    def __init__(self, source: SSAValue | Operation):
        super().__init__(operands=[source], result_types=[VRegType()])


@irdl_op_definition
class DpuStoreOp(IRDLOperation):
    """Stores a register into the current vector of an L1 tile, rounding to the element type."""

    name = "aipu.dpu.store"

    value = operand_def(VRegType)
    dest = operand_def(AnyMemoryType)

    traits = _MICRO_OP_TRAITS

    assembly_format = "$value `,` $dest attr-dict `:` type($dest)"

    def __init__(self, value: SSAValue | Operation, dest: SSAValue | Operation):
        super().__init__(operands=[value, dest])

    def verify_(self) -> None:
        _require_l1("DPU store destination", self.dest)


class _DpuBinaryOp(IRDLOperation):
    lhs = operand_def(VRegType)
    rhs = operand_def(VRegType)
    result = result_def(VRegType)

    traits = _PURE_MICRO_OP_TRAITS

    assembly_format = "$lhs `,` $rhs attr-dict"

    def __init__(self, lhs: SSAValue | Operation, rhs: SSAValue | Operation):
        super().__init__(operands=[lhs, rhs], result_types=[VRegType()])


@irdl_op_definition
class DpuAddOp(_DpuBinaryOp):
    """Lane-wise float18 addition."""

    name = "aipu.dpu.add"


@irdl_op_definition
class DpuMulOp(_DpuBinaryOp):
    """Lane-wise float18 multiplication."""

    name = "aipu.dpu.mul"


@irdl_op_definition
class DpuLutOp(IRDLOperation):
    """Looks each lane's int8 code up in a 256-entry table (any unary function)."""

    name = "aipu.dpu.lut"

    input = operand_def(VRegType)
    table = operand_def(AnyMemoryType)
    result = result_def(VRegType)

    traits = _PURE_MICRO_OP_TRAITS

    assembly_format = "$input `,` $table attr-dict `:` type($table)"

    def __init__(self, input: SSAValue | Operation, table: SSAValue | Operation):
        super().__init__(operands=[input, table], result_types=[VRegType()])

    def verify_(self) -> None:
        if (shape := _mem(self.table).get_shape()) != (AIPU.lut_entries,):
            raise VerifyException(f"a LUT has {AIPU.lut_entries} entries, got shape {list(shape)}")


@irdl_op_definition
class DpuRequantOp(IRDLOperation):
    """Requantizes lanes to int8 codes: clamp(round(x * scale) + zero_point)."""

    name = "aipu.dpu.requant"

    input = operand_def(VRegType)
    scale = prop_def(FloatAttr[Float32Type])
    zero_point = prop_def(IntegerAttr[I64])
    result = result_def(VRegType)

    traits = _PURE_MICRO_OP_TRAITS

    assembly_format = "$input `scale` $scale `zero_point` $zero_point attr-dict"

    def __init__(self, input: SSAValue | Operation, scale: float, zero_point: int):
        super().__init__(
            operands=[input],
            properties={"scale": FloatAttr(scale, f32), "zero_point": _i64(zero_point)},
            result_types=[VRegType()],
        )

    def verify_(self) -> None:
        scale = self.scale.value.data
        if not (math.isfinite(scale) and scale > 0):
            raise VerifyException(f"scale must be positive and finite, got {scale}")
        if not _INT8_MIN <= (zp := _int(self.zero_point)) <= _INT8_MAX:
            raise VerifyException(f"zero point {zp} out of int8 range")


DPU_MICRO_OPS = (DpuLoadOp, DpuStoreOp, DpuAddOp, DpuMulOp, DpuLutOp, DpuRequantOp)


@irdl_op_definition
class DpuOp(IRDLOperation):
    """A DPU program: its micro-ops run once per 64-lane vector of the stored tiles."""

    name = "aipu.dpu"
    UNIT: ClassVar[Unit] = Unit.DPU

    deps = var_operand_def(TokenType)
    body = region_def("single_block")
    done = result_def(TokenType)

    traits = lazy_traits_def(lambda: (HasAncestor(CoreOp), NoTerminator()))

    def __init__(
        self,
        body: Region | Block | Sequence[Operation] = (),
        deps: Sequence[SSAValue | Operation] = (),
    ):
        if not isinstance(body, Region):
            body = Region(body if isinstance(body, Block) else Block(body))
        super().__init__(operands=[deps], regions=[body], result_types=[TokenType()])

    def verify_(self) -> None:
        ops = list(self.body.block.ops)
        if stray := [op.name for op in ops if not isinstance(op, DPU_MICRO_OPS)]:
            raise VerifyException(f"a DPU program holds only aipu.dpu.* micro-ops, got {stray}")
        stores = [op for op in ops if isinstance(op, DpuStoreOp)]
        if not stores:
            raise VerifyException("a DPU program stores at least one tile")
        shape = _mem(stores[0].dest).get_shape()
        if any(_mem(store.dest).get_shape() != shape for store in stores):
            raise VerifyException("all tiles a DPU program stores have one shape")
        for load in (op for op in ops if isinstance(op, DpuLoadOp)):
            load_shape = _mem(load.source).get_shape()
            if len(load_shape) != len(shape) or any(
                d not in (1, s) for d, s in zip(load_shape, shape, strict=True)
            ):
                raise VerifyException(
                    f"loaded tile {list(load_shape)} does not broadcast to {list(shape)}"
                )
        _verify_deps(self, self.UNIT, self.deps)

    def print(self, printer: Printer) -> None:
        if self.deps:
            printer.print_string(" after ")
            printer.print_list(self.deps, printer.print_operand)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_empty_block=False)

    @classmethod
    def parse(cls, parser: Parser) -> DpuOp:
        deps: list[SSAValue] = []
        if parser.parse_optional_keyword("after"):
            deps = parser.parse_comma_separated_list(
                Parser.Delimiter.NONE,
                lambda: parser.resolve_operand(parser.parse_unresolved_operand(), TokenType()),
            )
        attributes = parser.parse_optional_attr_dict_with_keyword()
        op = cls(_parse_body(parser), deps)
        if attributes is not None:
            op.attributes |= attributes.data
        return op


TASK_OPS = (ImcLoadOp, MvmOp, DwpuOp, DmaOp, DpuOp)
"""Asynchronous tasks: each runs on its `UNIT` and returns a token."""


Aipu = Dialect(
    "aipu",
    [
        CoreOp,
        TileLoopOp,
        YieldOp,
        ImcLoadOp,
        MvmOp,
        DwpuOp,
        DmaOp,
        TokenSignalOp,
        TokenWaitOp,
        DpuOp,
        *DPU_MICRO_OPS,
    ],
    [UnitKindAttr, DwpuModeAttr, DmaEngineAttr, TokenType, VRegType],
)
