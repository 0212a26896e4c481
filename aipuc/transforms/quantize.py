"""`axq-quantize`: the float axq graph becomes an int8 graph with integer semantics.

The pass reads the calibration ranges that `aipuc.quantization.calibration.annotate` left on
the IR (`axq.calibration`), so it is a pure IR -> IR pass that xdsl-opt can run:

    xdsl-opt model.mlir -p 'axq-quantize{quantization_scheme=per_tensor_min_max}'

Quantization parameters (design.md, "Numerics contract")
    Activations: int8, asymmetric, per tensor, from the calibrated range of the scheme
    (``per_tensor_histogram``: PyTorch's histogram observer; ``per_tensor_min_max``: min-max;
    ``hybrid_per_tensor_per_channel``: histogram, except that tensors read by depthwise
    convolutions are per channel (axis 1) from per-channel min-max) through
    ``numerics.choose_qparams_asymmetric``. Weights: int8 symmetric in [-127, 127] per
    output channel by min-max (conv/dense axis 0, conv-transpose axis 1). Depthwise weights
    are per tensor unless ``quantize_dw_channel_wise``. Bias: int32 at scale s_in * s_w per
    output channel, within int32 minus the largest sum of products the layer can accumulate
    (a weight scale is raised where a bias would not fit), so accumulators never overflow.
    Constant activations (e.g. the [1, C, 1, 1] operand of an add) are per tensor from
    their own min-max. A per-tensor activation that only tables read keeps codes only for
    where the tables are not flat at their output's resolution (a SiLU's negative tail, a
    sigmoid's saturation): those inputs clamp to the plateau's code, the rest get finer steps.

Which tensors share quantization parameters
    Data-movement ops and monotone clamps keep their input's codes, so their output has
    exactly the input's type: reshape, transpose, slice, split, pad, max pool, global max
    pool, resize and clip. Such ops chain tensors into groups with one type. The type of a
    group comes from the range of its last tensor reached through single-use links: for
    ``conv -> clip(0, 6)`` the conv's output takes the clip's calibrated range, so the
    conv's requantization saturates exactly where ReLU6 clamps (activation fusion).
    Linear resize is not looked through (interpolation does not commute with a clamp).
    A group is per channel only in the hybrid scheme, when one of its tensors feeds a
    depthwise conv, its first tensor comes from an op that requantizes per channel
    (conv, conv-transpose, add, sub, mul, prelu, average pools) and every op in it keeps
    the channel axis. Consumers that need per-tensor inputs get an ``axq.requantize`` to
    the group's histogram range. Concat, max and min requantize every input whose type
    differs from the output's own calibrated type, then only move or select codes; an
    input used only there is produced in the output's type directly.

Integer semantics of the quantized ops (implemented in aipuc.runtime.integer_reference)
    Notation: x_c = q - zp (the centred code), M(r) = numerics.quantize_multiplier(r), and
    requant(acc, r) = numerics.requantize(acc, *M(r), zp_out) (round half up, clamp; r is
    capped at 2**8, beyond which every nonzero accumulator saturates anyway).
    conv2d / conv_transpose2d / dense: acc = sum x_c * q_w + q_b, exact int32 (padding
        contributes 0); out = requant(acc, s_bias / s_out) per output channel.
    matmul: acc = sum a_c * b_c; out = requant(acc, s_a * s_b / s_out).
    add / sub (TFLite style): a' = requant_0((a_c << 20), s_a / (2 max(s_a, s_b))), same for
        b; out = requant(a' +- b', 2 max(s_a, s_b) / (2**20 s_out)); intermediate requants
        use zero point 0 and int32 bounds (one output step while s_out is at least
        2**-17 max(s_a, s_b), the resolution of a' and b' limits it below).
    mul: out = requant(a_c * b_c, s_a s_b / s_out).
    prelu: out = requant(x_c, s_x / s_out) where x_c >= 0, else requant(x_c * slope_c,
        s_x s_slope / s_out).
    avg_pool / global_pool avg: acc = window sum of x_c; out = requant(acc, s_in / (s_out N))
        with N the ONNX divisor of each output position.
    max_pool / global max: max of codes (padding is -128). resize nearest: gather codes.
    resize linear: separable, each scaled axis a matrix of 10-bit fixed-point weights
        (rows sum to 2**10); out = requant(acc, 2**-(10 k)) for k scaled axes, same type.
    pad: codes, the pad value quantized with the tensor's type. clip: clamp codes to
        [quantize(min), quantize(max)]. reshape / transpose / slice / split / concat: codes.
    max / min: elementwise max / min of codes; every operand has the output's type
        (requantized to it, like concat's inputs: clamping commutes with max and min).
    layer_norm: numerics.layer_norm_int8 (float18 on the DPU; scale and bias stay f32).
    lut: table[q + 128] with the 256-entry table numerics.build_lut stored on the op.
    softmax: numerics.softmax_int8 (float18 on the DPU).
    quantize / dequantize: numerics.quantize / numerics.dequantize.
    requantize: out = requant(x_c, s_in / s_out) (per-channel scales broadcast).

Graph boundary
    Inputs get ``axq.quantize`` and outputs ``axq.dequantize``; with
    ``remove_io_quantization`` the signature itself carries per-tensor int8 types (their
    scales and zero points are what a caller quantizes with). ``axq.host`` ops stay float:
    quantized operands are dequantized before them and results that accelerated ops read
    are quantized after them. Afterwards no float compute remains outside host ops and
    the IO quantize/dequantize ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    IntegerType,
    LocationAttr,
    ModuleOp,
    NameLoc,
    NoneAttr,
    StringAttr,
    TensorType,
    UnknownLoc,
    f32,
)
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.rewriter import InsertPoint, Rewriter

from aipuc import numerics
from aipuc.config import QuantizationScheme
from aipuc.dialects import axq
from aipuc.dialects.axq import (
    CHANNEL_AXIS,
    QuantizedType,
    commutes_with_clamp,
    element_type,
    is_depthwise,
    is_quantized,
    requantizes_per_channel,
    shape_of,
    shares_input_quantization,
)
from aipuc.dialects.axq_graph import (
    activation_operands,
    is_accelerated,
    is_f32_tensor,
    main_function,
    preserves_channels,
    tensor_names,
)
from aipuc.dialects.tensors import dense_from_numpy, tensor_type
from aipuc.errors import QuantizationError
from aipuc.passes import AipucPass
from aipuc.quantization.calibration import (
    CALIBRATION_ATTR,
    TensorStats,
    read_annotations,
    strip_annotations,
)

INT8 = IntegerType(8)
INT32 = IntegerType(32)
WEIGHT_BOUND = 127
INT32_MAX = 2**31 - 1
BIAS_BOUND_FLOOR = 2**30
"""Bias codes may always use this much: only layers of more than ~33k products (K * 255 * 127
above 2**30) could overflow int32 on adversarial inputs, whatever their bias."""


# --------------------------------------------------------------------------- op classes


def _joins_concat(value: SSAValue) -> bool:
    """A concat input read only by the concat is produced directly in the concat's type.

    Only when its producer chooses its own output type: the output of a sharing op has
    its input's type, which other tensors may depend on.
    """
    user = value.get_user_of_unique_use()
    producer = value.owner
    return (
        isinstance(user, Operation)
        and axq.joins_in_result_type(user)
        and is_f32_tensor(value)
        and not isinstance(producer, axq.ConstantOp)
        and not (isinstance(producer, Operation) and shares_input_quantization(producer))
    )


# --------------------------------------------------------------------------- planning


@dataclass
class QuantizationPlan:
    """The int8 type of every accelerated float tensor, decided before any rewrite.

    `per_tensor` holds, for per-channel tensors, the per-tensor type that consumers which
    need one receive through an `axq.requantize`.
    """

    types: dict[SSAValue, QuantizedType] = field(default_factory=dict)
    per_tensor: dict[SSAValue, QuantizedType] = field(default_factory=dict)


def _activation_type(low, high, axis: int = -1) -> QuantizedType:
    scale, zero_point = numerics.choose_qparams_asymmetric(low, high)
    return QuantizedType(INT8, np.atleast_1d(scale), np.atleast_1d(zero_point), axis)


class _Groups:
    """Union-find over tensors that must share one quantized type."""

    def __init__(self) -> None:
        self.parent: dict[SSAValue, SSAValue] = {}

    def add(self, value: SSAValue) -> None:
        self.parent.setdefault(value, value)

    def find(self, value: SSAValue) -> SSAValue:
        root = value
        while self.parent[root] is not root:
            root = self.parent[root]
        while self.parent[value] is not root:
            self.parent[value], value = root, self.parent[value]
        return root

    def union(self, first: SSAValue, second: SSAValue) -> None:
        self.parent[self.find(second)] = self.find(first)


def plan_quantization(
    func_op: func.FuncOp, stats: dict[SSAValue, TensorStats], scheme: str
) -> QuantizationPlan:
    """Types for every accelerated float tensor of `func_op` under `scheme`."""
    order: dict[SSAValue, int] = {arg: index for index, arg in enumerate(func_op.body.block.args)}
    groups = _Groups()
    feeds_depthwise: set[SSAValue] = set()
    for op in func_op.body.block.ops:
        for result in op.results:
            order[result] = len(order)
        if not is_accelerated(op):
            continue
        for value in (*activation_operands(op), *op.results):
            if is_f32_tensor(value):
                groups.add(value)
        if is_depthwise(op):
            feeds_depthwise.add(op.input)
        if shares_input_quantization(op) and is_f32_tensor(op.operands[0]):
            for result in op.results:
                groups.union(op.operands[0], result)
        if axq.joins_in_result_type(op):
            for value in op.operands:
                if _joins_concat(value):
                    groups.union(value, op.result)
    members: dict[SSAValue, list[SSAValue]] = {}
    for value in sorted(groups.parent, key=order.__getitem__):
        members.setdefault(groups.find(value), []).append(value)
    names = tensor_names(func_op)
    plan = QuantizationPlan()
    for group in members.values():
        _plan_group(group, stats, scheme, feeds_depthwise, names, plan)
    _narrow_table_inputs(members, plan)
    return plan


def _deciding_value(first: SSAValue, group: set[SSAValue]) -> SSAValue:
    """The group's last tensor reached from `first` through single-use, clamp-safe links."""
    value = first
    while (user := value.get_user_of_unique_use()) is not None:
        if not commutes_with_clamp(user) or len(user.results) != 1 or user.results[0] not in group:
            break
        value = user.results[0]
    return value


