"""Weights outside the IR text: references in the spirit of MLIR's `dense_resource`, with a
NumPy sidecar file.

An IR file written by `aipuc.ir_files.save_module` prints every dense attribute of at least
`EXTERNAL_BYTES` bytes as a `#axq.resource` reference, and stores its bytes in
`<stem>.weights.npz` next to the `.mlir` file, one member per handle (the attribute's exact
bytes, in its storage dtype):

    %w = axq.constant {value = #axq.resource<"blob3" : tensor<64x3x7x7xf32>>} : tensor<...>

    np.load("model.weights.npz")["blob3"]  # the 9408 float32 values of %w

(xDSL's own `dense_resource` is not used: its parser renames a handle that an earlier parse
in the same process declared, and keeps blobs only inside the text.) Reading resolves the
references back to ordinary `dense<...>` attributes bit for bit, so nothing after parsing
sees a difference: `axq.constant` resolves its value while it is
parsed (so `xdsl-opt model.mlir -p ...` works on the saved file), and
`aipuc.ir_files.load_module` resolves every other op's. Printing without this printer
(xdsl-opt's output, `str(module)`) writes the data inline, so its output stands alone.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import BytesAttr, DenseIntOrFPElementsAttr, StringAttr, TensorType
from xdsl.ir import Attribute, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer

from aipuc.dialects.tensors import dtype_of

EXTERNAL_BYTES = 1024
"""Dense attributes of at least this many bytes go to the sidecar; smaller ones stay
inline, so scalars, biases of small layers and test graphs remain readable."""
SIDECAR_SUFFIX = ".weights.npz"


def sidecar_of(ir_path: str | Path) -> Path:
    """The weights file of the IR file `ir_path`: `model.mlir` -> `model.weights.npz`."""
    path = Path(ir_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _raw_dtype(element_type: Attribute) -> np.dtype:
    """The dtype of an attribute's stored bytes (i1 is one byte; data is little endian)."""
    storage = dtype_of(element_type)
    return np.dtype(np.uint8) if storage == np.bool_ else storage.newbyteorder("<")


@irdl_attr_definition
class ResourceAttr(ParametrizedAttribute):
    """The data of a dense attribute of type `type`, kept under `handle` in the weights file
    of the IR file it was read from: `#axq.resource<"blob3" : tensor<4xf32>>`."""

    name = "axq.resource"

    handle: StringAttr
    type: TensorType

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string("<")
        printer.print_string_literal(self.handle.data)
        printer.print_string(" : ")
        printer.print_attribute(self.type)
        printer.print_string(">")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[StringAttr, Attribute]:
        parser.parse_punctuation("<")
        handle = parser.parse_str_literal()
        parser.parse_punctuation(":")
        type_ = parser.parse_type()
        parser.parse_punctuation(">")
        return StringAttr(handle), type_


@dataclass(eq=False, repr=False)
class ResourcePrinter(Printer):
    """A printer that prints large dense attributes as `#axq.resource` references and keeps
    their bytes in `blobs` for `write_sidecar`."""

    blobs: dict[str, np.ndarray] = field(default_factory=dict)
    _handles: dict[int, str] = field(default_factory=dict)

    def externalizes(self, attribute: Attribute) -> bool:
        return (
            isinstance(attribute, DenseIntOrFPElementsAttr)
            and len(attribute.data.data) >= EXTERNAL_BYTES
        )

    def print_attribute(self, attribute: Attribute) -> None:
        if not self.externalizes(attribute):
            super().print_attribute(attribute)
            return
        assert isinstance(attribute, DenseIntOrFPElementsAttr)
        handle = self._handles.get(id(attribute))
        if handle is None:
            handle = self._handles[id(attribute)] = f"blob{len(self.blobs)}"
            raw = _raw_dtype(attribute.get_element_type())
            self.blobs[handle] = np.frombuffer(attribute.data.data, dtype=raw)
        super().print_attribute(ResourceAttr(StringAttr(handle), attribute.type))

    def write_sidecar(self, ir_path: str | Path) -> Path | None:
        """Write the collected blobs next to `ir_path` (nothing when there are none)."""
        if not self.blobs:
            return None
        path = sidecar_of(ir_path)
        np.savez(path, **self.blobs)
        return path


def is_external(printer: Printer, attribute: Attribute) -> bool:
    """Whether `printer` prints `attribute` as a reference to its weights file."""
    return isinstance(printer, ResourcePrinter) and printer.externalizes(attribute)


class ResourceError(ValueError):
    """A resource reference that its weights file cannot satisfy."""


class _Sidecar:
    """The open weights file of one IR file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp = _stamp(path)
        try:
            self.archive = np.load(path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise ResourceError(f"cannot read the weights file '{path}': {error}") from None


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


_open: list[_Sidecar] = []
"""The weights file read last: a file's references resolve one after another, so one open
file serves them all; it is reopened when it changes on disk and closed for the next."""


def _sidecar(ir_name: str) -> _Sidecar:
    ir_path = Path(ir_name)
    if not ir_path.is_file():
        raise ResourceError(
            f"#axq.resource data lives in a weights file next to the IR file, but the IR "
            f"came from '{ir_name}'; pass the .mlir file's path (not stdin)"
        )
    path = sidecar_of(ir_path).resolve()
    if not path.is_file():
        raise ResourceError(f"the weights file '{path}' of '{ir_name}' is missing")
    if _open and _open[0].path == path and _open[0].stamp == _stamp(path):
        return _open[0]
    while _open:
        _open.pop().archive.close()
    _open.append(_Sidecar(path))
    return _open[0]


def resolve(reference: ResourceAttr, ir_name: str) -> DenseIntOrFPElementsAttr:
    """The dense attribute that `reference` in the IR file `ir_name` stands for."""
    handle = reference.handle.data
    sidecar = _sidecar(ir_name)
    if handle not in sidecar.archive.files:
        raise ResourceError(f"the weights file '{sidecar.path}' has no blob '{handle}'")
    data = sidecar.archive[handle]
    type_ = reference.type
    expected = _raw_dtype(type_.get_element_type())
    count = int(np.prod(type_.get_shape()))
    if data.dtype != expected or data.size not in (count, 1):
        raise ResourceError(
            f"blob '{handle}' of '{sidecar.path}' holds {data.size} {data.dtype} values; "
            f"{type_} needs {count} {expected}"
        )
    return DenseIntOrFPElementsAttr(type_, BytesAttr(data.tobytes()))


def references(attributes: dict[str, Attribute]) -> Iterator[tuple[str, ResourceAttr]]:
    """The (name, reference) entries of an op's properties or attributes."""
    for name, attribute in attributes.items():
        if isinstance(attribute, ResourceAttr):
            yield name, attribute
