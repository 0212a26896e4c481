"""`simplify-mac-before-after-lut`: multiply-adds around a table become part of the table
(config field `simplify_mac_before_after_lut`).

A quantized `axq.lut` maps every int8 code through any function, so a per-tensor
multiply-add just before or after it costs an op and a rounding for nothing: the table
can compute `post_scale * f(pre_scale * x + pre_shift) + post_shift` itself
(`numerics.AFFINE_PARAMETERS`). Products of a tensor with a gate of itself are one table
too: `x * sigmoid(x)` is SiLU, `x * hardsigmoid(x)` and the exported `x * clip(x + 3, 0, 6)
/ 6` are hard-swish, and `0.5 * x * (1 + erf(x / sqrt 2))` is GELU. The pass runs on the
float graph, before calibration: the table is then built from the ranges of the one
tensor it reads and the one it writes.

Affine factors within float32 rounding of the identity (`6 * float32(1/6)`) are the
identity, so the tables of plain functions keep their plain form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from aipuc.dialects import axq
from aipuc.dialects.axq import UnaryFunction, shape_of
from aipuc.dialects.axq_graph import is_f32_tensor
from aipuc.numerics import AFFINE_PARAMETERS
from aipuc.passes import AipucPass
from aipuc.transforms.common import constant_array, located, only_user, scalar_constant

_FLOAT32_ROUNDING = 2.0**-21
"""Relative distance below which an affine factor counts as 1 (a few float32 ulps)."""


class Affine(NamedTuple):
    """`post_scale * f(pre_scale * x + pre_shift) + post_shift` around a table's function."""

    pre_scale: float = 1.0
    pre_shift: float = 0.0
    post_scale: float = 1.0
    post_shift: float = 0.0

    @classmethod
    def of(cls, op: axq.LutOp) -> Affine:
        params = op.param_values()
        return cls(*(params.get(key, default) for key, default in AFFINE_PARAMETERS.items()))

    def params(self) -> dict[str, float]:
        """The non-identity entries, with scales within float32 rounding of 1 taken as 1."""
        entries = {}
        for (key, identity), value in zip(AFFINE_PARAMETERS.items(), self, strict=True):
            near_one = identity == 1.0 and abs(value - 1.0) <= _FLOAT32_ROUNDING
            if value != identity and not near_one:
                entries[key] = value
        return entries


def _own_params(op: axq.LutOp) -> dict[str, float]:
    return {k: v for k, v in op.param_values().items() if k not in AFFINE_PARAMETERS}


def _table(
    x: SSAValue, function: UnaryFunction, own: dict[str, float], affine: Affine, like: Operation
) -> axq.LutOp:
    """A float `axq.lut` of `x` at the location of `like`, whose result it replaces."""
    lut = axq.LutOp(x, like.results[0].type, function, {**own, **affine.params()})
    return located(lut, like.location)  # type: ignore[return-value]


def _per_tensor_mac(op: Operation) -> tuple[SSAValue, float, float] | None:
    """(x, a, b) when `op` computes `a * x + b` with scalars that leave x's shape alone."""
    if not isinstance(op, (axq.AddOp, axq.SubOp, axq.MulOp)) or not is_f32_tensor(op.results[0]):
        return None
    lhs, rhs = op.operands
    for value, constant, constant_first in ((lhs, rhs, False), (rhs, lhs, True)):
        c = scalar_constant(constant)
        if c is None or constant_array(value) is not None:
            continue
        if shape_of(value) != shape_of(op.results[0]):
            return None
        if isinstance(op, axq.MulOp):
            return value, c, 0.0
        if isinstance(op, axq.AddOp):
            return value, 1.0, c
        return (value, -1.0, c) if constant_first else (value, 1.0, -c)
    return None