def _ranges(
    value: SSAValue, stats: dict[SSAValue, TensorStats], names: dict[SSAValue, str]
) -> TensorStats:
    if isinstance(value.owner, axq.ConstantOp):
        data = value.owner.to_numpy()
        pair = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
        return TensorStats(pair, pair)
    if value not in stats:
        raise QuantizationError(
            f"tensor '{names[value]}' has no calibration range ({CALIBRATION_ATTR}); run "
            "calibrate() and annotate() (or quantize_graph) before axq-quantize"
        )
    return stats[value]


def _plan_group(
    group: list[SSAValue],
    stats: dict[SSAValue, TensorStats],
    scheme: str,
    feeds_depthwise: set[SSAValue],
    names: dict[SSAValue, str],
    plan: QuantizationPlan,
) -> None:
    first = group[0]
    decider = _deciding_value(first, set(group))
    ranges = _ranges(decider, stats, names)
    min_max = scheme == QuantizationScheme.PER_TENSOR_MIN_MAX
    low, high = ranges.min_max if min_max else ranges.histogram
    per_tensor = _activation_type(low, high)
    producer = first.owner
    per_channel = (
        scheme == QuantizationScheme.HYBRID_PER_TENSOR_PER_CHANNEL
        and any(value in feeds_depthwise for value in group)
        and isinstance(producer, Operation)
        and requantizes_per_channel(producer)
        and len(shape_of(first)) == 4
        and all(preserves_channels(value.owner) for value in group[1:])  # type: ignore[arg-type]
        and ranges.channel_min is not None
        and ranges.channel_max is not None
    )
    if per_channel:
        qtype = _activation_type(ranges.channel_min, ranges.channel_max, CHANNEL_AXIS)
        for value in group:
            plan.types[value] = qtype
            plan.per_tensor[value] = per_tensor
    else:
        for value in group:
            plan.types[value] = per_tensor


