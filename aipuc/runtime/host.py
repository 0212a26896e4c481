"""Running the host parts of a model on the CPU: the graph cleaner's preamble and postamble,
and the `axq.host` ops between accelerated segments.

`HostRunner` uses onnxruntime when it is installed and onnx's reference implementation
otherwise. onnxruntime runs with graph optimisations off and one thread: every node then runs
the same kernel whether it sits in the whole model or in one part of it, so a model cut into
preamble -> core -> postamble computes bit for bit what the uncut model computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

import numpy as np
import onnx
from onnx import helper

from aipuc.errors import AipucError, first_line

Arrays = dict[str, np.ndarray]


def _onnxruntime() -> ModuleType | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


class HostRunner:
    """Runs one ONNX model on the host; the session is built once and reused.

    `reference_only` uses onnx's reference implementation even when onnxruntime is installed
    (for the few operators onnxruntime does not implement at the model's opset).
    """

    def __init__(self, model: onnx.ModelProto, *, reference_only: bool = False):
        constants = {tensor.name for tensor in model.graph.initializer}
        self.input_types = {
            value.name: helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
            for value in model.graph.input
            if value.name not in constants
        }
        self.output_names = [value.name for value in model.graph.output]
        self.model = model
        onnxruntime = None if reference_only else _onnxruntime()
        if onnxruntime is None:
            from onnx.reference import ReferenceEvaluator

            self.engine = "onnx.reference"
            self._session = ReferenceEvaluator(model)
            return
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        options.log_severity_level = 4  # errors reach the user as one AipucError line
        self.engine = "onnxruntime"
        try:
            self._session = onnxruntime.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own pybind exception types
            raise AipucError(
                f"onnxruntime cannot load host model '{model.graph.name}': {first_line(error)}",
                stage="run",
            ) from None

    @property
    def input_names(self) -> list[str]:
        return list(self.input_types)

    def run(self, inputs: Mapping[str, np.ndarray]) -> Arrays:
        """Runs on the named inputs it needs (extra entries are ignored); returns all outputs."""
        feeds = {}
        for name, dtype in self.input_types.items():
            if name not in inputs:
                raise AipucError(
                    f"host model needs input '{name}'; got {sorted(inputs)}", stage="run"
                )
            array = np.asarray(inputs[name])
            if array.dtype != dtype:
                if not np.can_cast(array.dtype, dtype, "same_kind"):
                    raise AipucError(
                        f"input '{name}' must be {dtype}, got {array.dtype}", stage="run"
                    )
                array = array.astype(dtype)
            feeds[name] = array
        try:
            results = self._session.run(self.output_names, feeds)
        except Exception as error:  # onnxruntime / onnx.reference raise their own types
            raise AipucError(
                f"{self.engine} failed to run host model: {first_line(error)}", stage="run"
            ) from None
        return {
            name: np.asarray(value) for name, value in zip(self.output_names, results, strict=True)
        }
