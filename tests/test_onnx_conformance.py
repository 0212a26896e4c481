"""ONNX's own node tests through the importer and the float interpreter (numerics level 1).

Every single-node test case of `onnx.backend.test.case.node` whose operator the project
maps to an axq compute op goes the user's way: `load_model` (opset conversion to >= 17,
ONNX shape inference, checks), `import_onnx`, `Graph.run`. The results are compared with
the case's expected outputs: `rtol=1e-3, atol=1e-5` (as ONNX's backend tests) for
arithmetic, exact equality for data movement and integers.

Parameters that exporters store as initializers (weights, Slice/Pad/Resize/Reshape
parameters, constant divisors, ...) are given as graph inputs in the node tests; the
harness freezes them into initializers, because the project compiles static graphs and
rejects run-time parameters on purpose.

`EXPECTED_OUTCOMES` is the one table of cases that do not run on the compute kernels,
each with its reason: REJECTED cases must fail to load or import with the project's
one-line `ModelError`/`UnsupportedOperatorError`, whose message states the reason; HOST
cases must import as `axq.host` ops (run by onnx.reference on the host) and still match.
Every other case must import without any host op and match.
"""

from __future__ import annotations

import warnings
from enum import Enum

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases
from onnx.backend.test.case.test_case import TestCase

from aipuc.dialects import axq
from aipuc.errors import ModelError
from aipuc.frontend.loader import load_model
from aipuc.frontend.onnx_import import import_onnx

COMPUTE_OP_TYPES = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "BatchNormalization",
        "Gemm",
        "MatMul",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "PRelu",
        "Relu",
        "Clip",
        "LeakyRelu",
        "Sigmoid",
        "Tanh",
        "HardSwish",
        "HardSigmoid",
        "Elu",
        "Softplus",
        "Softmax",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Resize",
        "Pad",
        "Slice",
        "Split",
        "Concat",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Transpose",
        "Identity",
        "Exp",
        "Erf",
        "Sqrt",
        "Reciprocal",
        "Abs",
        "Neg",
    }
)
"""ONNX operators that the importer maps to axq compute ops."""

FROZEN_FROM_INPUT = {
    "Conv": 1,
    "ConvTranspose": 1,
    "BatchNormalization": 1,
    "Gemm": 1,
    "Div": 1,
    "PRelu": 1,
    "Clip": 1,
    "Resize": 1,
    "Pad": 1,
    "Slice": 1,
    "Split": 1,
    "Reshape": 1,
    "Squeeze": 1,
    "Unsqueeze": 1,
}
"""op type -> index of its first input that the harness turns into an initializer."""

EXACT_OP_TYPES = frozenset(
    {
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Transpose",
        "Identity",
        "Slice",
        "Split",
        "Concat",
        "Pad",
        "MaxPool",
        "GlobalMaxPool",
        "Relu",
        "Clip",
        "Abs",
        "Neg",
    }
)
"""Pure data movement or selection: the result must equal the expected output exactly."""

FLOAT_TOLERANCE = {"rtol": 1e-3, "atol": 1e-5}


class Outcome(Enum):
    REJECTED = "rejected"  # load/import fails with a one-line ModelError containing the reason
    HOST = "host"  # imports as axq.host, run by onnx.reference


_NON_FLOAT = "non-float32 tensors are not accelerated; the node stays on the host"
_POOL_2D = "pooling is not supported, only 2-D (NCHW) pooling"
_CONV_TRANSPOSE_2D = "transposed convolution is not supported, only 2-D (NCHW)"