TABLE_RANGE_SAMPLES = 4096
"""Points per calibrated input range at which a table's plateaus are found: 16 per input step."""


def _table_readers(group: list[SSAValue]) -> list[axq.LutOp]:
    """The tables that read `group`, or none if anything else outside the group reads it."""
    members = set(group)
    readers: list[axq.LutOp] = []
    for value in group:
        for use in value.uses:
            user = use.operation
            if any(result in members for result in user.results):
                continue
            if not isinstance(user, axq.LutOp):
                return []
            readers.append(user)
    return readers


def _table(lut: axq.LutOp, x: QuantizedType, out: QuantizedType) -> np.ndarray:
    """The 256-entry int8 table of `lut` from input type `x` to output type `out`."""
    return numerics.build_lut(
        lut.float_function(), x.scale, x.zero_point, out.scale, out.zero_point
    )


def _table_range(
    lut: axq.LutOp, low: float, high: float, out: QuantizedType
) -> tuple[float, float]:
    """The part of [low, high] where the table's output codes are not constant.

    Outside it (a sigmoid's or SiLU's flat tails at the output's resolution) every input
    gives the code of the range's end, so clamping inputs to it changes no output code.
    """
    points = np.linspace(low, high, TABLE_RANGE_SAMPLES + 1)
    with np.errstate(all="ignore"):
        codes = numerics.quantize(lut.float_function()(points), out.scale, out.zero_point)
    changes = np.flatnonzero(codes[1:] != codes[:-1])
    if changes.size == 0:
        return low, high
    return float(points[changes[0]]), float(points[changes[-1] + 1])


def _covering_type(low: float, high: float) -> QuantizedType:
    """An int8 type whose codes reach at least `low` and `high` (and 0, exactly).

    `choose_qparams_asymmetric` may leave an end half a step inside; one spare step and a
    floored zero point keep both ends outside.
    """
    low, high = min(low, 0.0), max(high, 0.0)
    scale = np.float32(max((high - low) / 254, np.finfo(np.float32).eps))
    zero_point = -128 - int(np.floor(low / scale))
    return QuantizedType.per_tensor(INT8, float(scale), zero_point)


def _narrow_table_inputs(members: dict[SSAValue, list[SSAValue]], plan: QuantizationPlan) -> None:
    """Narrow every group only tables read, each after the groups its tables write: a
    table's plateaus are where its codes stop changing at its output's final resolution
    (`silu -> sigmoid`: the sigmoid narrows the SiLU's output, which moves the SiLU's
    plateaus)."""
    group_of = {value: root for root, group in members.items() for value in group}
    done: set[SSAValue] = set()

    def narrow(root: SSAValue) -> None:
        if root in done:
            return
        done.add(root)
        for lut in _table_readers(members[root]):
            if lut.result in group_of:
                narrow(group_of[lut.result])
        _narrow_table_input(members[root], plan)

    for root in members:
        narrow(root)


