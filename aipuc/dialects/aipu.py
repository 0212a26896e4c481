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
    BoolAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    NoneAttr,
    TensorType,
    UnitAttr,
    f32,
    i8,
    i32,
    i64,
)
from xdsl.dialects.utils.enum_attribute import EnumAttribute
from xdsl.ir import (
    Attribute,
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
    ParsePropInAttrDict,
    base,
    irdl_attr_definition,
    irdl_op_definition,
    lazy_traits_def,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import (
    ConstantLike,
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
    BufferType,
    InductionRange,
    MemorySpaceAttr,
    MemoryType,
    PoolOp,
    ViewOp,
    ViewType,
)
from aipuc.hardware import AIPU, MemorySpace, Unit
from aipuc.runtime.sim.isa import MAX_DIMS, MicroOpcode

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
    GLOBAL_AVG = auto()  # average over the whole tile per channel
    GLOBAL_MAX = auto()


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
    dilation: Sequence[int] = (1, 1),
) -> None:
    """NHWC sliding-window geometry on H and W: out = (in + pads - span) // stride + 1."""
    if len(kernel) != 2 or len(stride) != 2 or len(pads) != 4 or len(dilation) != 2:
        raise VerifyException(
            "expected kernel [kh, kw], stride [sh, sw], dilation [dh, dw], pads [t, l, b, r]"
        )
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(pads) < 0:
        raise VerifyException("kernel, stride and dilation must be positive, pads non-negative")
    if len(in_shape) != 4 or len(out_shape) != 4:
        raise VerifyException("input and output must be NHWC (rank 4)")
    if in_shape[0] != out_shape[0]:
        raise VerifyException(f"batch {in_shape[0]} in but {out_shape[0]} out")
    for axis, name in ((1, "height"), (2, "width")):
        padded = in_shape[axis] + pads[axis - 1] + pads[axis + 1]
        span = dilation[axis - 1] * (kernel[axis - 1] - 1) + 1
        expected = (padded - span) // stride[axis - 1] + 1
        if out_shape[axis] != expected or padded < span:
            raise VerifyException(
                f"output {name} {out_shape[axis]} does not match input {name} "
                f"{in_shape[axis]} (expected {expected})"
            )


