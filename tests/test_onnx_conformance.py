"""ONNX's own node tests through the importer and the float interpreter (numerics level 1).

Every single-node test case of `onnx.backend.test.case.node` whose operator is in the
support table (`aipuc.frontend.support.SUPPORT_TABLE`) goes the user's way: `load_model`
(opset conversion to >= 17, ONNX shape inference, checks), `import_onnx`, `Graph.run`. The
results are compared with the case's expected outputs: `rtol=1e-3, atol=1e-5` (as ONNX's
backend tests) for arithmetic, exact equality for data movement and integers.

Parameters that exporters store as initializers (weights, Slice/Pad/Resize/Reshape
parameters, constant divisors, exponents, ...) are given as graph inputs in the node tests;
the harness freezes them into initializers, because the project compiles static graphs.

Every case imports and runs: none is rejected. A node the accelerator cannot run becomes an
`axq.host` op, and `HOST_CASES` lists every float32 case where that is expected, with a
phrase of the reason the importer records (cases on other element types always run on the
host). The one exception, `NOT_TENSOR_GRAPHS`, are Identity cases on sequence and optional
values: they are not tensor graphs, and the loader says so in one line.

The float kernels of cases that the placement leaves to the host are checked too, by
importing them with `follow_support=False`.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from onnx.backend.test.case.node import collect_testcases
from onnx.backend.test.case.test_case import TestCase

from aipuc.dialects import axq
from aipuc.errors import ModelError
from aipuc.frontend.loader import load_model
from aipuc.frontend.onnx_import import import_with_placement
from aipuc.frontend.support import SUPPORT_TABLE
from aipuc.runtime.host import HostRunner

FROZEN_FROM_INPUT = {
    "Conv": 1,
    "ConvTranspose": 1,
    "BatchNormalization": 1,
    "LayerNormalization": 1,
    "Gemm": 1,
    "Div": 1,
    "Pow": 1,
    "PRelu": 1,
    "Clip": 1,
    "Resize": 1,
    "Upsample": 1,
    "Pad": 1,
    "Slice": 1,
    "Split": 1,
    "Reshape": 1,
    "Squeeze": 1,
    "Unsqueeze": 1,
    "ReduceMean": 1,
    "ReduceMax": 1,
    "Dropout": 1,
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
        "Dropout",
        "Slice",
        "Split",
        "Concat",
        "Pad",
        "MaxPool",
        "GlobalMaxPool",
        "ReduceMax",
        "Max",
        "Min",
        "Relu",
        "Clip",
        "Abs",
        "Neg",
    }
)
"""Pure data movement or selection: the result must equal the expected output exactly."""

FLOAT_TOLERANCE = {"rtol": 1e-3, "atol": 1e-5}

NOT_TENSOR_GRAPHS = {
    "test_identity_opt": "is not a tensor",
    "test_identity_sequence": "is not a tensor",
}
"""case -> the loader's one-line message: sequence and optional values are not tensors."""


def _named(reason: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, reason)


_POOL_2D = "only 2-D pooling on 4-D tensors"
_RESIZE_CUBIC = "mode=cubic"