def _narrow_table_input(group: list[SSAValue], plan: QuantizationPlan) -> None:
    """A tensor only tables read keeps its int8 codes for where the tables are not flat.

        %x = axq.conv2d ...  (calibrated [-12.0, 6.0])
        %y = axq.lut %x {function = #axq<unary_function silu>}  (output step 0.03)
    %x's type covers [-5.3, 6.0]: SiLU's outputs below -5.3 all round to the zero code,
    so those inputs lose nothing by clamping and every other input gets finer steps. A
    narrowed end is kept only if the table's code there is still the plateau's (both ends,
    else one of them).
    """
    readers = _table_readers(group)
    wide = plan.types[group[0]]
    if not readers or group[0] in plan.per_tensor or isinstance(group[0].owner, axq.ConstantOp):
        return
    low, high = (-128 - wide.zero_point) * wide.scale, (127 - wide.zero_point) * wide.scale
    outputs = [plan.types[lut.result] for lut in readers]
    bounds = [_table_range(lut, low, high, out) for lut, out in zip(readers, outputs, strict=True)]
    inner_low, inner_high = min(b[0] for b in bounds), max(b[1] for b in bounds)
    wide_tables = [_table(lut, wide, out) for lut, out in zip(readers, outputs, strict=True)]
    for new_low, new_high in ((inner_low, inner_high), (inner_low, high), (low, inner_high)):
        narrowed = _covering_type(new_low, new_high)
        ends = [end for end, moved in ((0, new_low > low), (-1, new_high < high)) if moved]
        if narrowed.scale < wide.scale and all(
            np.array_equal(_table(lut, narrowed, out)[ends], wide_table[ends])
            for lut, out, wide_table in zip(readers, outputs, wide_tables, strict=True)
        ):
            for value in group:
                plan.types[value] = narrowed
            return


# --------------------------------------------------------------------------- constants


def constant_op(codes: np.ndarray, qtype: QuantizedType) -> axq.ConstantOp:
    """An `axq.constant` of integer `codes` with quantized type `qtype`."""
    return axq.ConstantOp(dense_from_numpy(codes, qtype.storage), tensor_type(codes.shape, qtype))


def quantize_activation_constant(array: np.ndarray, qtype: QuantizedType) -> axq.ConstantOp:
    """A constant activation operand quantized with its tensor's int8 type."""
    codes = numerics.quantize(
        array, qtype.scale_array(), qtype.zero_point_array(), qtype.quantized_axis
    )
    return constant_op(codes, qtype)


def _scales_type(storage: IntegerType, scales: np.ndarray, axis: int | None) -> QuantizedType:
    """Zero-point-0 type; per tensor when there is no axis or every scale is the same."""
    if axis is None or np.all(scales == scales[0]):
        return QuantizedType.per_tensor(storage, float(scales[0]), 0)
    return QuantizedType(storage, scales, np.zeros(len(scales), np.int64), axis)


def accumulation_bound(depth: int, input_type: QuantizedType) -> int:
    """The largest |sum x_c * q_w| of `depth` products of centred int8 inputs and weights.

    |x_c| = |q - zp| is at most max(127 - zp, zp + 128) over the input's zero points.
    """
    low, high = input_type.bounds
    zero_points = input_type.zero_point_array()
    largest_input = int(np.max(np.maximum(high - zero_points, zero_points - low)))
    return depth * largest_input * WEIGHT_BOUND


def quantize_weight_and_bias(
    weight: np.ndarray,
    bias: np.ndarray,
    weight_axis: int | None,
    scale_index: np.ndarray,
    input_scales: np.ndarray,
    products_bound: int,
) -> tuple[axq.ConstantOp, axq.ConstantOp]:
    """Symmetric int8 weights and int32 bias at s_in * s_w, per output channel.

    `scale_index[o]` is the weight scale that output channel `o` uses and `input_scales[o]`
    the input scale it sees. `products_bound` is the largest |sum x_c * q_w| the layer can
    accumulate (`accumulation_bound`): bias codes stay within int32 minus that, so
    `sum x_c * q_w + q_b` never overflows int32 whatever the input codes. A weight scale
    is raised where |bias| / (s_in * s_w) would not fit (all-zero or tiny weight channels,
    near-constant inputs), so every bias is representable.
    """
    bias_bound = max(INT32_MAX - products_bound, BIAS_BOUND_FLOOR)
    if weight_axis is None:
        scales = numerics.choose_qparams_symmetric_per_channel(weight.reshape(1, -1), 0)
    else:
        scales = numerics.choose_qparams_symmetric_per_channel(weight, weight_axis)
    scales = scales.astype(np.float64)
    needed = np.abs(bias.astype(np.float64)) / (input_scales * bias_bound)
    np.maximum.at(scales, scale_index, needed)
    weight_type = _scales_type(INT8, scales, weight_axis)
    weight_codes = numerics.quantize(
        weight,
        scales if weight_axis is not None else scales[0],
        0,
        weight_axis,
        qmin=-WEIGHT_BOUND,
        qmax=WEIGHT_BOUND,
    )
    bias_scales = input_scales * scales[scale_index]
    bias_codes = numerics.quantize(bias, bias_scales, 0, 0, qmin=-bias_bound, qmax=bias_bound)
    bias_type = _scales_type(INT32, bias_scales, 0)
    return constant_op(weight_codes, weight_type), constant_op(bias_codes, bias_type)