def _flag(attr: BoolAttr) -> bool:
    return attr.value.data != 0  # xDSL stores a true i1 as -1


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
_IMAGES_MAJOR = _array((0, 0, 0))


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

    The input vector of each output pixel is its kernel taps, each contributing the
    `in_c` first lanes of the input pixel (all channels, or a dense few with swICR),
    centred by `in_zp`; padding holds the zero point. Rows `k_start` to `k_start + k` of
    that vector meet the `k x n` weights of `weightset` (less `w_zp`); `icr` copies of
    the weights side by side compute that many x-positions per cycle (x-position `ow` uses
    copy `ow % icr`). Without `requant` the int32 sums are stored (partial sums of a K
    chunk); `acc` adds the partial sums of earlier chunks first; with `requant` (an
    [n, 4] int32 table: bias, multiplier, shift, output zero point) the result is int8.
    """

    name = "aipu.mvm"
    UNIT: ClassVar[Unit] = Unit.MVM

    input = operand_def(AnyMemoryType)
    output = operand_def(AnyMemoryType)
    acc = opt_operand_def(AnyMemoryType)
    requant = opt_operand_def(AnyMemoryType)
    deps = var_operand_def(TokenType)

    weightset = prop_def(IntegerAttr[I64])
    k = prop_def(IntegerAttr[I64])
    n = prop_def(IntegerAttr[I64])
    in_c = prop_def(IntegerAttr[I64])
    channels = opt_prop_def(IntegerAttr[I64])
    """Lanes of each tap holding input channels (absent: all `in_c`; the rest is padding)."""
    k_start = prop_def(IntegerAttr[I64], default_value=_i64(0))
    icr = prop_def(IntegerAttr[I64], default_value=_i64(1))
    swicr = prop_def(BoolAttr, default_value=BoolAttr.from_bool(False))
    in_zp = prop_def(IntegerAttr[I64], default_value=_i64(0))
    w_zp = prop_def(IntegerAttr[I64], default_value=_i64(0))
    kernel = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    stride = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    dilation = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    pads = prop_def(DenseArrayBase.constr(i64), default_value=_NO_PADS)

    done = result_def(TokenType)

    traits = _TASK_TRAITS
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())

    assembly_format = (
        "`ins` `(` $input `:` type($input) `)` `outs` `(` $output `:` type($output) `)`"
        " (`acc` `(` $acc^ `:` type($acc) `)`)?"
        " (`requant` `(` $requant^ `:` type($requant) `)`)?"
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
        in_c: int,
        channels: int | None = None,
        k_start: int = 0,
        icr: int = 1,
        swicr: bool = False,
        in_zp: int = 0,
        w_zp: int = 0,
        kernel: Sequence[int] = (1, 1),
        stride: Sequence[int] = (1, 1),
        dilation: Sequence[int] = (1, 1),
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
                "in_c": _i64(in_c),
                "channels": None if channels is None else _i64(channels),
                "k_start": _i64(k_start),
                "icr": _i64(icr),
                "swicr": BoolAttr.from_bool(swicr),
                "in_zp": _i64(in_zp),
                "w_zp": _i64(w_zp),
                "kernel": _array(kernel),
                "stride": _array(stride),
                "dilation": _array(dilation),
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
        _verify_window(
            in_shape, out_shape, kernel, _ints(self.stride), _ints(self.pads), _ints(self.dilation)
        )
        if out_shape[3] != n:
            raise VerifyException(f"output has {out_shape[3]} channels, N chunk is {n}")
        in_c = _int(self.in_c)
        if not 1 <= in_c <= in_shape[3]:
            raise VerifyException(f"in_c {in_c} out of range 1..{in_shape[3]} input channels")
        if not _flag(self.swicr) and in_c % AIPU.pword_bytes:
            raise VerifyException(
                f"without swICR each tap is whole PWORDs: in_c {in_c} is not a multiple of "
                f"{AIPU.pword_bytes}"
            )
        if self.channels is not None and not 1 <= _int(self.channels) <= in_c:
            raise VerifyException(f"channels {_int(self.channels)} out of range 1..in_c {in_c}")
        if _int(self.k_start) + k > (depth := kernel[0] * kernel[1] * in_c):
            raise VerifyException(
                f"K rows {_int(self.k_start)}..{_int(self.k_start) + k} exceed kernel area x "
                f"in_c = {depth}"
            )
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
            if _mem(self.requant).get_shape() != (n, 4):
                raise VerifyException(f"the requantization table of {n} channels is [{n}, 4]")
        _verify_deps(self, self.UNIT, self.deps)


@irdl_op_definition
class DwpuOp(IRDLOperation):
    """A depthwise-conv or pooling task on the depthwise unit (64 channels x 9 taps/cycle).

    Requantization tables are int32 rows of (bias, multiplier, shift, out_zp, in_zp), one
    per channel with `per_channel` (else one, broadcast): [C', 5] for conv and global
    average, [taps + 1, C', 5] for average pooling, indexed by each output position's
    divisor (taps inside the input, plus padding with `count_include_pad`). `extra` rows
    and columns past the bottom/right pads (ceil_mode) are reached but never counted.
    """

    name = "aipu.dwpu"
    UNIT: ClassVar[Unit] = Unit.DWPU

    input = operand_def(AnyMemoryType)
    output = operand_def(AnyMemoryType)
    weights = opt_operand_def(AnyMemoryType)
    """Depthwise kernels [kh, kw, C], int8; only in conv mode."""
    requant = opt_operand_def(AnyMemoryType)
    program = opt_operand_def(BufferType)
    """The layer's DWPU program word (allocated by aipu-programs)."""
    deps = var_operand_def(TokenType)

    mode = prop_def(DwpuModeAttr)
    kernel = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    stride = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    dilation = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    pads = prop_def(DenseArrayBase.constr(i64), default_value=_NO_PADS)
    extra = prop_def(DenseArrayBase.constr(i64), default_value=_array((0, 0)))
    count_include_pad = prop_def(BoolAttr, default_value=BoolAttr.from_bool(False))
    per_channel = prop_def(BoolAttr, default_value=BoolAttr.from_bool(False))

    done = result_def(TokenType)

    traits = _TASK_TRAITS
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())

    assembly_format = (
        "$mode `ins` `(` $input `:` type($input) `)` `outs` `(` $output `:` type($output) `)`"
        " (`weights` `(` $weights^ `:` type($weights) `)`)?"
        " (`requant` `(` $requant^ `:` type($requant) `)`)?"
        " (`program` `(` $program^ `:` type($program) `)`)?"
        " (`after` $deps^)? attr-dict"
    )

    def __init__(
        self,
        mode: DwpuMode,
        input: SSAValue | Operation,
        output: SSAValue | Operation,
        *,
        kernel: Sequence[int] = (1, 1),
        stride: Sequence[int] = (1, 1),
        dilation: Sequence[int] = (1, 1),
        pads: Sequence[int] = (0, 0, 0, 0),
        extra: Sequence[int] = (0, 0),
        count_include_pad: bool = False,
        per_channel: bool = False,
        weights: SSAValue | Operation | None = None,
        requant: SSAValue | Operation | None = None,
        deps: Sequence[SSAValue | Operation] = (),
        program: SSAValue | Operation | None = None,
    ):
        super().__init__(
            operands=[input, output, weights, requant, program, deps],
            properties={
                "mode": DwpuModeAttr(mode),
                "kernel": _array(kernel),
                "stride": _array(stride),
                "dilation": _array(dilation),
                "pads": _array(pads),
                "extra": _array(extra),
                "count_include_pad": BoolAttr.from_bool(count_include_pad),
                "per_channel": BoolAttr.from_bool(per_channel),
            },
            result_types=[TokenType()],
        )

    def verify_(self) -> None:
        mode = self.mode.data
        if (mode == DwpuMode.CONV) != (self.weights is not None):
            raise VerifyException("weights are given in conv mode, and only there")
        needs_table = mode in (DwpuMode.CONV, DwpuMode.AVG, DwpuMode.GLOBAL_AVG)
        if needs_table != (self.requant is not None):
            raise VerifyException(f"{mode} mode {'needs' if needs_table else 'takes no'} requant")
        in_shape, out_shape = _mem(self.input).get_shape(), _mem(self.output).get_shape()
        if mode in (DwpuMode.GLOBAL_AVG, DwpuMode.GLOBAL_MAX):
            if out_shape != (in_shape[0], 1, 1, in_shape[3]):
                raise VerifyException(f"global pooling of {list(in_shape)} gives [N, 1, 1, C]")
        else:
            extra = _ints(self.extra)
            pads = _ints(self.pads)
            _verify_window(
                in_shape,
                out_shape,
                _ints(self.kernel),
                _ints(self.stride),
                (pads[0], pads[1], pads[2] + extra[0], pads[3] + extra[1]),
                _ints(self.dilation),
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
    """A DMA transfer: like-to-like between two buffers or views, or a strided pattern.

    With `sizes`, the transfer walks that block (innermost last) with `src_strides` and
    `dst_strides` (in elements) from the start of `source` and `dest`: any permutation,
    gather of rows or interleave (layout changes, concatenation, upsampling) is one DMA.
    The core DMA moves data between any two memories; the system DMA between DDR and L2.
    """

    name = "aipu.dma"
    UNIT: ClassVar[Unit] = Unit.DMA

    source = operand_def(AnyMemoryType)
    dest = operand_def(AnyMemoryType)
    deps = var_operand_def(TokenType)
    engine = prop_def(DmaEngineAttr)
    channel = prop_def(IntegerAttr[I64], default_value=_i64(0))
    sizes = opt_prop_def(DenseArrayBase.constr(i64))
    src_strides = opt_prop_def(DenseArrayBase.constr(i64))
    dst_strides = opt_prop_def(DenseArrayBase.constr(i64))
    offsets = opt_prop_def(DenseArrayBase.constr(i64))
    """[source, dest] element offsets where the pattern starts."""
    done = result_def(TokenType)

    traits = _TASK_TRAITS
    irdl_options = (ParsePropInAttrDict(),)

    assembly_format = (
        "$engine `ins` `(` $source `:` type($source) `)` `outs` `(` $dest `:` type($dest) `)`"
        " (`after` $deps^)? attr-dict"
    )

    def __init__(
        self,
        engine: DmaEngine,
        source: SSAValue | Operation,
        dest: SSAValue | Operation,
        *,
        channel: int = 0,
        pattern: tuple[Sequence[int], Sequence[int], Sequence[int]] | None = None,
        offsets: tuple[int, int] = (0, 0),
        deps: Sequence[SSAValue | Operation] = (),
    ):
        properties = {"engine": DmaEngineAttr(engine), "channel": _i64(channel)}
        if pattern is not None:
            for key, values in zip(("sizes", "src_strides", "dst_strides"), pattern, strict=True):
                properties[key] = _array(values)
            if any(offsets):
                properties["offsets"] = _array(offsets)
        super().__init__(
            operands=[source, dest, deps], properties=properties, result_types=[TokenType()]
        )

    def pattern(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
        if self.sizes is None or self.src_strides is None or self.dst_strides is None:
            return None
        return _ints(self.sizes), _ints(self.src_strides), _ints(self.dst_strides)

    def pattern_offsets(self) -> tuple[int, int]:
        return (0, 0) if self.offsets is None else _ints(self.offsets)  # type: ignore[return-value]

    def verify_(self) -> None:
        src, dst = _mem(self.source), _mem(self.dest)
        if src.element_type != dst.element_type:
            raise VerifyException(f"DMA copies like to like, got {src} to {dst}")
        given = [p is not None for p in (self.sizes, self.src_strides, self.dst_strides)]
        if any(given) and not all(given):
            raise VerifyException("a DMA pattern needs sizes, src_strides and dst_strides")
        pattern = self.pattern()
        if pattern is None and src.get_shape() != dst.get_shape():
            raise VerifyException(f"DMA copies like to like, got {src} to {dst}")
        if pattern is not None:
            sizes, src_strides, dst_strides = pattern
            if (
                not 1 <= len(sizes) <= MAX_DIMS
                or len(src_strides) != len(sizes)
                or len(dst_strides) != len(sizes)
            ):
                raise VerifyException(f"a DMA pattern has 1..{MAX_DIMS} axes, each with strides")
            ends = zip(
                ("source", "dest"),
                (src, dst),
                (src_strides, dst_strides),
                self.pattern_offsets(),
                strict=True,
            )
            for what, memory, strides, start in ends:
                pairs = list(zip(sizes, strides, strict=True))
                low = start + sum(min(0, (n - 1) * s) for n, s in pairs)
                high = start + sum(max(0, (n - 1) * s) for n, s in pairs)
                if min(sizes) < 1 or low < 0 or high >= memory.element_count:
                    raise VerifyException(f"DMA pattern reaches past the {what}")
        if self.engine.data == DmaEngine.SYSTEM and MemorySpace.L1 in (src.space, dst.space):
            raise VerifyException("the system DMA moves data between DDR and L2, not L1")
        if not 0 <= (channel := _int(self.channel)) < AIPU.core_dma_channels:
            raise VerifyException(
                f"DMA channel {channel} out of range 0..{AIPU.core_dma_channels - 1}"
            )
        _verify_deps(self, self.UNIT, self.deps)


@irdl_op_definition
class FillOp(IRDLOperation):
    """The DMA writes one int8 value into every element of a buffer or view (padding)."""

    name = "aipu.fill"
    UNIT: ClassVar[Unit] = Unit.DMA

    dest = operand_def(AnyMemoryType)
    deps = var_operand_def(TokenType)
    value = prop_def(IntegerAttr[I64])
    done = result_def(TokenType)

    traits = _TASK_TRAITS

    assembly_format = "$dest `:` type($dest) `value` $value (`after` $deps^)? attr-dict"

    def __init__(
        self, dest: SSAValue | Operation, value: int, deps: Sequence[SSAValue | Operation] = ()
    ):
        super().__init__(
            operands=[dest, deps], properties={"value": _i64(value)}, result_types=[TokenType()]
        )

    def verify_(self) -> None:
        _require_element("fill destination", self.dest, i8)
        if not _INT8_MIN <= _int(self.value) <= _INT8_MAX:
            raise VerifyException(f"fill value {_int(self.value)} out of int8 range")
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


_MICRO_OP_TRAITS = lazy_traits_def(lambda: (HasParent(DpuOp, EltwiseOp),))
_PURE_MICRO_OP_TRAITS = lazy_traits_def(lambda: (HasParent(DpuOp, EltwiseOp), Pure()))

TableType = base(BufferType) | base(ViewType) | base(TensorType)
"""A table read by a micro-op: a constant tensor before bufferization, memory after."""


@irdl_op_definition
class DpuLoadOp(IRDLOperation):
    """Loads the current tile of an operand (int8 codes, or int32) into a register."""

    name = "aipu.dpu.load"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.LOAD

    source = operand_def(AnyMemoryType)
    result = result_def(VRegType)

    traits = lazy_traits_def(lambda: (HasParent(DpuOp),))

    assembly_format = "$source attr-dict `:` type($source)"

    def __init__(self, source: SSAValue | Operation):
        super().__init__(operands=[source], result_types=[VRegType()])


@irdl_op_definition
class DpuStoreOp(IRDLOperation):
    """Stores a register of int8 codes into the current tile of an L1 operand."""

    name = "aipu.dpu.store"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.STORE

    value = operand_def(VRegType)
    dest = operand_def(AnyMemoryType)

    traits = lazy_traits_def(lambda: (HasParent(DpuOp),))

    assembly_format = "$value `,` $dest attr-dict `:` type($dest)"

    def __init__(self, value: SSAValue | Operation, dest: SSAValue | Operation):
        super().__init__(operands=[value, dest])

    def verify_(self) -> None:
        _require_l1("DPU store destination", self.dest)


@irdl_op_definition
class DpuYieldOp(IRDLOperation):
    """The register an `aipu.eltwise` program produces (its result tensor's codes)."""

    name = "aipu.dpu.yield"

    value = operand_def(VRegType)

    traits = lazy_traits_def(lambda: (IsTerminator(), HasParent(EltwiseOp)))

    assembly_format = "$value attr-dict"

    def __init__(self, value: SSAValue | Operation):
        super().__init__(operands=[value])


class _MicroOp(IRDLOperation):
    """A pure micro-op: registers in, one register out, immediates as properties."""

    MICRO: ClassVar[MicroOpcode]
    result = result_def(VRegType)
    traits = _PURE_MICRO_OP_TRAITS


class _UnaryMicroOp(_MicroOp):
    input = operand_def(VRegType)
    assembly_format = "$input attr-dict"

    def __init__(self, input: SSAValue | Operation):
        super().__init__(operands=[input], result_types=[VRegType()])


class _BinaryMicroOp(_MicroOp):
    lhs = operand_def(VRegType)
    rhs = operand_def(VRegType)
    assembly_format = "$lhs `,` $rhs attr-dict"

    def __init__(self, lhs: SSAValue | Operation, rhs: SSAValue | Operation):
        super().__init__(operands=[lhs, rhs], result_types=[VRegType()])


class _ImmediateMicroOp(_MicroOp):
    input = operand_def(VRegType)
    imm = prop_def(IntegerAttr[I64])
    assembly_format = "$input `,` $imm attr-dict"

    def __init__(self, input: SSAValue | Operation, imm: int):
        super().__init__(operands=[input], properties={"imm": _i64(imm)}, result_types=[VRegType()])


class _TableMicroOp(_MicroOp):
    input = operand_def(VRegType)
    table = operand_def(TableType)
    assembly_format = "$input `,` $table attr-dict `:` type($table)"

    def __init__(self, input: SSAValue | Operation, table: SSAValue | Operation):
        super().__init__(operands=[input, table], result_types=[VRegType()])

    def _table_shape(self) -> tuple[int, ...]:
        return tuple(self.table.type.get_shape())  # pyright: ignore[reportAttributeAccessIssue]


@irdl_op_definition
class DpuAddImmOp(_ImmediateMicroOp):
    """Integer lanes plus a constant (centring subtracts a zero point)."""

    name = "aipu.dpu.addi"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.ADDI


@irdl_op_definition
class DpuShiftLeftOp(_ImmediateMicroOp):
    name = "aipu.dpu.shli"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.SHLI

    def verify_(self) -> None:
        if not 0 <= _int(self.imm) <= 31:
            raise VerifyException(f"shift {_int(self.imm)} out of range 0..31")


@irdl_op_definition
class DpuAddOp(_BinaryMicroOp):
    """Lane-wise integer addition."""

    name = "aipu.dpu.add"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.ADD


@irdl_op_definition
class DpuSubOp(_BinaryMicroOp):
    name = "aipu.dpu.sub"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.SUB


@irdl_op_definition
class DpuMulOp(_BinaryMicroOp):
    """Lane-wise integer multiplication."""

    name = "aipu.dpu.mul"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.MUL


@irdl_op_definition
class DpuMaxOp(_BinaryMicroOp):
    name = "aipu.dpu.max"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.MAX


@irdl_op_definition
class DpuMinOp(_BinaryMicroOp):
    name = "aipu.dpu.min"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.MIN


class _FixedPointMicroOp(_MicroOp):
    input = operand_def(VRegType)
    multiplier = prop_def(IntegerAttr[I64])
    shift = prop_def(IntegerAttr[I64])

    def verify_(self) -> None:
        if not 0 <= _int(self.multiplier) < 2**31:
            raise VerifyException(f"multiplier {_int(self.multiplier)} out of range [0, 2**31)")
        if not 0 <= _int(self.shift) <= 62:
            raise VerifyException(f"shift {_int(self.shift)} out of range 0..62")


@irdl_op_definition
class DpuRescaleOp(_FixedPointMicroOp):
    """`numerics.requantize(x, multiplier, shift, 0)` kept in int32 (add's common scale)."""

    name = "aipu.dpu.rescale"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.RESCALE
    assembly_format = "$input `multiplier` $multiplier `shift` $shift attr-dict"

    def __init__(self, input: SSAValue | Operation, multiplier: int, shift: int):
        super().__init__(
            operands=[input],
            result_types=[VRegType()],
            properties={"multiplier": _i64(multiplier), "shift": _i64(shift)},
        )


@irdl_op_definition
class DpuRequantOp(_FixedPointMicroOp):
    """Requantizes integer lanes to int8 codes: `numerics.requantize` (round half up, clamp)."""

    name = "aipu.dpu.requant"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.REQUANT
    zero_point = prop_def(IntegerAttr[I64])
    assembly_format = (
        "$input `multiplier` $multiplier `shift` $shift `zero_point` $zero_point attr-dict"
    )

    def __init__(self, input: SSAValue | Operation, multiplier: int, shift: int, zero_point: int):
        super().__init__(
            operands=[input],
            result_types=[VRegType()],
            properties={
                "multiplier": _i64(multiplier),
                "shift": _i64(shift),
                "zero_point": _i64(zero_point),
            },
        )

    def verify_(self) -> None:
        super().verify_()
        if not _INT8_MIN <= (zp := _int(self.zero_point)) <= _INT8_MAX:
            raise VerifyException(f"zero point {zp} out of int8 range")


@irdl_op_definition
class DpuRequantTableOp(_TableMicroOp):
    """Per-channel requantization: a [C, 3] int32 table of multiplier, shift, zero point."""

    name = "aipu.dpu.requant_table"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.REQUANT_TABLE

    def verify_(self) -> None:
        shape = self._table_shape()
        if len(shape) != 2 or shape[1] != 3:
            raise VerifyException(f"a requantization table is [C, 3], got {list(shape)}")


@irdl_op_definition
class DpuLutOp(_TableMicroOp):
    """Looks each lane's int8 code up in a 256-entry table (any unary function)."""

    name = "aipu.dpu.lut"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.LUT

    def verify_(self) -> None:
        if (shape := self._table_shape()) != (AIPU.lut_entries,):
            raise VerifyException(f"a LUT has {AIPU.lut_entries} entries, got shape {list(shape)}")


@irdl_op_definition
class DpuClampOp(_MicroOp):
    name = "aipu.dpu.clamp"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.CLAMP
    input = operand_def(VRegType)
    low = prop_def(IntegerAttr[I64])
    high = prop_def(IntegerAttr[I64])
    assembly_format = "$input `,` $low `,` $high attr-dict"

    def __init__(self, input: SSAValue | Operation, low: int, high: int):
        super().__init__(
            operands=[input],
            result_types=[VRegType()],
            properties={"low": _i64(low), "high": _i64(high)},
        )


@irdl_op_definition
class DpuSelectOp(_MicroOp):
    """`if_non_negative` where `condition >= 0`, else `otherwise` (PReLU's two branches)."""

    name = "aipu.dpu.select"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.SELECT
    condition = operand_def(VRegType)
    if_non_negative = operand_def(VRegType)
    otherwise = operand_def(VRegType)
    assembly_format = "$condition `,` $if_non_negative `,` $otherwise attr-dict"

    def __init__(self, condition, if_non_negative, otherwise):
        super().__init__(
            operands=[condition, if_non_negative, otherwise], result_types=[VRegType()]
        )


@irdl_op_definition
class DpuIntToFloatOp(_UnaryMicroOp):
    """Integer lanes to float18 (exact for the small integers the DPU converts)."""

    name = "aipu.dpu.itof"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.ITOF


@irdl_op_definition
class DpuFloatAddOp(_BinaryMicroOp):
    name = "aipu.dpu.fadd"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.FADD


@irdl_op_definition
class DpuFloatMulOp(_BinaryMicroOp):
    name = "aipu.dpu.fmul"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.FMUL


@irdl_op_definition
class DpuFloatNegOp(_UnaryMicroOp):
    name = "aipu.dpu.fneg"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.FNEG


@irdl_op_definition
class DpuFloatReciprocalOp(_UnaryMicroOp):
    name = "aipu.dpu.frecip"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.FRECIP


@irdl_op_definition
class DpuFloatRsqrtOp(_UnaryMicroOp):
    """float18 `1 / sqrt(x)` (`numerics.f18_rsqrt`; LayerNorm's inverse deviation)."""

    name = "aipu.dpu.frsqrt"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.FRSQRT


@irdl_op_definition
class DpuFloatVectorOp(_MicroOp):
    """float18 constants along the innermost axis, the same in every row: a float32 table
    with one entry per index of that axis (LayerNorm's gamma and beta)."""

    name = "aipu.dpu.fvec"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.FVEC
    table = operand_def(TableType)
    assembly_format = "$table attr-dict `:` type($table)"

    def __init__(self, table: SSAValue | Operation):
        super().__init__(operands=[table], result_types=[VRegType()])

    def verify_(self) -> None:
        shape = tuple(self.table.type.get_shape())  # pyright: ignore[reportAttributeAccessIssue]
        if len(shape) != 1:
            raise VerifyException(f"a float vector table is 1-D, got shape {list(shape)}")


@irdl_op_definition
class DpuFloatConstantOp(_MicroOp):
    """A float18 constant in every lane."""

    name = "aipu.dpu.fconst"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.FCONST
    value = prop_def(FloatAttr[Float32Type])
    assembly_format = "$value attr-dict"

    def __init__(self, value: float):
        super().__init__(properties={"value": FloatAttr(value, f32)}, result_types=[VRegType()])


@irdl_op_definition
class DpuRowMaxOp(_UnaryMicroOp):
    """The maximum over the innermost axis of the tile, in every lane of the row."""

    name = "aipu.dpu.rmax"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.RMAX


@irdl_op_definition
class DpuRowSumOp(_UnaryMicroOp):
    """The float18 sum over the innermost axis (`numerics.f18_sum` order), in every lane."""

    name = "aipu.dpu.rsum"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.RSUM


@irdl_op_definition
class DpuExpLutOp(_TableMicroOp):
    """Softmax's exp table: float18 entry [d] for 0 <= d < 256, else exactly 0."""

    name = "aipu.dpu.explut"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.EXPLUT

    def verify_(self) -> None:
        if (shape := self._table_shape()) != (AIPU.lut_entries,):
            raise VerifyException(
                f"an exp table has {AIPU.lut_entries} entries, got shape {list(shape)}"
            )


@irdl_op_definition
class DpuFloatToIntOp(_MicroOp):
    """float18 lanes to int8 codes: clamp(rint(x) + zero_point) (softmax's last step)."""

    name = "aipu.dpu.ftoi"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.FTOI
    input = operand_def(VRegType)
    zero_point = prop_def(IntegerAttr[I64])
    assembly_format = "$input `zero_point` $zero_point attr-dict"

    def __init__(self, input: SSAValue | Operation, zero_point: int):
        super().__init__(
            operands=[input], result_types=[VRegType()], properties={"zero_point": _i64(zero_point)}
        )


@irdl_op_definition
class DpuSpillOp(IRDLOperation):
    """Stores a register (the whole tile) into slot `slot` of an L1 spill buffer
    [slots, slot bytes]; `float_lanes` stores float32 lanes, else int32. Register
    allocation (aipu-dpu-regalloc) inserts it."""

    name = "aipu.dpu.spill"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.SPILL

    value = operand_def(VRegType)
    scratch = operand_def(BufferType)
    slot = prop_def(IntegerAttr[I64])
    float_lanes = prop_def(BoolAttr, default_value=BoolAttr.from_bool(False))

    traits = lazy_traits_def(lambda: (HasParent(DpuOp),))
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$value `to` $scratch `slot` $slot attr-dict `:` type($scratch)"

    def __init__(
        self, value: SSAValue | Operation, scratch: SSAValue, slot: int, float_lanes: bool
    ):
        super().__init__(
            operands=[value, scratch],
            properties={"slot": _i64(slot), "float_lanes": BoolAttr.from_bool(float_lanes)},
        )

    def verify_(self) -> None:
        _verify_spill_slot(self.scratch, _int(self.slot))


@irdl_op_definition
class DpuReloadOp(IRDLOperation):
    """Loads a register back from the spill slot `aipu.dpu.spill` stored it in."""

    name = "aipu.dpu.reload"
    MICRO: ClassVar[MicroOpcode] = MicroOpcode.RELOAD

    scratch = operand_def(BufferType)
    slot = prop_def(IntegerAttr[I64])
    float_lanes = prop_def(BoolAttr, default_value=BoolAttr.from_bool(False))
    result = result_def(VRegType)

    traits = lazy_traits_def(lambda: (HasParent(DpuOp),))
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$scratch `slot` $slot attr-dict `:` type($scratch)"

    def __init__(self, scratch: SSAValue, slot: int, float_lanes: bool):
        super().__init__(
            operands=[scratch],
            properties={"slot": _i64(slot), "float_lanes": BoolAttr.from_bool(float_lanes)},
            result_types=[VRegType()],
        )

    def verify_(self) -> None:
        _verify_spill_slot(self.scratch, _int(self.slot))


def _verify_spill_slot(scratch: SSAValue, slot: int) -> None:
    _require_l1("a spill buffer", scratch)
    shape = _mem(scratch).get_shape()
    if len(shape) != 2 or not 0 <= slot < shape[0]:
        raise VerifyException(f"spill slot {slot} is not a row of the [slots, bytes] buffer")


DPU_MICRO_OPS = (
    DpuLoadOp,
    DpuStoreOp,
    DpuYieldOp,
    DpuAddImmOp,
    DpuShiftLeftOp,
    DpuAddOp,
    DpuSubOp,
    DpuMulOp,
    DpuMaxOp,
    DpuMinOp,
    DpuRescaleOp,
    DpuRequantOp,
    DpuRequantTableOp,
    DpuLutOp,
    DpuClampOp,
    DpuSelectOp,
    DpuIntToFloatOp,
    DpuFloatAddOp,
    DpuFloatMulOp,
    DpuFloatNegOp,
    DpuFloatReciprocalOp,
    DpuFloatRsqrtOp,
    DpuFloatVectorOp,
    DpuFloatConstantOp,
    DpuRowMaxOp,
    DpuRowSumOp,
    DpuExpLutOp,
    DpuFloatToIntOp,
    DpuSpillOp,
    DpuReloadOp,
)


@irdl_op_definition
class DpuOp(IRDLOperation):
    """A DPU program: its micro-ops run once per 64-lane vector of the stored tiles."""

    name = "aipu.dpu"
    UNIT: ClassVar[Unit] = Unit.DPU

    program = opt_operand_def(BufferType)
    """Where the encoded micro-ops live (allocated by bufferization)."""
    deps = var_operand_def(TokenType)
    body = region_def("single_block")
    done = result_def(TokenType)

    traits = lazy_traits_def(lambda: (HasAncestor(CoreOp), NoTerminator()))
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(
        self,
        body: Region | Block | Sequence[Operation] = (),
        deps: Sequence[SSAValue | Operation] = (),
        program: SSAValue | Operation | None = None,
    ):
        if not isinstance(body, Region):
            body = Region(body if isinstance(body, Block) else Block(body))
        super().__init__(operands=[program, deps], regions=[body], result_types=[TokenType()])

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
        if self.program is not None:
            printer.print_string(" program(")
            printer.print_operand(self.program)
            printer.print_string(" : ")
            printer.print_attribute(self.program.type)
            printer.print_string(")")
        if self.deps:
            printer.print_string(" after ")
            printer.print_list(self.deps, printer.print_operand)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_empty_block=False)

    @classmethod
    def parse(cls, parser: Parser) -> DpuOp:
        program = None
        if parser.parse_optional_keyword("program"):
            parser.parse_punctuation("(")
            unresolved = parser.parse_unresolved_operand()
            parser.parse_punctuation(":")
            program = parser.resolve_operand(unresolved, parser.parse_type())
            parser.parse_punctuation(")")
        deps: list[SSAValue] = []
        if parser.parse_optional_keyword("after"):
            deps = parser.parse_comma_separated_list(
                Parser.Delimiter.NONE,
                lambda: parser.resolve_operand(parser.parse_unresolved_operand(), TokenType()),
            )
        attributes = parser.parse_optional_attr_dict_with_keyword()
        op = cls(_parse_body(parser), deps, program)
        if attributes is not None:
            op.attributes |= attributes.data
        return op


# ---------------------------------------------------------------------------------------
# Layers: whole-tensor ops on one unit, between unit mapping and bufferization
# ---------------------------------------------------------------------------------------
#
# `convert-axq-to-aipu` maps every accelerated axq op to one layer (or a few) on device
# tensors: physical shapes (NHWC for 4-D activations, row-major otherwise) of int8 codes,
# with all quantization parameters folded into properties and constant tables. Tiling,
# promotion and depth-first scheduling annotate layers (`tiles`, `home`, `dfs_group`);
# `mem-bufferize` expands each into buffers, tile loops and tasks.


@irdl_attr_definition
class TilingAttr(ParametrizedAttribute):
    """The rules by which `aipu-tile` tiles, recorded on the module (`aipu.tiling`) for
    `aipu-dfs`, which tiles depth-first groups by the same rules: the forced height tiles
    (`none`: searched) and whether weight buffers (IMC weights, DWPU kernels) count
    against L1.

        builtin.module attributes {aipu.tiling = #aipu.tiling<force_h_tiling = 4,
                                                              ignore_weight_buffers = true>}
    """

    name = "aipu.tiling"

    force_h_tiling: IntegerAttr[I64] | NoneAttr
    ignore_weight_buffers: BoolAttr

    def __init__(self, force_h_tiling: int | None, ignore_weight_buffers: bool):
        forced = NoneAttr() if force_h_tiling is None else _i64(force_h_tiling)
        super().__init__(forced, BoolAttr.from_bool(ignore_weight_buffers))

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            parser.parse_keyword("force_h_tiling")
            parser.parse_punctuation("=")
            forced = None if parser.parse_optional_keyword("none") else parser.parse_integer()
            parser.parse_punctuation(",")
            parser.parse_keyword("ignore_weight_buffers")
            parser.parse_punctuation("=")
            ignore = parser.parse_boolean()
        return (NoneAttr() if forced is None else _i64(forced), BoolAttr.from_bool(ignore))

    def print_parameters(self, printer: Printer) -> None:
        forced = self.force_h_tiling
        shown = "none" if isinstance(forced, NoneAttr) else _int(forced)
        ignore = str(_flag(self.ignore_weight_buffers)).lower()
        printer.print_string(f"<force_h_tiling = {shown}, ignore_weight_buffers = {ignore}>")

    def forced_height(self, extent: int) -> int | None:
        """The height tiles of `extent` rows when forced (never more than the rows)."""
        forced = self.force_h_tiling
        return None if isinstance(forced, NoneAttr) else min(_int(forced), extent)

    def l1_bytes(self, activations: int, weights: int) -> int:
        """The L1 bytes a choice of tiles must fit: weight buffers count unless ignored."""
        return activations + (0 if _flag(self.ignore_weight_buffers) else weights)


class _LayerOp(IRDLOperation):
    """A layer: its result's memory home and tiling, once chosen, are properties."""

    home = opt_prop_def(MemorySpaceAttr)
    tiles = opt_prop_def(DenseArrayBase.constr(i64))
    """[height tiles, channel tiles] chosen by aipu-tile."""
    dfs_group = opt_prop_def(IntegerAttr[I64])
    """Layers of one depth-first group run tile by tile together (aipu-dfs)."""

    irdl_options = (ParsePropInAttrDict(),)

    def tile_counts(self) -> tuple[int, int]:
        return (1, 1) if self.tiles is None else _ints(self.tiles)  # type: ignore[return-value]


def _device_shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


@irdl_op_definition
class ConstOp(IRDLOperation):
    """A constant device tensor: packed weights, requantization tables, LUTs."""

    name = "aipu.const"
    value = prop_def(DenseIntOrFPElementsAttr)
    home = opt_prop_def(MemorySpaceAttr)
    pinned = opt_prop_def(UnitAttr)
    """The home is fixed by a config field (`dpu_constants_home`): mem-promote keeps it."""
    result = result_def(TensorType)
    traits = traits_def(Pure(), ConstantLike())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, value: DenseIntOrFPElementsAttr):
        super().__init__(properties={"value": value}, result_types=[value.type])


def _verify_io_layout(
    logical: tuple[int, ...], perm: Sequence[int], stored: tuple[int, ...], padded: bool
) -> None:
    """The stored shape is the logical one permuted by `perm` (or, `padded`, covers it)."""
    if sorted(perm) != list(range(len(logical))):
        raise VerifyException(f"perm {list(perm)} is not a permutation of {len(logical)} axes")
    wanted = tuple(logical[p] for p in perm)
    if not padded and stored != wanted:
        raise VerifyException("device shape must be the logical shape permuted by perm")
    if padded and (
        len(stored) != len(wanted) or any(s < w for s, w in zip(stored, wanted, strict=True))
    ):
        raise VerifyException(
            "a padded device tensor must cover the logical shape permuted by perm"
        )


@irdl_op_definition
class ToDeviceOp(IRDLOperation):
    """A host tensor enters the accelerator: logical axes reordered by `perm`, int8 codes.

    With `padded`, the device tensor is larger (channels padded to whole PWORDs for an MVM
    layer without swICR): the host writes the codes into its leading block and the zero
    point of the input's type everywhere else (`remove_io_padding_and_layout_transform`)."""

    name = "aipu.to_device"
    input = operand_def(TensorType)
    home = opt_prop_def(MemorySpaceAttr)
    perm = prop_def(DenseArrayBase.constr(i64))
    padded = opt_prop_def(UnitAttr)
    result = result_def(TensorType)
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(
        self, input: SSAValue, perm: Sequence[int], result_type: Attribute, padded: bool = False
    ):
        properties: dict[str, Attribute] = {"perm": _array(perm)}
        if padded:
            properties["padded"] = UnitAttr()
        super().__init__(operands=[input], properties=properties, result_types=[result_type])

    def verify_(self) -> None:
        _verify_io_layout(
            _device_shape(self.input),
            _ints(self.perm),
            _device_shape(self.result),
            self.padded is not None,
        )


@irdl_op_definition
class FromDeviceOp(IRDLOperation):
    """A device tensor returns to the host: `perm` says which logical axis each one is.

    With `cropped`, the device tensor is larger than the result (channels padded to whole
    PWORDs) and the host keeps its leading block of the result's shape
    (`remove_io_padding_and_layout_transform`)."""

    name = "aipu.from_device"
    input = operand_def(TensorType)
    perm = prop_def(DenseArrayBase.constr(i64))
    cropped = opt_prop_def(UnitAttr)
    result = result_def(TensorType)
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(
        self,
        input: SSAValue,
        perm: Sequence[int],
        result_type: Attribute,
        cropped: bool = False,
    ):
        properties: dict[str, Attribute] = {"perm": _array(perm)}
        if cropped:
            properties["cropped"] = UnitAttr()
        super().__init__(operands=[input], properties=properties, result_types=[result_type])

    def verify_(self) -> None:
        _verify_io_layout(
            _device_shape(self.result),
            _ints(self.perm),
            _device_shape(self.input),
            self.cropped is not None,
        )


@irdl_op_definition
class ConvLayerOp(_LayerOp):
    """An MVM layer: convolution (or dense, as a 1x1 convolution) on an NHWC tensor.

    `weights` is the [kh * kw * in_c, N * icr] int8 matrix the IMC holds (K rows in
    im2col order: taps major, `in_c` lanes each; ICR copies side by side), or one such
    matrix per image [batch, K, N] when the weights are computed (attention's matmul, the
    IMC loaded at run time, centred by `w_zp`); `table` the
    [N, 4] int32 bias, multiplier, shift and output zero point of each output channel.

    `image_axes` says where the input, the weights and the result hold the images of a
    batch: axis 0 (`[images, H, W, C]`, weights `[images, K, N]`), or attention heads stored
    token-major, read and written in place through strided views: axis 2 of
    `[1, H, images, C]` (each image one column wide) and axis 1 of weights `[K, images, N]`.
    """

    name = "aipu.conv"
    input = operand_def(TensorType)
    weights = operand_def(TensorType)
    table = operand_def(TensorType)
    result = result_def(TensorType)

    in_c = prop_def(IntegerAttr[I64])
    channels = opt_prop_def(IntegerAttr[I64])
    """Input channels of each tap (absent: all `in_c`; the rest is zero-point padding)."""
    k_chunk = prop_def(IntegerAttr[I64], default_value=_i64(AIPU.mvm_k))
    """Weight rows per IMC weightset (fewer under `mvm_utilization_limit`)."""
    icr = prop_def(IntegerAttr[I64], default_value=_i64(1))
    swicr = prop_def(BoolAttr, default_value=BoolAttr.from_bool(False))
    in_zp = prop_def(IntegerAttr[I64], default_value=_i64(0))
    w_zp = prop_def(IntegerAttr[I64], default_value=_i64(0))
    kernel = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    stride = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    dilation = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    pads = prop_def(DenseArrayBase.constr(i64), default_value=_NO_PADS)
    image_axes = prop_def(DenseArrayBase.constr(i64), default_value=_IMAGES_MAJOR)

    assembly_format = (
        "$input `,` $weights `,` $table attr-dict `:` functional-type(operands, results)"
    )

    def __init__(
        self,
        input: SSAValue,
        weights: SSAValue,
        table: SSAValue,
        result_type: Attribute,
        *,
        in_c: int,
        channels: int | None = None,
        k_chunk: int = AIPU.mvm_k,
        icr: int = 1,
        swicr: bool = False,
        in_zp: int = 0,
        w_zp: int = 0,
        kernel=(1, 1),
        stride=(1, 1),
        dilation=(1, 1),
        pads=(0, 0, 0, 0),
        image_axes=(0, 0, 0),
    ):
        super().__init__(
            operands=[input, weights, table],
            result_types=[result_type],
            properties={
                "image_axes": _array(image_axes),
                "in_c": _i64(in_c),
                "channels": None if channels is None else _i64(channels),
                "k_chunk": _i64(k_chunk),
                "icr": _i64(icr),
                "swicr": BoolAttr.from_bool(swicr),
                "in_zp": _i64(in_zp),
                "w_zp": _i64(w_zp),
                "kernel": _array(kernel),
                "stride": _array(stride),
                "dilation": _array(dilation),
                "pads": _array(pads),
            },
        )

    @property
    def out_channels(self) -> int:
        return _device_shape(self.result)[3]

    def image_shape(self, value: SSAValue) -> tuple[int, ...]:
        """The input's or the result's shape as [images, H, W, C], the weights' as
        [images, K, N] (or [K, N]), wherever `image_axes` puts the images."""
        axis = _ints(self.image_axes)[[self.input, self.weights, self.result].index(value)]
        shape = _device_shape(value)
        if axis == 0:
            return shape
        if value is self.weights:
            return (shape[1], shape[0], shape[2])
        return (shape[2], shape[1], 1, shape[3])

    def _verify_image_axes(self) -> None:
        axes = _ints(self.image_axes)
        allowed = ((0, 2), (0, 1), (0, 2))
        values = (self.input, self.weights, self.result)
        for axis, choices, value in zip(axes, allowed, values, strict=True):
            shape = _device_shape(value)
            if axis not in choices or (axis == 2 and shape[0] != 1):
                raise VerifyException(
                    f"image_axes {list(axes)}: images sit on axis 0, on axis 2 of an input or "
                    f"result [1, H, images, C] or on axis 1 of weights [K, images, N]; got "
                    f"{list(shape)}"
                )
        if axes[1] == 1 and len(_device_shape(self.weights)) != 3:
            raise VerifyException("weights with images on axis 1 are [K, images, N]")

    def verify_(self) -> None:
        if len(self.image_axes.get_values()) != 3:
            raise VerifyException("image_axes gives the input's, weights' and result's axis")
        self._verify_image_axes()
        in_shape, out_shape = self.image_shape(self.input), self.image_shape(self.result)
        _verify_window(
            in_shape,
            out_shape,
            _ints(self.kernel),
            _ints(self.stride),
            _ints(self.pads),
            _ints(self.dilation),
        )
        kh, kw = _ints(self.kernel)
        depth = kh * kw * _int(self.in_c)
        expected = (depth, out_shape[3] * _int(self.icr))
        weights = self.image_shape(self.weights)
        if weights not in (expected, (in_shape[0], *expected)):
            raise VerifyException(
                f"weights must be {list(expected)} (or one such matrix per image, "
                f"{[in_shape[0], *expected]}), got {list(weights)}"
            )
        if _device_shape(self.table) != (out_shape[3], 4):
            raise VerifyException(f"the table of {out_shape[3]} channels is [{out_shape[3]}, 4]")


@irdl_op_definition
class PoolLayerOp(_LayerOp):
    """A DWPU layer on an NHWC tensor (see `DwpuOp` for the tables)."""

    name = "aipu.pool"
    input = operand_def(TensorType)
    weights = opt_operand_def(TensorType)
    table = opt_operand_def(TensorType)
    result = result_def(TensorType)

    mode = prop_def(DwpuModeAttr)
    kernel = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    stride = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    dilation = prop_def(DenseArrayBase.constr(i64), default_value=_ONE_ONE)
    pads = prop_def(DenseArrayBase.constr(i64), default_value=_NO_PADS)
    extra = prop_def(DenseArrayBase.constr(i64), default_value=_array((0, 0)))
    count_include_pad = prop_def(BoolAttr, default_value=BoolAttr.from_bool(False))
    per_channel = prop_def(BoolAttr, default_value=BoolAttr.from_bool(False))

    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = (
        "$mode $input `:` type($input) (`weights` $weights^ `:` type($weights))?"
        " (`table` $table^ `:` type($table))? attr-dict `->` type($result)"
    )

    def __init__(
        self,
        mode: DwpuMode,
        input: SSAValue,
        result_type: Attribute,
        *,
        weights: SSAValue | None = None,
        table: SSAValue | None = None,
        kernel=(1, 1),
        stride=(1, 1),
        dilation=(1, 1),
        pads=(0, 0, 0, 0),
        extra=(0, 0),
        count_include_pad: bool = False,
        per_channel: bool = False,
    ):
        super().__init__(
            operands=[input, weights, table],
            result_types=[result_type],
            properties={
                "mode": DwpuModeAttr(mode),
                "kernel": _array(kernel),
                "stride": _array(stride),
                "dilation": _array(dilation),
                "pads": _array(pads),
                "extra": _array(extra),
                "count_include_pad": BoolAttr.from_bool(count_include_pad),
                "per_channel": BoolAttr.from_bool(per_channel),
            },
        )

    @property
    def is_global(self) -> bool:
        return self.mode.data in (DwpuMode.GLOBAL_AVG, DwpuMode.GLOBAL_MAX)

    def verify_(self) -> None:
        in_shape, out_shape = _device_shape(self.input), _device_shape(self.result)
        if self.is_global:
            if out_shape != (in_shape[0], 1, 1, in_shape[3]):
                raise VerifyException(f"global pooling of {list(in_shape)} gives [N, 1, 1, C]")
            return
        pads, extra = _ints(self.pads), _ints(self.extra)
        _verify_window(
            in_shape,
            out_shape,
            _ints(self.kernel),
            _ints(self.stride),
            (pads[0], pads[1], pads[2] + extra[0], pads[3] + extra[1]),
            _ints(self.dilation),
        )


@irdl_op_definition
class EltwiseOp(_LayerOp):
    """A DPU layer: its micro-op program maps the inputs' codes to the result's, lane-wise.

    The block arguments are the registers holding each input's current vector (inputs
    broadcast to the result's shape along their size-1 axes); `aipu.dpu.yield` gives the
    result's codes. Row micro-ops (rmax, rsum) reduce over the innermost axis.
    """

    name = "aipu.eltwise"
    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)
    body = region_def("single_block")

    assembly_format = "`(` $inputs `)` attr-dict `:` functional-type($inputs, $result) $body"

    def __init__(self, inputs: Sequence[SSAValue], result_type: Attribute, body: Region):
        super().__init__(operands=[inputs], result_types=[result_type], regions=[body])

    def verify_(self) -> None:
        block = self.body.block
        if len(block.args) != len(self.inputs) or any(
            not isinstance(arg.type, VRegType) for arg in block.args
        ):
            raise VerifyException("an eltwise body takes one !aipu.vreg per input")
        if not isinstance(block.last_op, DpuYieldOp):
            raise VerifyException("an eltwise body ends with aipu.dpu.yield")
        shape = _device_shape(self.result)
        for value in self.inputs:
            in_shape = _device_shape(value)
            if len(in_shape) != len(shape) or any(
                d not in (1, s) for d, s in zip(in_shape, shape, strict=True)
            ):
                raise VerifyException(f"input {list(in_shape)} does not broadcast to {list(shape)}")


