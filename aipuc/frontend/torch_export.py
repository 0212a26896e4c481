"""PyTorch -> ONNX through `torch.onnx.export`; torch is the optional extra `aipuc[torch]`."""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from types import ModuleType

import onnx

from aipuc.errors import ModelError, first_line


def _import_torch() -> ModuleType:
    try:
        import torch
    except ImportError:
        raise ModelError(
            "compiling a PyTorch module needs torch, an optional extra: pip install aipuc[torch]"
        ) from None
    return torch


def export_torch(module, example_input, opset: int) -> onnx.ModelProto:
    """Exports `module` traced on `example_input` (a tensor or a tuple of them) at `opset`.

    The TorchScript exporter is used (`dynamo=False` where torch has both): it needs no
    extra packages and bakes the example's shapes in, which is what the compiler wants.
    The export goes through a temporary folder so weights stored as external data load too.
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"expected a torch.nn.Module, got a {type(module).__name__}")
    args = tuple(example_input) if isinstance(example_input, tuple | list) else (example_input,)
    options = {
        "opset_version": opset,
        "input_names": ["input"]
        if len(args) == 1
        else [f"input_{index}" for index in range(len(args))],
    }
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    with tempfile.TemporaryDirectory(prefix="aipuc-torch-export-") as folder:
        path = Path(folder) / "model.onnx"
        try:
            with torch.no_grad():
                torch.onnx.export(module, args, str(path), **options)
        except Exception as error:  # the exporter raises many types
            raise ModelError(
                f"torch.onnx.export of {type(module).__name__} failed: {first_line(error)}"
            ) from None
        return onnx.load(str(path))