# --------------------------------------------------------------------------- rewriting


class _Rewriting:
    """State shared by the patterns of one run: the plan and the ops inserted so far."""

    def __init__(
        self, plan: QuantizationPlan, quantize_dw_channel_wise: bool, names: dict[SSAValue, str]
    ):
        self.plan = plan
        self.quantize_dw_channel_wise = quantize_dw_channel_wise
        self.names = names
        self.origin: dict[SSAValue, SSAValue] = {}
        self.converted: dict[tuple[SSAValue, Attribute], SSAValue] = {}

    def original(self, value: SSAValue) -> SSAValue:
        return self.origin.get(value, value)

    def name(self, value: SSAValue) -> str:
        return self.names.get(self.original(value), str(value.name_hint or "?"))

    def planned(self, value: SSAValue) -> QuantizedType:
        original = self.original(value)
        if original not in self.plan.types:
            raise QuantizationError(f"tensor '{self.name(value)}' has no quantization plan")
        return self.plan.types[original]

    def result_types(self, op: Operation) -> list[TensorType]:
        return [tensor_type(shape_of(r), self.planned(r)) for r in op.results]

    def _insert_once(
        self, value: SSAValue, target: Attribute, rewriter: PatternRewriter, make
    ) -> SSAValue:
        """Insert `make()` before the current op unless `value` was already converted."""
        key = (value, target)
        if key not in self.converted:
            new_op = make()
            new_op.location = _location_of(value)
            rewriter.insert(new_op)
            self.converted[key] = new_op.results[0]
            self.origin[new_op.results[0]] = self.original(value)
        return self.converted[key]

    def activation(
        self,
        value: SSAValue,
        rewriter: PatternRewriter,
        *,
        per_channel_ok: bool = False,
        wanted: QuantizedType | None = None,
    ) -> SSAValue:
        """`value` as an int8 operand: constants quantized, types requantized as needed."""
        if not is_quantized(value):
            if not isinstance(value.owner, axq.ConstantOp):
                raise QuantizationError(
                    f"tensor '{self.name(value)}' is float where an int8 operand is needed"
                )
            qtype = wanted or self.planned(value)
            array = value.owner.to_numpy()
            return self._insert_once(
                value, qtype, rewriter, lambda: quantize_activation_constant(array, qtype)
            )
        current = element_type(value)
        assert isinstance(current, QuantizedType)
        target = wanted
        if target is None and current.is_per_axis and not per_channel_ok:
            target = self.plan.per_tensor[self.original(value)]
        if target is None or target == current:
            return value
        result_type = tensor_type(shape_of(value), target)
        return self._insert_once(
            value, target, rewriter, lambda: axq.RequantizeOp(value, result_type)
        )

    def dequantized(self, value: SSAValue, rewriter: PatternRewriter) -> SSAValue:
        if not is_quantized(value):
            return value
        float_type = tensor_type(shape_of(value), f32)
        return self._insert_once(value, f32, rewriter, lambda: axq.DequantizeOp(value, float_type))

    def replace(
        self,
        op: Operation,
        operands: Sequence[SSAValue],
        rewriter: PatternRewriter,
        **properties: Attribute,
    ) -> Operation:
        """Replace `op` by the same op on `operands` with the planned result types."""
        new_op = type(op).create(
            operands=operands,
            result_types=self.result_types(op),
            properties={**op.properties, **properties},
            attributes={k: v for k, v in op.attributes.items() if k != CALIBRATION_ATTR},
            location=op.location,
        )
        for old, new in zip(op.results, new_op.results, strict=True):
            self.origin[new] = self.original(old)
        rewriter.replace(op, new_op)
        return new_op


def _location_of(value: SSAValue) -> LocationAttr:
    """Where a tensor comes from: its op's location, or a graph input's ONNX name."""
    if isinstance(value, BlockArgument):
        func_op = value.block.parent_op()
        if isinstance(func_op, func.FuncOp) and func_op.arg_attrs is not None:
            name = func_op.arg_attrs.data[value.index].data.get(axq.NAME_ATTR)
            if isinstance(name, StringAttr):
                return NameLoc(name, NoneAttr())
        return UnknownLoc()
    return value.owner.location  # type: ignore[union-attr]


def _needs_quantizing(op: Operation, kinds: type | tuple[type, ...]) -> bool:
    return isinstance(op, kinds) and any(is_f32_tensor(r) for r in op.results)