COPY_HEADER = 4
"""A move's copy is [input, rank, src_offset, dst_offset, sizes, src_strides, dst_strides]."""

Copy = tuple[int, int, int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]
"""(input index, src offset, dst offset, sizes, src strides, dst strides), in elements."""


@irdl_op_definition
class MoveLayerOp(_LayerOp):
    """A DMA layer: the result is `fill` (if given), then every copy (element offsets and
    strides into the dense input it names and the dense result) applied in order."""

    name = "aipu.move"
    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)
    copies = prop_def(DenseArrayBase.constr(i64))
    fill = opt_prop_def(IntegerAttr[I64])
    assembly_format = "`(` $inputs `)` attr-dict `:` functional-type($inputs, $result)"

    def __init__(
        self,
        inputs: Sequence[SSAValue],
        result_type: Attribute,
        copies: Sequence[Copy],
        fill: int | None = None,
    ):
        flat: list[int] = []
        for source, src_offset, dst_offset, sizes, src_strides, dst_strides in copies:
            flat += [source, len(sizes), src_offset, dst_offset, *sizes, *src_strides]
            flat += dst_strides
        super().__init__(
            operands=[inputs],
            result_types=[result_type],
            properties={
                "copies": _array(flat),
                "fill": None if fill is None else _i64(fill),
            },
        )

    def copy_list(self) -> list[Copy]:
        flat, copies, index = _ints(self.copies), [], 0
        while index < len(flat):
            source, rank, src, dst = flat[index : index + COPY_HEADER]
            index += COPY_HEADER
            parts = [tuple(flat[index + k * rank : index + (k + 1) * rank]) for k in range(3)]
            index += 3 * rank
            copies.append((source, src, dst, *parts))
        return copies

    def verify_(self) -> None:
        try:
            copies = self.copy_list()
        except ValueError:
            raise VerifyException("malformed copy list") from None
        result_count = math.prod(_device_shape(self.result))
        for source, src, dst, sizes, src_strides, dst_strides in copies:
            if not 0 <= source < len(self.inputs):
                raise VerifyException(f"a copy reads input {source} of {len(self.inputs)}")
            if not 1 <= len(sizes) <= MAX_DIMS or min(sizes) < 1:
                raise VerifyException(f"a copy has 1..{MAX_DIMS} axes of positive size")
            bounds = (
                ("input", src, src_strides, math.prod(_device_shape(self.inputs[source]))),
                ("result", dst, dst_strides, result_count),
            )
            for what, start, strides, count in bounds:
                pairs = list(zip(sizes, strides, strict=True))
                low = start + sum(min(0, (n - 1) * s) for n, s in pairs)
                high = start + sum(max(0, (n - 1) * s) for n, s in pairs)
                if low < 0 or high >= count:
                    raise VerifyException(f"a copy reaches outside the {what}")


