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
    "rewrite-dense-to-conv2d": (
        "aipuc.transforms.rewrite_dense_to_conv2d:RewriteDenseToConv2dPass"
    ),
    "rewrite-concat-to-resadd": (
        "aipuc.transforms.rewrite_concat_to_resadd:RewriteConcatToResaddPass"
    ),
    "apply-arithmetic-simplification": (
        "aipuc.transforms.apply_arithmetic_simplification:ArithmeticSimplificationPass"
    ),
    "simplify-mac-before-after-lut": (
        "aipuc.transforms.simplify_mac_before_after_lut:SimplifyMacAroundLutPass"
    ),
    "validate-operators": "aipuc.transforms.validate_operators:ValidateOperatorsPass",
    "convert-axq-to-aipu": "aipuc.lowering.convert_axq_to_aipu:ConvertAxqToAipuPass",
    "mem-pools": "aipuc.lowering.mem_pools:MemPoolsPass",
    "aipu-tile": "aipuc.lowering.aipu_tile:AipuTilePass",
    "mem-promote": "aipuc.lowering.mem_promote:MemPromotePass",
    "aipu-dfs": "aipuc.lowering.aipu_dfs:AipuDfsPass",
    "mem-bufferize": "aipuc.lowering.mem_bufferize:MemBufferizePass",
    "mem-plan": "aipuc.lowering.mem_plan:MemPlanPass",
}


def _loader(location: str) -> Callable[[], type[ModulePass]]:
    module, cls = location.split(":")
    return lambda: getattr(import_module(module), cls)


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    name: _loader(location) for name, location in _PASS_LOCATIONS.items()
}