EXPECTED_OUTCOMES: dict[str, tuple[Outcome, str]] = {
    # HOST: integer tensors (the reason is documentation)
    **{
        f"test_{op}_{dtype}": (Outcome.HOST, _NON_FLOAT)
        for op in ("add", "sub", "mul", "div")
        for dtype in ("int8", "int16", "uint8", "uint16", "uint32", "uint64")
    },
    "test_div_int32_trunc": (Outcome.HOST, _NON_FLOAT),
    "test_clip_default_int8_inbounds": (Outcome.HOST, _NON_FLOAT),
    "test_clip_default_int8_max": (Outcome.HOST, _NON_FLOAT),
    "test_clip_default_int8_min": (Outcome.HOST, _NON_FLOAT),
    "test_clip_default_int8_inbounds_expanded": (Outcome.HOST, _NON_FLOAT),
    "test_maxpool_2d_uint8": (Outcome.HOST, _NON_FLOAT),
    "test_edge_pad": (Outcome.HOST, _NON_FLOAT),
    "test_reflect_pad": (Outcome.HOST, _NON_FLOAT),
    "test_wrap_pad": (Outcome.HOST, _NON_FLOAT + " (wrap padding has no axq form either)"),
    # REJECTED: the reason is what the error message says
    "test_identity_opt": (Outcome.REJECTED, "is not a tensor"),
    "test_identity_sequence": (Outcome.REJECTED, "is not a tensor"),
    "test_averagepool_1d_default": (Outcome.REJECTED, _POOL_2D),
    "test_averagepool_3d_default": (Outcome.REJECTED, _POOL_2D),
    **{
        f"test_averagepool_3d_dilations_large_count_include_pad_is_{c}_ceil_mode_is_{m}": (
            Outcome.REJECTED,
            _POOL_2D,
        )
        for c in (0, 1)
        for m in ("False", "True")
    },
    "test_averagepool_3d_dilations_small": (Outcome.REJECTED, _POOL_2D),
    "test_maxpool_1d_default": (Outcome.REJECTED, _POOL_2D),
    "test_maxpool_3d_default": (Outcome.REJECTED, _POOL_2D),
    "test_maxpool_3d_dilations": (Outcome.REJECTED, _POOL_2D),
    "test_maxpool_3d_dilations_use_ref_impl": (Outcome.REJECTED, _POOL_2D),
    "test_maxpool_3d_dilations_use_ref_impl_large": (Outcome.REJECTED, _POOL_2D),
    "test_convtranspose_1d": (Outcome.REJECTED, _CONV_TRANSPOSE_2D),
    "test_convtranspose_3d": (Outcome.REJECTED, _CONV_TRANSPOSE_2D),
    "test_averagepool_2d_dilations": (Outcome.REJECTED, "dilated average pooling"),
    "test_maxpool_with_argmax_2d_precomputed_pads": (
        Outcome.REJECTED,
        "the Indices output of MaxPool",
    ),
    "test_maxpool_with_argmax_2d_precomputed_strides": (Outcome.REJECTED, "storage_order=1"),
    "test_batchnorm_epsilon_training_mode": (Outcome.REJECTED, "training_mode=1"),
    "test_batchnorm_example_training_mode": (Outcome.REJECTED, "training_mode=1"),
    **{
        name: (Outcome.REJECTED, "mode 'cubic' is not supported")
        for name in (
            "test_resize_downsample_scales_cubic",
            "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside",
            "test_resize_downsample_scales_cubic_align_corners",
            "test_resize_downsample_scales_cubic_antialias",
            "test_resize_downsample_sizes_cubic",
            "test_resize_downsample_sizes_cubic_antialias",
            "test_resize_upsample_scales_cubic",
            "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside",
            "test_resize_upsample_scales_cubic_align_corners",
            "test_resize_upsample_scales_cubic_asymmetric",
            "test_resize_upsample_sizes_cubic",
        )
    },
    **{
        name: (Outcome.REJECTED, "antialias=1 is not supported")
        for name in (
            "test_resize_downsample_scales_linear_antialias",
            "test_resize_downsample_sizes_linear_antialias",
        )
    },
    **{
        name: (Outcome.REJECTED, "'tf_crop_and_resize' is not supported")
        for name in (
            "test_resize_tf_crop_and_resize",
            "test_resize_tf_crop_and_resize_axes_2_3",
            "test_resize_tf_crop_and_resize_axes_3_2",
            "test_resize_tf_crop_and_resize_extrapolation_value",
        )
    },
    **{
        name: (Outcome.REJECTED, "'half_pixel_symmetric' is not supported")
        for name in (
            "test_resize_downsample_scales_linear_half_pixel_symmetric",
            "test_resize_upsample_scales_linear_half_pixel_symmetric",
        )
    },
    **{
        name: (Outcome.REJECTED, "keep_aspect_ratio_policy other than 'stretch'")
        for name in (
            "test_resize_downsample_sizes_nearest_not_larger",
            "test_resize_downsample_sizes_nearest_not_smaller",
            "test_resize_upsample_sizes_nearest_not_larger",
            "test_resize_upsample_sizes_nearest_not_smaller",
        )
    },
}
"""case name -> (outcome, reason) for every case that does not run on compute kernels."""