@irdl_op_definition
class ReinterpretOp(IRDLOperation):
    """The same bytes seen with another shape (a reshape that moves nothing)."""

    name = "aipu.reinterpret"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self) -> None:
        if math.prod(_device_shape(self.input)) != math.prod(_device_shape(self.result)):
            raise VerifyException("a reinterpretation keeps the element count")


LAYER_OPS = (ConvLayerOp, PoolLayerOp, EltwiseOp, MoveLayerOp)


# ---------------------------------------------------------------------------------------
# Segments: what the host launches
# ---------------------------------------------------------------------------------------


@irdl_op_definition
class SegmentOp(IRDLOperation):
    """One accelerated segment after bufferization: its IO buffers and its cores' streams.

    `input_perms`/`output_perms` give, per IO buffer, the logical axis of each stored axis
    (the host transposes to and from them)."""

    name = "aipu.segment"
    index = prop_def(IntegerAttr[I64])
    inputs = var_operand_def(BufferType)
    outputs = var_operand_def(BufferType)
    input_perms = prop_def(DenseArrayBase.constr(i64))
    output_perms = prop_def(DenseArrayBase.constr(i64))
    body = region_def("single_block")
    traits = traits_def(NoTerminator())
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = (
        "$index `ins` `(` $inputs `:` type($inputs) `)` `outs` `(` $outputs `:` type($outputs)"
        " `)` attr-dict-with-keyword $body"
    )

    def __init__(
        self,
        index: int,
        inputs: Sequence[SSAValue],
        outputs: Sequence[SSAValue],
        input_perms: Sequence[Sequence[int]],
        output_perms: Sequence[Sequence[int]],
        body: Region,
    ):
        super().__init__(
            operands=[inputs, outputs],
            regions=[body],
            properties={
                "index": _i64(index),
                "input_perms": _array([a for p in input_perms for a in p]),
                "output_perms": _array([a for p in output_perms for a in p]),
            },
        )

    def perms(self, which: str) -> list[tuple[int, ...]]:
        values = self.inputs if which == "inputs" else self.outputs
        flat = _ints(self.input_perms if which == "inputs" else self.output_perms)
        perms, index = [], 0
        for value in values:
            rank = len(_mem(value).get_shape())
            perms.append(flat[index : index + rank])
            index += rank
        return perms


@irdl_op_definition
class LaunchOp(IRDLOperation):
    """The host runs accelerated segment `index` on these int8 tensors."""

    name = "aipu.launch"
    index = prop_def(IntegerAttr[I64])
    inputs = var_operand_def(TensorType)
    outputs = var_result_def(TensorType)
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$index `(` $inputs `)` attr-dict `:` functional-type($inputs, $outputs)"

    def __init__(self, index: int, inputs: Sequence[SSAValue], result_types: Sequence[Attribute]):
        super().__init__(
            operands=[inputs], result_types=[result_types], properties={"index": _i64(index)}
        )


TASK_OPS = (ImcLoadOp, MvmOp, DwpuOp, DmaOp, FillOp, DpuOp)
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
        FillOp,
        TokenSignalOp,
        TokenWaitOp,
        DpuOp,
        *DPU_MICRO_OPS,
        ConstOp,
        ToDeviceOp,
        FromDeviceOp,
        *LAYER_OPS,
        ReinterpretOp,
        SegmentOp,
        LaunchOp,
    ],
    [UnitKindAttr, DwpuModeAttr, DmaEngineAttr, TokenType, VRegType, TilingAttr],
)
