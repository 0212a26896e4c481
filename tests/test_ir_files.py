"""IR files: weights in a `.weights.npz` beside the `.mlir`, read back bit for bit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
    TensorType,
    f32,
)
from xdsl.ir import Block, Region
from xdsl.parser import Parser

from aipuc.dialects import axq
from aipuc.dialects.resources import EXTERNAL_BYTES, sidecar_of
from aipuc.dialects.tensors import dense_from_numpy
from aipuc.errors import ModelError
from aipuc.ir_files import ir_context, load_module, module_text, save_module

XDSL_OPT = Path(sys.executable).with_name("xdsl-opt")


def _dense(array: np.ndarray) -> DenseIntOrFPElementsAttr:
    """A dense attribute; an all-equal float array as a splat (one stored element)."""
    if array.dtype == np.float32 and array.size > 1 and (array == array.flat[0]).all():
        splat = BytesAttr(array.flat[:1].tobytes())
        return DenseIntOrFPElementsAttr(TensorType(f32, list(array.shape)), splat)
    return dense_from_numpy(array)


def _module(arrays: dict[str, np.ndarray]) -> ModuleOp:
    """@main returning one axq.constant per array."""
    block = Block()
    constants = [axq.ConstantOp(_dense(array)) for array in arrays.values()]
    block.add_ops(constants)
    block.add_op(func.ReturnOp(*[c.result for c in constants]))
    main = func.FuncOp(
        "main",
        ([], [c.result.type for c in constants]),
        Region(block),
        res_attrs=ArrayAttr([DictionaryAttr({axq.NAME_ATTR: StringAttr(name)}) for name in arrays]),
    )
    return ModuleOp([main])


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    awkward = rng.standard_normal(600).astype(np.float32)
    awkward[:4] = [np.nan, np.inf, -np.inf, -0.0]  # printed as hex when inline
    return {
        "weights": rng.standard_normal((16, 8, 3, 3)).astype(np.float32),
        "awkward": awkward,
        "codes": rng.integers(-128, 128, (64, 32)).astype(np.int8),
        "bias": rng.integers(-(2**31), 2**31, 300).astype(np.int32),
        "mask": rng.random(2000) < 0.5,
        "splat": np.full((64, 64), 0.25, np.float32),
        "small": np.arange(6, dtype=np.float32),
    }


def _constants(module: ModuleOp) -> list[axq.ConstantOp]:
    return [op for op in module.walk() if isinstance(op, axq.ConstantOp)]


def test_weights_leave_the_text_and_come_back_bit_for_bit(tmp_path):
    module = _module(_arrays())
    path = save_module(tmp_path / "model.mlir", module)
    text = path.read_text()
    sidecar = np.load(sidecar_of(path))
    big = [op for op in _constants(module) if len(op.value.data.data) >= EXTERNAL_BYTES]
    assert len(sidecar.files) == len(big) == 5  # all but the splat and the small constant
    assert text.count("#axq.resource<") == 5 and len(text) < 3000
    loaded = load_module(path)
    for before, after in zip(_constants(module), _constants(loaded), strict=True):
        assert after.to_numpy().tobytes() == before.to_numpy().tobytes()
        assert after.value.type == before.value.type
    assert module_text(loaded) == module_text(module)
    # the sidecar is plain NumPy: the quantized codes read as they are
    np.testing.assert_array_equal(sidecar["blob2"].reshape(64, 32), _arrays()["codes"])


def test_saving_a_module_without_large_weights_removes_a_stale_weights_file(tmp_path):
    path = save_module(tmp_path / "model.mlir", _module(_arrays()))
    assert sidecar_of(path).is_file()
    save_module(path, _module({"small": np.arange(3, dtype=np.float32)}))
    assert not sidecar_of(path).exists()
    assert "#axq.resource" not in path.read_text()


def test_a_missing_or_mismatched_weights_file_is_a_clear_error(tmp_path):
    path = save_module(tmp_path / "model.mlir", _module(_arrays()))
    sidecar = sidecar_of(path)
    np.savez(sidecar, blob0=np.zeros(3, np.float32))
    with pytest.raises(ModelError, match="blob 'blob0' .* holds 3 float32 values"):
        load_module(path)
    sidecar.unlink()
    with pytest.raises(ModelError, match=r"model.weights.npz' of .* is missing"):
        load_module(path)


def test_a_reference_needs_the_ir_file_path(tmp_path):
    text = save_module(tmp_path / "model.mlir", _module(_arrays())).read_text()
    with pytest.raises(Exception, match="pass the .mlir file's path"):
        Parser(ir_context(), text).parse_module()


def test_generic_form_references_resolve_on_load(tmp_path):
    """Ops without a resolving parser (here: axq.constant in generic form) load as well."""
    module = _module(_arrays())
    path = tmp_path / "generic.mlir"
    save_module(path, module)  # writes the weights file
    generic = subprocess.run(
        [str(XDSL_OPT), str(path), "--print-op-generic"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "#axq.resource" not in generic  # xdsl-opt prints what it read, inline
    reference = '<{value = #axq.resource<"blob0" : tensor<16x8x3x3xf32>>}>'
    first = generic.index('"axq.constant"() <{value = ') + len('"axq.constant"() ')
    end = generic.index("}>", first) + 2
    path.write_text(generic[:first] + reference + generic[end:])
    loaded = load_module(path)
    assert _constants(loaded)[0].value.data.data == _constants(module)[0].value.data.data


def test_xdsl_opt_reads_a_saved_file_and_prints_it_whole(tmp_path):
    module = _module(_arrays())
    path = save_module(tmp_path / "model.mlir", module)
    result = subprocess.run(
        [str(XDSL_OPT), str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "#axq.resource" not in result
    assert module_text(Parser(ir_context(), result).parse_module()) == module_text(module)
    sidecar_of(path).unlink()
    failed = subprocess.run([str(XDSL_OPT), str(path)], capture_output=True, text=True)
    # xdsl-opt reports a parse error with its traceback; the diagnostic closes it
    assert failed.returncode != 0 and "model.weights.npz' of" in failed.stderr.splitlines()[-2]


def test_quantized_types_keep_their_storage_in_the_weights_file(tmp_path):
    codes = np.arange(-128, 128, dtype=np.int8).reshape(16, 16).repeat(8, axis=0)
    qtype = axq.QuantizedType.per_tensor(IntegerType(8), 0.5, 3)
    constant = axq.ConstantOp(
        dense_from_numpy(codes, IntegerType(8)), TensorType(qtype, list(codes.shape))
    )
    block = Block()
    block.add_ops([constant, func.ReturnOp(constant.result)])
    main = func.FuncOp(
        "main",
        ([], [constant.result.type]),
        Region(block),
        res_attrs=ArrayAttr([DictionaryAttr({axq.NAME_ATTR: StringAttr("q")})]),
    )
    path = save_module(tmp_path / "q.mlir", ModuleOp([main]))
    (loaded,) = _constants(load_module(path))
    np.testing.assert_array_equal(loaded.to_numpy(), codes)
    assert loaded.result.type == constant.result.type and loaded.value.type.element_type != f32