@dataclass
class _QuantizePattern(RewritePattern):
    rewriting: _Rewriting


@dataclass
class QuantizeWeightedOp(_QuantizePattern):
    """conv2d, conv_transpose2d, dense: int8 input and weights, int32 bias.

        %y = axq.conv2d %x, %w, %b {...} : (tensor<1x16x8x8xf32>, tensor<32x16x3x3xf32>,
                                             tensor<32xf32>) -> tensor<1x32x8x8xf32>
    becomes
        %wq = axq.constant {...} : tensor<32x16x3x3x!axq.q<i8, axis 0, [0.0041:0, ...]>>
        %bq = axq.constant {...} : tensor<32x!axq.q<i32, axis 0, [1.3e-4:0, ...]>>
        %y = axq.conv2d %xq, %wq, %bq {...} : (tensor<1x16x8x8x!axq.q<i8, 0.031:-5>>, ...)
            -> tensor<1x32x8x8x!axq.q<i8, 0.052:-128>>
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not axq.is_weighted(op) or not _needs_quantizing(op, Operation):
            return
        assert isinstance(op, axq.Conv2dOp | axq.ConvTranspose2dOp | axq.DenseOp)
        depthwise = is_depthwise(op)
        x = self.rewriting.activation(op.input, rewriter, per_channel_ok=depthwise)
        weight, bias = self._weight_and_bias(op, element_type(x), rewriter)
        self.rewriting.replace(op, [x, weight, bias], rewriter)

    def _constant(self, op: Operation, value: SSAValue, role: str) -> np.ndarray:
        if not isinstance(value.owner, axq.ConstantOp):
            raise QuantizationError(
                f"{op.name} '{self.rewriting.name(op.results[0])}': its {role} must be a "
                "constant to be quantized"
            )
        return value.owner.to_numpy()

    def _weight_axis(self, op: Operation) -> int | None:
        if is_depthwise(op) and not self.rewriting.quantize_dw_channel_wise:
            return None
        return op.WEIGHT_CHANNEL_AXIS

    def _weight_and_bias(self, op, x_type, rewriter: PatternRewriter) -> tuple[SSAValue, SSAValue]:
        weight = self._constant(op, op.weight, "weight")
        bias = self._constant(op, op.bias, "bias")
        out_channels = len(bias)
        axis = self._weight_axis(op)
        channels = np.arange(out_channels)
        if axis is None:
            scale_index = np.zeros(out_channels, np.int64)
        else:
            scale_index = channels % weight.shape[axis]
        if x_type.is_per_axis:  # depthwise input per channel: output o reads channel o // m
            per_input = x_type.scale_array()
            input_scales = per_input[channels // (out_channels // len(per_input))]
        else:
            input_scales = np.full(out_channels, x_type.scale)
        depth = weight.size // out_channels  # products per output (conv-transpose: at most)
        weight_op, bias_op = quantize_weight_and_bias(
            weight, bias, axis, scale_index, input_scales, accumulation_bound(depth, x_type)
        )
        weight_op.location, bias_op.location = _location_of(op.weight), _location_of(op.bias)
        rewriter.insert([weight_op, bias_op])
        return weight_op.result, bias_op.result


@dataclass
class QuantizeBinaryOp(_QuantizePattern):
    """add, sub, mul, prelu, matmul: per-tensor int8 operands, the output's own type.

        %z = axq.add %a, %b : (tensor<1x8x4x4xf32>, tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
    becomes
        %z = axq.add %aq, %bq : (tensor<1x8x4x4x!axq.q<i8, 0.02:3>>,
                                 tensor<1x8x4x4x!axq.q<i8, 0.05:-7>>)
            -> tensor<1x8x4x4x!axq.q<i8, 0.06:-2>>
    A constant operand becomes an int8 constant with its own min-max type; a per-channel
    operand is requantized to its per-tensor type first.
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _needs_quantizing(op, (axq.AddOp, axq.SubOp, axq.MulOp, axq.PReluOp, axq.MatMulOp)):
            return
        operands = [self.rewriting.activation(v, rewriter) for v in op.operands]
        self.rewriting.replace(op, operands, rewriter)


@dataclass
class QuantizeLut(_QuantizePattern):
    """lut: the function becomes its 256-entry int8 table (numerics.build_lut).

        %y = axq.lut %x {function = #axq<unary_function sigmoid>, params = {}}
            : tensor<1x8xf32> -> tensor<1x8xf32>
    becomes
        %y = axq.lut %xq {function = ..., params = {}, table = dense<[...]> : tensor<256xi8>}
            : tensor<1x8x!axq.q<i8, 0.05:0>> -> tensor<1x8x!axq.q<i8, 0.0039:-128>>
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _needs_quantizing(op, axq.LutOp):
            return
        assert isinstance(op, axq.LutOp)
        x = self.rewriting.activation(op.input, rewriter)
        table = _table(op, element_type(x), self.rewriting.planned(op.result))
        self.rewriting.replace(op, [x], rewriter, table=dense_from_numpy(table, INT8))


@dataclass
class QuantizeRescalingOp(_QuantizePattern):
    """softmax, avg_pool, global average pool: int8 in, int8 out at the output's own type.

        %y = axq.avg_pool %x {...} : tensor<1x8x4x4xf32> -> tensor<1x8x2x2xf32>
    becomes
        %y = axq.avg_pool %xq {...} : tensor<1x8x4x4x!axq.q<i8, 0.03:-9>>
            -> tensor<1x8x2x2x!axq.q<i8, 0.02:-20>>
    Average pools accept per-channel inputs (the rescaling is per channel anyway).
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        averaging = isinstance(op, axq.AvgPoolOp) or (
            isinstance(op, axq.GlobalPoolOp) and op.kind.data == axq.PoolKind.AVG
        )
        if not (averaging or isinstance(op, axq.SoftmaxOp)) or not _needs_quantizing(op, Operation):
            return
        x = self.rewriting.activation(op.operands[0], rewriter, per_channel_ok=averaging)
        self.rewriting.replace(op, [x], rewriter)


@dataclass
class QuantizeSharedScaleOp(_QuantizePattern):
    """Ops that keep their input's codes: the result has exactly the input's type.

        %y = axq.clip %x {min = 0.0 : f64, max = 6.0 : f64}
            : tensor<1x8x4x4xf32> -> tensor<1x8x4x4xf32>
    becomes
        %y = axq.clip %xq {min = 0.0 : f64, max = 6.0 : f64}
            : tensor<1x8x4x4x!axq.q<i8, 0.0235:-128>> -> tensor<1x8x4x4x!axq.q<i8, 0.0235:-128>>
    (reshape, transpose, slice, split, pad, max_pool, global max pool, resize, clip).
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not shares_input_quantization(op) or not _needs_quantizing(op, Operation):
            return
        wanted = self.rewriting.planned(op.results[0])
        x = self.rewriting.activation(op.operands[0], rewriter, wanted=wanted)
        self.rewriting.replace(op, [x], rewriter)


@dataclass
class QuantizeConcat(_QuantizePattern):
    """concat, max, min: inputs requantized to the output's own type where theirs differs.

        %y = axq.concat %a, %b {axis = 1 : i64} : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>)
            -> tensor<1x8x8x8xf32>
    becomes
        %br = axq.requantize %bq : tensor<1x4x8x8x!axq.q<i8, 0.05:1>>
            -> tensor<1x4x8x8x!axq.q<i8, 0.04:-3>>
        %y = axq.concat %aq, %br {axis = 1 : i64} : (...) -> tensor<1x8x8x8x!axq.q<i8, 0.04:-3>>
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not axq.joins_in_result_type(op) or not _needs_quantizing(op, Operation):
            return
        wanted = self.rewriting.planned(op.results[0])
        inputs = [self.rewriting.activation(v, rewriter, wanted=wanted) for v in op.operands]
        self.rewriting.replace(op, inputs, rewriter)