HOST_CASES: dict[str, str] = {
    **_named(
        _POOL_2D,
        "test_averagepool_1d_default",
        "test_averagepool_3d_default",
        "test_averagepool_3d_dilations_small",
        "test_maxpool_1d_default",
        "test_maxpool_3d_default",
        "test_maxpool_3d_dilations",
        "test_maxpool_3d_dilations_use_ref_impl",
        "test_maxpool_3d_dilations_use_ref_impl_large",
        *(
            f"test_averagepool_3d_dilations_large_count_include_pad_is_{c}_ceil_mode_is_{m}"
            for c in (0, 1)
            for m in ("False", "True")
        ),
    ),
    **_named("dilated average pooling", "test_averagepool_2d_dilations"),
    **_named(
        "the Indices output",
        "test_maxpool_with_argmax_2d_precomputed_pads",
        "test_maxpool_with_argmax_2d_precomputed_strides",
    ),
    **_named(
        "training_mode=1",
        "test_batchnorm_epsilon_training_mode",
        "test_batchnorm_example_training_mode",
    ),
    **_named(
        "training_mode is not the constant false",
        "test_training_dropout",
        "test_training_dropout_default",
        "test_training_dropout_default_mask",
        "test_training_dropout_mask",
        "test_training_dropout_zero_ratio",
        "test_training_dropout_zero_ratio_mask",
    ),
    **_named("only 2-D transposed convolution", "test_convtranspose_1d", "test_convtranspose_3d"),
    **_named("asymmetric pads", "test_convtranspose_autopad_same"),
    **_named("needs group 1", "test_convtranspose_group_2", "test_convtranspose_group_2_image_3"),
    **_named(
        "the Mean/InvStdDev output 'Mean' is used",
        *(
            f"test_layer_normalization_{case}"
            for case in (
                "2d_axis0",
                "2d_axis1",
                "2d_axis_negative_1",
                "2d_axis_negative_2",
                "3d_axis0_epsilon",
                "3d_axis1_epsilon",
                "3d_axis2_epsilon",
                "3d_axis_negative_1_epsilon",
                "3d_axis_negative_2_epsilon",
                "3d_axis_negative_3_epsilon",
                "4d_axis0",
                "4d_axis1",
                "4d_axis2",
                "4d_axis3",
                "4d_axis_negative_1",
                "4d_axis_negative_2",
                "4d_axis_negative_3",
                "4d_axis_negative_4",
                "default_axis",
            )
        ),
    ),
    **_named(
        "a 1-D operand",
        *(f"test_matmul_{case}" for case in ("1d_1d", "1d_3d", "4d_1d")),
    ),
    **_named("needs equal batch dims", "test_matmul_bcast"),
    **_named(
        "the exponent must be a constant scalar",
        "test_pow",
        "test_pow_bcast_array",
        "test_pow_example",
        *(f"test_pow_types_float32_{t}" for t in ("int32", "int64", "uint32", "uint64")),
    ),
    **_named(
        "only over all spatial axes",
        *(
            f"test_reduce_{kind}_{case}"
            for kind in ("max", "mean")
            for case in (
                "do_not_keepdims_example",
                "do_not_keepdims_random",
                "keepdims_example",
                "keepdims_random",
                "negative_axes_keepdims_example",
                "negative_axes_keepdims_random",
            )
        ),
        "test_reduce_max_default_axes_keepdim_example",
        "test_reduce_max_default_axes_keepdims_random",
        "test_reduce_max_empty_set",
        "test_reduce_mean_default_axes_keepdims_example",
        "test_reduce_mean_default_axes_keepdims_random",
    ),
    **_named(
        _RESIZE_CUBIC,
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
    ),
    **_named(
        "antialias=1",
        "test_resize_downsample_scales_linear_antialias",
        "test_resize_downsample_sizes_linear_antialias",
    ),
    **_named(
        "tf_crop_and_resize",
        "test_resize_tf_crop_and_resize",
        "test_resize_tf_crop_and_resize_axes_2_3",
        "test_resize_tf_crop_and_resize_axes_3_2",
        "test_resize_tf_crop_and_resize_extrapolation_value",
    ),
    **_named(
        "half_pixel_symmetric",
        "test_resize_downsample_scales_linear_half_pixel_symmetric",
        "test_resize_upsample_scales_linear_half_pixel_symmetric",
    ),
    **_named(
        "keep_aspect_ratio_policy",
        "test_resize_downsample_sizes_nearest_not_larger",
        "test_resize_downsample_sizes_nearest_not_smaller",
        "test_resize_upsample_sizes_nearest_not_larger",
        "test_resize_upsample_sizes_nearest_not_smaller",
    ),
}
"""float32 case -> a phrase of the recorded reason why its node runs on the host."""

NON_FLOAT_REASON = "non-float32 tensors"

ONNXRUNTIME_DEVIATIONS = {
    "test_resize_downsample_scales_cubic_align_corners": "align_corners when downsampling",
    **dict.fromkeys(
        (
            "test_training_dropout",
            "test_training_dropout_default",
            "test_training_dropout_default_mask",
            "test_training_dropout_mask",
        ),
        "its own random generator",
    ),
}
"""Host cases where onnxruntime, the host engine (as for the preamble and postamble),
computes something else than onnx's reference outputs: they must equal onnxruntime's."""

KERNEL_CHECKED_ON_HOST_CASES = (
    "test_matmul_",
    "test_softmax_",
    "test_resize_",
    "test_convtranspose_",
)
"""Host cases whose axq form exists: `follow_support=False` must run them on float kernels
(except where the axq op cannot express the case, e.g. cubic resize, 1-D or 3-D)."""


