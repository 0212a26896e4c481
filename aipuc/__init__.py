"""aipuc: an xDSL compiler for an int8 edge AI accelerator with a bit-exact NumPy simulator.

Public API:
    CompilerConfig                                  the configuration (one definition)
    import_model(model, ...) -> Graph               ONNX / torch -> axq, runnable in float
    compile(model, config=None, calibration=None)   -> CompiledModel
    load(output_dir)                                -> CompiledModel

Importing the package imports nothing of the compiler: the runtime
(`aipuc.runtime.loader`) runs a compiled model with NumPy and onnxruntime alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aipuc.errors import AipucError

if TYPE_CHECKING:
    from aipuc.compiled import CompiledModel
    from aipuc.config import CompilerConfig
    from aipuc.graph import Graph

__all__ = ["AipucError", "CompilerConfig", "compile", "import_model", "load"]
__version__ = "0.1.0"


def import_model(
    model: object,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    example_input: object = None,
    config: CompilerConfig | None = None,
) -> Graph:
    """Import an ONNX model (path, bytes, ModelProto) or a torch.nn.Module with an example input.

    The whole model becomes one axq graph (host-side operators as `axq.host` ops);
    `Graph.run(inputs)` interprets it in float32.
    """
    from aipuc.config import CompilerConfig
    from aipuc.driver import import_float_graph, load_onnx

    config = CompilerConfig() if config is None else config
    onnx_model = load_onnx(model, config, input_shapes=input_shapes, example_input=example_input)
    return import_float_graph(onnx_model, config)


def compile(  # noqa: A001 - the public name the API promises
    model: object,
    config: CompilerConfig | None = None,
    calibration: object = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    example_input: object = None,
) -> CompiledModel:
    """Compile `model` with `config`, calibrating on `calibration`.

    `calibration` is an iterable of input dicts or a folder of .npy/.npz files. The outputs
    go to the config's output_dir; the returned CompiledModel reads them."""
    from aipuc.driver import compile_model

    return compile_model(
        model, config, calibration, input_shapes=input_shapes, example_input=example_input
    )


def load(output_dir: str | Path) -> CompiledModel:
    """The CompiledModel of an output folder written by `compile`."""
    from aipuc.compiled import CompiledModel

    return CompiledModel.load(output_dir)


def __getattr__(name: str):
    """`aipuc.CompilerConfig` on first use (it needs pydantic, which the runtime does not)."""
    if name == "CompilerConfig":
        from aipuc.config import CompilerConfig

        return CompilerConfig
    raise AttributeError(f"module 'aipuc' has no attribute '{name}'")