@dataclass
class QuantizeLayerNorm(_QuantizePattern):
    """layer_norm: per-tensor int8 input and output; scale and bias stay f32 (float18 on the
    DPU, see numerics.layer_norm_int8).

        %y = axq.layer_norm %x, %g, %b {axis = 2 : i64, epsilon = 1.0e-05 : f64}
            : (tensor<1x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    becomes
        %y = axq.layer_norm %xq, %g, %b {axis = 2 : i64, epsilon = 1.0e-05 : f64}
            : (tensor<1x4x8x!axq.q<i8, 0.02:3>>, tensor<8xf32>, tensor<8xf32>)
            -> tensor<1x4x8x!axq.q<i8, 0.03:-1>>
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not _needs_quantizing(op, axq.LayerNormOp):
            return
        assert isinstance(op, axq.LayerNormOp)
        x = self.rewriting.activation(op.input, rewriter)
        self.rewriting.replace(op, [x, op.scale, op.bias], rewriter)


@dataclass
class QuantizeHostBoundary(_QuantizePattern):
    """host ops stay float: dequantize int8 operands, quantize results that int8 ops read.

        %y = axq.host "Erf"(%xq) ... : (tensor<4x!axq.q<i8, 0.1:0>>) -> tensor<4xf32>
    becomes
        %xf = axq.dequantize %xq : tensor<4x!axq.q<i8, 0.1:0>> -> tensor<4xf32>
        %y = axq.host "Erf"(%xf) ... : (tensor<4xf32>) -> tensor<4xf32>
        %yq = axq.quantize %y : tensor<4xf32> -> tensor<4x!axq.q<i8, 0.0078:0>>
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, axq.HostOp):
            return
        planned = {
            r.index: self.rewriting.plan.types[r]
            for r in op.results
            if r in self.rewriting.plan.types
        }
        if any(is_quantized(v) for v in op.operands):
            operands = [self.rewriting.dequantized(v, rewriter) for v in op.operands]
            new_op = op.create(
                operands=operands,
                result_types=[r.type for r in op.results],
                properties=dict(op.properties),
                attributes=dict(op.attributes),
                location=op.location,
            )
            rewriter.replace(op, new_op)
            op = new_op
        for index, qtype in planned.items():
            _quantize_for_accelerator(
                op.results[index], qtype, InsertPoint.after(op), self.rewriting
            )