def _node_cases() -> list[TestCase]:
    """Single-node cases of COMPUTE_OP_TYPES.

    Expanded (function-body) cases test the operators they expand into, so only the
    single-node models count. `collect_testcases` fills one process-wide list and filters
    while it does, so it is called once, unfiltered.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # case generators overflow casts on purpose
        cases = collect_testcases()
    selected = [
        case
        for case in cases
        if len(case.model.graph.node) == 1 and case.model.graph.node[0].op_type in COMPUTE_OP_TYPES
    ]
    return sorted(selected, key=lambda case: case.name)


CASES = _node_cases()


def _as_array(value) -> np.ndarray:
    return numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value


def _frozen_model(case: TestCase) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The case's model with parameter inputs as initializers, and the remaining feeds."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph, node = model.graph, model.graph.node[0]
    inputs = case.data_sets[0][0]
    feeds = {info.name: _as_array(value) for info, value in zip(graph.input, inputs, strict=True)}
    first_frozen = FROZEN_FROM_INPUT.get(node.op_type)
    if first_frozen is not None:
        frozen = {name for name in node.input[first_frozen:] if name}
        kept = [info for info in graph.input if info.name not in frozen]
        graph.initializer.extend(numpy_helper.from_array(feeds.pop(name), name) for name in frozen)
        del graph.input[:]
        graph.input.extend(kept)
    return model, feeds


def _host_ops(graph) -> list[str]:
    return [op.op_type.data for op in graph.main.walk() if isinstance(op, axq.HostOp)]


def _is_exact(node: onnx.NodeProto) -> bool:
    if node.op_type == "Resize":
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"nearest")
        return mode == b"nearest"
    return node.op_type in EXACT_OP_TYPES


def _check_outputs(case: TestCase, results: dict[str, np.ndarray]) -> None:
    node = case.model.graph.node[0]
    expected_arrays = [_as_array(value) for value in case.data_sets[0][1]]
    for info, expected in zip(case.model.graph.output, expected_arrays, strict=True):
        actual = results[info.name]
        assert actual.dtype == expected.dtype, f"{info.name}: dtype {actual.dtype}"
        assert actual.shape == expected.shape, f"{info.name}: shape {actual.shape}"
        if _is_exact(node) or not np.issubdtype(expected.dtype, np.floating):
            np.testing.assert_array_equal(actual, expected, err_msg=info.name)
        else:
            np.testing.assert_allclose(actual, expected, **FLOAT_TOLERANCE, err_msg=info.name)


# onnx.reference pads integer MaxPool inputs with NaN before casting (test_maxpool_2d_uint8).
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_onnx_node_case(case: TestCase):
    outcome, reason = EXPECTED_OUTCOMES.get(case.name, (None, ""))
    model, feeds = _frozen_model(case)
    if outcome is Outcome.REJECTED:
        with pytest.raises(ModelError) as error:
            import_onnx(load_model(model))
        message = str(error.value)
        assert "\n" not in message, f"not a one-line error: {message!r}"
        assert reason in message
        return
    graph = import_onnx(load_model(model))
    host_ops = _host_ops(graph)
    if outcome is Outcome.HOST:
        assert host_ops, f"expected a host op ({reason})"
    else:
        assert not host_ops, f"{host_ops} ran on the host instead of compute kernels"
    _check_outputs(case, graph.run(feeds))


def test_outcome_table_names_only_real_cases():
    """A renamed or removed ONNX case must not leave a stale entry behind."""
    assert set(EXPECTED_OUTCOMES) <= {case.name for case in CASES}


def test_every_compute_op_type_has_cases():
    covered = {
        case.model.graph.node[0].op_type for case in CASES if case.name not in EXPECTED_OUTCOMES
    }
    assert covered == COMPUTE_OP_TYPES