def _node_cases() -> list[TestCase]:
    """Single-node cases of the operators in the support table.

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
        if len(case.model.graph.node) == 1 and case.model.graph.node[0].op_type in SUPPORT_TABLE
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


def _is_float32(case: TestCase) -> bool:
    """Whether the tensors fed (parameters frozen) and the main output are float32."""
    graph = _frozen_model(case)[0].graph
    return all(
        value.type.tensor_type.elem_type == TensorProto.FLOAT
        for value in (*graph.input, graph.output[0])
        if value.type.WhichOneof("value") == "tensor_type"
    )


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
    model, feeds = _frozen_model(case)
    if case.name in NOT_TENSOR_GRAPHS:
        with pytest.raises(ModelError) as error:
            load_model(model)
        assert "\n" not in str(error.value) and NOT_TENSOR_GRAPHS[case.name] in str(error.value)
        return
    graph, placements = import_with_placement(load_model(model))
    reasons = [p.reason for p in placements if p.reason is not None]
    expected = HOST_CASES.get(case.name) if _is_float32(case) else NON_FLOAT_REASON
    if expected is None:
        assert not reasons, f"ran on the host instead of compute kernels: {reasons}"
        assert not _host_ops(graph)
    else:
        assert _host_ops(graph), f"expected a host op ({expected})"
        assert any(expected in reason for reason in reasons), reasons
    if case.name in ONNXRUNTIME_DEVIATIONS:
        expected_outputs = HostRunner(model).run(feeds)
        for name, actual in graph.run(feeds).items():
            np.testing.assert_array_equal(actual, expected_outputs[name], err_msg=name)
        return
    _check_outputs(case, graph.run(feeds))


@pytest.mark.parametrize(
    "case",
    [
        case
        for case in CASES
        if case.name.startswith(KERNEL_CHECKED_ON_HOST_CASES) and case.name in HOST_CASES
    ],
    ids=lambda case: case.name,
)
def test_float_kernels_of_host_cases(case: TestCase):
    """The axq forms of cases the placement leaves to the host still compute ONNX's result."""
    model, feeds = _frozen_model(case)
    graph, _ = import_with_placement(load_model(model), follow_support=False)
    declines = HOST_CASES[case.name] in ("only 2-D transposed convolution", _RESIZE_CUBIC) or any(
        phrase in case.name for phrase in ("antialias", "tf_crop", "symmetric", "not_")
    )
    assert bool(_host_ops(graph)) == declines  # no axq form: the converter declines
    if declines and case.name in ONNXRUNTIME_DEVIATIONS:
        expected = HostRunner(model).run(feeds)
        for name, actual in graph.run(feeds).items():
            np.testing.assert_array_equal(actual, expected[name], err_msg=name)
        return
    _check_outputs(case, graph.run(feeds))


def test_layer_normalization_cases_without_statistics_outputs_run_on_kernels():
    """Without its Mean/InvStdDev outputs, every LayerNormalization case is one axq op."""
    cases = [case for case in CASES if case.name.startswith("test_layer_normalization")]
    assert len(cases) >= 19
    for case in cases:
        model, feeds = _frozen_model(case)
        del model.graph.output[1:]
        del model.graph.node[0].output[1:]
        graph = import_with_placement(load_model(model))[0]
        assert [op.name for op in graph.main.walk() if isinstance(op, axq.LayerNormOp)]
        assert not _host_ops(graph)
        expected = _as_array(case.data_sets[0][1][0])
        actual = graph.run(feeds)[model.graph.output[0].name]
        np.testing.assert_allclose(actual, expected, **FLOAT_TOLERANCE, err_msg=case.name)


def test_host_table_names_only_real_float_cases():
    """A renamed or removed ONNX case must not leave a stale entry behind."""
    names = {case.name: case for case in CASES}
    assert set(ONNXRUNTIME_DEVIATIONS) <= set(HOST_CASES)
    assert set(HOST_CASES) <= set(names)
    assert all(_is_float32(names[name]) for name in HOST_CASES)
    assert set(NOT_TENSOR_GRAPHS) <= set(names)


def test_every_supported_op_type_has_compute_cases():
    covered = {
        case.model.graph.node[0].op_type
        for case in CASES
        if case.name not in HOST_CASES and _is_float32(case) and case.name not in NOT_TENSOR_GRAPHS
    }
    missing = set(SUPPORT_TABLE) - covered
    # The node tests of these only have cases the accelerator leaves to the host (channel
    # reductions, LayerNorm statistics outputs); their
    # kernels are checked above with follow_support=False and without the statistics.
    assert missing <= {"ReduceMean", "ReduceMax", "LayerNormalization"}