def _quantize_for_accelerator(
    value: SSAValue, qtype: QuantizedType, where: InsertPoint, rewriting: _Rewriting
) -> None:
    """Insert `axq.quantize` of a float value; accelerated ops read it, host ops keep float."""
    quantize = axq.QuantizeOp(value, tensor_type(shape_of(value), qtype))
    quantize.location = _location_of(value)
    Rewriter.insert_op(quantize, where)
    rewriting.origin[quantize.result] = value
    value.replace_uses_with_if(
        quantize.result,
        lambda use: use.operation is not quantize and is_accelerated(use.operation),
    )


# --------------------------------------------------------------------------- boundary steps


def quantize_arguments(
    func_op: func.FuncOp, rewriting: _Rewriting, remove_io_quantization: bool
) -> None:
    """Graph inputs read by int8 ops: `axq.quantize` them, or make them int8 arguments."""
    block = func_op.body.block
    first_op = block.first_op
    assert first_op is not None
    for arg in list(block.args):
        qtype = rewriting.plan.types.get(arg)
        if qtype is None:
            continue
        if not remove_io_quantization:
            _quantize_for_accelerator(arg, qtype, InsertPoint.before(first_op), rewriting)
            continue
        float_uses = [use for use in arg.uses if not is_accelerated(use.operation)]
        new_arg = Rewriter.replace_value_with_new_type(arg, tensor_type(shape_of(arg), qtype))
        rewriting.origin[new_arg] = arg
        rewriting.plan.types[new_arg] = qtype
        if float_uses:
            dequantize = axq.DequantizeOp(new_arg, tensor_type(shape_of(arg), f32))
            dequantize.location = _location_of(new_arg)
            Rewriter.insert_op(dequantize, InsertPoint.before(first_op))
            for use in float_uses:
                use.operation.operands[use.index] = dequantize.result


def quantize_results(
    func_op: func.FuncOp, rewriting: _Rewriting, remove_io_quantization: bool
) -> None:
    """Graph outputs: dequantized to float, or returned as per-tensor int8."""
    return_op = func_op.get_return_op()
    assert return_op is not None
    rewriter = PatternRewriter(return_op)
    operands = []
    for value in return_op.operands:
        if not is_quantized(value):
            operands.append(value)
        elif remove_io_quantization:
            operands.append(rewriting.activation(value, rewriter))
        else:
            operands.append(rewriting.dequantized(value, rewriter))
    for index, value in enumerate(operands):
        return_op.operands[index] = value


def erase_dead_constants(func_op: func.FuncOp) -> None:
    """Float weights whose int8 copies replaced them."""
    for op in reversed(list(func_op.body.block.ops)):
        if isinstance(op, axq.ConstantOp) and not op.result.uses:
            Rewriter.erase_op(op)


def check_no_float_compute(func_op: func.FuncOp) -> None:
    """Every accelerated op must now be int8; a float one has no quantization rule."""
    left = sorted(
        {
            op.name
            for op in func_op.body.block.ops
            if is_accelerated(op) and any(is_f32_tensor(r) for r in op.results)
        }
    )
    if left:
        raise QuantizationError(
            f"no quantization rule for {', '.join(left)}; run these ops on the host "
            "(graph cleaner) or extend aipuc.transforms.quantize"
        )


# --------------------------------------------------------------------------- the pass


@dataclass(frozen=True)
class QuantizePass(AipucPass):
    """Post-training quantization of @main from its `axq.calibration` ranges.

    Options are spelled like the CompilerConfig fields they come from.
    """

    name = "axq-quantize"

    quantization_scheme: str = QuantizationScheme.PER_TENSOR_HISTOGRAM
    quantize_dw_channel_wise: bool = False
    remove_io_quantization: bool = False

    def __post_init__(self) -> None:
        self.check_choice("quantization_scheme", QuantizationScheme)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        func_op = main_function(op)
        names = tensor_names(func_op)
        plan = plan_quantization(func_op, read_annotations(func_op), self.quantization_scheme)
        rewriting = _Rewriting(plan, self.quantize_dw_channel_wise, names)
        quantize_arguments(func_op, rewriting, self.remove_io_quantization)
        patterns = [
            QuantizeWeightedOp(rewriting),
            QuantizeBinaryOp(rewriting),
            QuantizeLut(rewriting),
            QuantizeRescalingOp(rewriting),
            QuantizeSharedScaleOp(rewriting),
            QuantizeConcat(rewriting),
            QuantizeLayerNorm(rewriting),
            QuantizeHostBoundary(rewriting),
        ]
        PatternRewriteWalker(
            GreedyRewritePatternApplier(patterns), apply_recursively=False
        ).rewrite_module(op)
        quantize_results(func_op, rewriting, self.remove_io_quantization)
        erase_dead_constants(func_op)
        strip_annotations(func_op)
        func_op.update_function_type()
        check_no_float_compute(func_op)