class FoldMacIntoLutInput(RewritePattern):
    """`f(a * x + b)`: the multiply-add before a table is part of it.

        %s = axq.mul %x, %c : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
        %y = axq.lut %s {function = #axq<unary_function erf>, params = {}} : ...
    becomes
        %y = axq.lut %x {function = #axq<unary_function erf>, params = {pre_scale = c}} : ...
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.LutOp, rewriter: PatternRewriter) -> None:
        producer = op.input.owner
        if not is_f32_tensor(op.result) or not isinstance(producer, Operation):
            return
        mac = _per_tensor_mac(producer)
        if mac is None or only_user(op.input) is not op:
            return
        x, a, b = mac
        old = Affine.of(op)
        affine = old._replace(
            pre_scale=old.pre_scale * a, pre_shift=old.pre_scale * b + old.pre_shift
        )
        rewriter.replace(op, _table(x, op.function.data, _own_params(op), affine, op))
        rewriter.erase(producer)


class FoldMacIntoLutOutput(RewritePattern):
    """`a * f(x) + b`: the multiply-add after a table is part of it.

        %t = axq.lut %x {function = #axq<unary_function erf>, params = {}} : ...
        %y = axq.add %t, %one : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
    becomes
        %y = axq.lut %x {function = #axq<unary_function erf>, params = {post_shift = 1.0}} : ...
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        mac = _per_tensor_mac(op)
        if mac is None:
            return
        table_value, a, b = mac
        table = table_value.owner
        if not isinstance(table, axq.LutOp) or only_user(table_value) is not op:
            return
        old = Affine.of(table)
        affine = old._replace(post_scale=a * old.post_scale, post_shift=a * old.post_shift + b)
        rewriter.replace(
            op, _table(table.input, table.function.data, _own_params(table), affine, op)
        )
        rewriter.erase(table)


class Gated(NamedTuple):
    """`x * gate(x) = post_scale * function(pre_scale * x)`."""

    function: UnaryFunction
    pre_scale: float
    post_scale: float


def _close(value: float, target: float) -> bool:
    return math.isclose(value, target, rel_tol=1e-6, abs_tol=1e-12)


def _gate_of_table(op: axq.LutOp) -> Gated | None:
    """`x * lut(x)` as one function, for the gates exporters emit."""
    a, b, c, d = Affine.of(op)
    function = op.function.data
    if function == UnaryFunction.SIGMOID and b == 0.0 and d == 0.0 and a != 0.0:
        # x * c sigmoid(a x) = (c / a) silu(a x)
        return Gated(UnaryFunction.SILU, a, c / a)
    if function == UnaryFunction.HARDSIGMOID and d == 0.0:
        params = op.param_values()
        alpha = params.get("alpha", 0.2) * a
        beta = params.get("alpha", 0.2) * b + params.get("beta", 0.5)
        if _close(beta, 0.5) and alpha != 0.0:
            # x * c clip(alpha x + 0.5, 0, 1) = c hardswish(6 alpha x) / (6 alpha)
            return Gated(UnaryFunction.HARDSWISH, 6 * alpha, c / (6 * alpha))
    if function == UnaryFunction.ERF and b == 0.0 and _close(c, d) and a != 0.0:
        # x * c (1 + erf(a x)) = 2 c gelu(sqrt(2) a x) / (sqrt(2) a)
        scale = math.sqrt(2) * a
        return Gated(UnaryFunction.GELU, scale, 2 * c / scale)
    return None


def _gate_of_clip(op: axq.ClipOp, x: SSAValue) -> Gated | None:
    """`x * clip(x + b, 0, 2b)` (hard-swish as exported: b = 3) = (2b^2 / 3) hardswish(3x / b)."""
    shifted = op.input.owner
    if not isinstance(shifted, Operation) or only_user(op.input) is not op:
        return None
    mac = _per_tensor_mac(shifted)
    if mac is None or mac[0] is not x or mac[1] != 1.0:
        return None
    b = mac[2]
    if b > 0 and op.min.value.data == 0.0 and _close(op.max.value.data, 2 * b):
        return Gated(UnaryFunction.HARDSWISH, 3 / b, 2 * b * b / 3)
    return None


def _gate(value: SSAValue, x: SSAValue) -> tuple[Gated, list[Operation]] | None:
    """`value` as a gate of `x` (through scalings by constants), with the ops it replaces."""
    op = value.owner
    if not isinstance(op, Operation) or value.get_user_of_unique_use() is None:
        return None
    if isinstance(op, axq.LutOp) and op.input is x:
        gated = _gate_of_table(op)
        return (gated, [op]) if gated else None
    if isinstance(op, axq.ClipOp):
        gated = _gate_of_clip(op, x)
        return (gated, [op, op.input.owner]) if gated else None  # type: ignore[list-item]
    mac = _per_tensor_mac(op)
    if mac is not None and mac[2] == 0.0:
        inner = _gate(mac[0], x)
        if inner is not None:
            gated, ops = inner
            return gated._replace(post_scale=gated.post_scale * mac[1]), [op, *ops]
    return None


class FuseGatedProduct(RewritePattern):
    """`x * gate(x)` is one table: SiLU, hard-swish or GELU.

        %s = axq.lut %x {function = #axq<unary_function sigmoid>, params = {}} : ...
        %y = axq.mul %x, %s : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
    becomes
        %y = axq.lut %x {function = #axq<unary_function silu>, params = {}} : ...
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.MulOp, rewriter: PatternRewriter) -> None:
        if not is_f32_tensor(op.result):
            return
        for x, gate in ((op.lhs, op.rhs), (op.rhs, op.lhs)):
            found = _gate(gate, x)
            if found is None or shape_of(x) != shape_of(op.result):
                continue
            gated, replaced = found
            affine = Affine(pre_scale=gated.pre_scale, post_scale=gated.post_scale)
            rewriter.replace(op, _table(x, gated.function, {}, affine, op))
            for dead in replaced:
                rewriter.erase(dead)
            return


@dataclass(frozen=True)
class SimplifyMacAroundLutPass(AipucPass):
    """Folds per-tensor multiply-adds into tables, and gated products into one table."""

    name = "simplify-mac-before-after-lut"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = GreedyRewritePatternApplier(
            [FuseGatedProduct(), FoldMacIntoLutInput(), FoldMacIntoLutOutput()]
        )
        PatternRewriteWalker(patterns).rewrite_module(op)
