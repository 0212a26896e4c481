"""Registry of every project pass by its kebab-case xdsl-opt name.

Each entry imports its pass lazily so `xdsl-opt --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from xdsl.passes import ModulePass

# pass name -> "module:ClassName"
_PASS_LOCATIONS: dict[str, str] = {
    "axq-quantize": "aipuc.transforms.quantize:QuantizePass",
    "convert-axq-to-aipu": "aipuc.lowering.convert_axq_to_aipu:ConvertAxqToAipuPass",
    "mem-pools": "aipuc.lowering.mem_pools:MemPoolsPass",
    "aipu-tile": "aipuc.lowering.aipu_tile:AipuTilePass",
    "mem-promote": "aipuc.lowering.mem_promote:MemPromotePass",
    "mem-bufferize": "aipuc.lowering.mem_bufferize:MemBufferizePass",
    "mem-plan": "aipuc.lowering.mem_plan:MemPlanPass",
}


def _loader(location: str) -> Callable[[], type[ModulePass]]:
    module, cls = location.split(":")
    return lambda: getattr(import_module(module), cls)


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    name: _loader(location) for name, location in _PASS_LOCATIONS.items()
}
