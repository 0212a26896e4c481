"""The project's passes: their registry by kebab-case xdsl-opt name, and their base class.

Each registry entry imports its pass lazily so `xdsl-opt --help` stays fast. Every pass
derives from `AipucPass`, so a misspelled option or a bad value, in `xdsl-opt -p` or in a
pipeline string, is one line that names the pass, the option and the valid choices.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module

from xdsl.passes import ModulePass, get_pass_option_infos
from xdsl.utils.arg_spec import ArgSpec

from aipuc.errors import ConfigError, first_line

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
    "apply-pword-padding": "aipuc.transforms.apply_pword_padding:ApplyPwordPaddingPass",
    "validate-operators": "aipuc.transforms.validate_operators:ValidateOperatorsPass",
    "convert-axq-to-aipu": "aipuc.lowering.convert_axq_to_aipu:ConvertAxqToAipuPass",
    "aipu-fuse-eltwise": "aipuc.lowering.aipu_fuse_eltwise:AipuFuseEltwisePass",
    "aipu-dpu-constants": "aipuc.lowering.aipu_dpu_constants:AipuDpuConstantsPass",
    "mem-pools": "aipuc.lowering.mem_pools:MemPoolsPass",
    "aipu-tile": "aipuc.lowering.aipu_tile:AipuTilePass",
    "mem-promote": "aipuc.lowering.mem_promote:MemPromotePass",
    "aipu-dfs": "aipuc.lowering.aipu_dfs:AipuDfsPass",
    "mem-bufferize": "aipuc.lowering.mem_bufferize:MemBufferizePass",
    "aipu-dpu-regalloc": "aipuc.lowering.dpu_regalloc:DpuRegallocPass",
    "aipu-programs": "aipuc.lowering.aipu_programs:AipuProgramsPass",
    "mem-plan": "aipuc.lowering.mem_plan:MemPlanPass",
}


class PassOptionError(ConfigError):
    """A project pass was given an option it does not have, or a value it cannot take."""


@dataclass(frozen=True)
class AipucPass(ModulePass):
    """Base of every project pass: options are its dataclass fields, spelled like the
    CompilerConfig fields they mirror; option errors are `PassOptionError`s."""

    @classmethod
    def option_summary(cls) -> str:
        """`name: type = default` of every option, for error messages."""
        options = ", ".join(
            f"{info.name}: {info.expected_type.strip(chr(39))}"
            + (f" = {info.default_value}" if info.default_value is not None else "")
            for info in get_pass_option_infos(cls)
        )
        return f"its options are {options}" if options else "it takes no options"

    @classmethod
    def from_spec(cls, spec: ArgSpec):
        names = [field.name for field in dataclasses.fields(cls) if field.init]
        for given in spec.normalize_parameter_names().parameters:
            if given not in names:
                close = difflib.get_close_matches(given, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise PassOptionError(
                    f"{cls.name} has no option '{given}'{hint}; {cls.option_summary()}"
                )
        try:
            return super().from_spec(spec)
        except (ValueError, TypeError) as error:
            raise PassOptionError(
                f"{cls.name}: {first_line(error)}; {cls.option_summary()}"
            ) from None

    def check_choice(self, option: str, choices: Iterable[str]) -> None:
        """Refuse a value of `option` outside `choices` (for options with an enum's values)."""
        value, allowed = getattr(self, option), [str(choice) for choice in choices]
        if value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PassOptionError(
                f"{self.name}: {option} '{value}' is not one of {', '.join(allowed)}{hint}"
            )


def _loader(location: str) -> Callable[[], type[ModulePass]]:
    module, cls = location.split(":")
    return lambda: getattr(import_module(module), cls)


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    name: _loader(location) for name, location in _PASS_LOCATIONS.items()
}
