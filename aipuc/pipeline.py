"""The one pipeline builder: a `CompilerConfig` becomes the ordered `ModulePass`es to run.

`STAGES` is the table. Each stage names its phase and its steps; a step is a registered
pass (`aipuc.passes`) and, for the config-gated graph passes, the boolean field that
switches it on. A pass's options are its dataclass fields, spelled like the config fields
they are filled from, so the config fields the passes read are known from the table alone
(`fields_read_by_passes`).

The phases order the compilation around calibration, which is not a pass:

- `Phase.FLOAT`: rewrites of the float graph, before calibration, so a rewrite that changes
  numerics gets calibrated like any other op;
- `Phase.QUANTIZED`: from the calibrated graph (`quantized_model/calibrated.mlir`): the
  `axq-quantize` pass, then rewrites proven exact on the integer graph and validation;
- `Phase.LOWERING`: axq -> aipu layers (unit mapping) -> tiles, promotion, depth-first
  groups -> mem buffers, tile loops and tasks -> planned memory; emission then flattens
  the result into the instruction stream (aipuc/lowering/stage.py).

The driver runs each stage through `run_stage` (xDSL's `PassPipeline`, whose callback times
every pass and verifies the IR it leaves). `describe` gives the same passes as `xdsl-opt -p`
pipelines: replayed on the calibrated graph, the second gives the driver's IR.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.exceptions import VerifyException

from aipuc.config import CompilerConfig
from aipuc.errors import CompilationError
from aipuc.hardware import MemorySpace
from aipuc.passes import PASSES


class Phase(StrEnum):
    """Where a stage runs relative to calibration (see the module docstring)."""

    FLOAT = "float"
    QUANTIZED = "quantized"
    LOWERING = "lowering"


@dataclass(frozen=True)
class Step:
    """One pass of a stage. `enabled_by` is the boolean config field that switches it on (or,
    with `when=False`, off); `fixed` are options of this step that no config field mirrors."""

    pass_name: str
    enabled_by: str | None = None
    when: bool = True
    fixed: tuple[tuple[str, object], ...] = ()

    @property
    def pass_class(self) -> type[ModulePass]:
        return PASSES[self.pass_name]()

    def fields_read(self) -> tuple[str, ...]:
        fixed = dict(self.fixed)
        fields = dataclasses.fields(self.pass_class)
        options = tuple(field.name for field in fields if field.name not in fixed)
        return (self.enabled_by, *options) if self.enabled_by else options


@dataclass(frozen=True)
class Stage:
    name: str
    phase: Phase
    steps: tuple[Step, ...]
    attempts_by: str | None = None
    """The config field that bounds how often the stage runs again from its L1 promotion
    when an L1 pool overflows mem-plan (`run_stage`)."""


_L2, _L1 = MemorySpace.L2.value, MemorySpace.L1.value
_HEADROOM = ("l1_headroom", 0)  # raised by run_stage after a failed L1 plan, not by the config

STAGES: tuple[Stage, ...] = (
    Stage(
        "rewrite",
        Phase.FLOAT,
        (
            Step("rewrite-dense-to-conv2d", "rewrite_dense_to_conv2d"),
            Step("simplify-mac-before-after-lut", "simplify_mac_before_after_lut"),
            Step("apply-arithmetic-simplification", "apply_arithmetic_simplification"),
        ),
    ),
    Stage("quantize", Phase.QUANTIZED, (Step("axq-quantize"),)),
    Stage(
        "legalize",
        Phase.QUANTIZED,
        (
            Step("apply-arithmetic-simplification", "apply_arithmetic_simplification"),
            Step("rewrite-concat-to-resadd", "rewrite_concat_to_resadd"),
            Step("apply-pword-padding", "apply_pword_padding"),
            Step("validate-operators", "validate_operators"),
        ),
    ),
    Stage("convert", Phase.LOWERING, (Step("convert-axq-to-aipu"),)),
    Stage(
        "lower",
        Phase.LOWERING,
        (
            Step("aipu-fuse-eltwise"),
            Step("aipu-dpu-constants"),
            Step("mem-pools"),
            Step("aipu-tile"),
            Step(
                "mem-promote",
                "split_buffer_promotion",
                False,
                (("promote_to", (_L2, _L1)), _HEADROOM),
            ),
            Step(
                "mem-promote", "split_buffer_promotion", True, (("promote_to", (_L2,)), _HEADROOM)
            ),
            Step("aipu-dfs"),
            Step(
                "mem-promote", "split_buffer_promotion", True, (("promote_to", (_L1,)), _HEADROOM)
            ),
            Step("mem-bufferize"),
            Step("aipu-dpu-regalloc"),
            Step("aipu-programs"),
            Step("mem-plan"),
        ),
        attempts_by="max_memplan_attempts",
    ),
)
"""Every pass stage in order. Lowering stages are appended here with `Phase.LOWERING`.

Buffer promotion is one `mem-promote` (L2, then L1) before depth-first tiling, or with
`split_buffer_promotion` two, L2 before it and L1 after it, so that depth-first groups
choose first what stays in L1. A failed L1 plan runs the lowering again from the L1
promotion, with more headroom (`run_stage`), up to `max_memplan_attempts` times."""


def stages(phase: Phase) -> tuple[Stage, ...]:
    return tuple(stage for stage in STAGES if stage.phase == phase)


def _option(value: object) -> object:
    """A config value as a pass option: enums by their value (options are str/int/float/bool)."""
    return value.value if isinstance(value, Enum) else value


def build_passes(stage: Stage, config: CompilerConfig) -> tuple[ModulePass, ...]:
    """The passes `config` switches on in `stage`, each with its options from `config`."""
    passes = []
    for step in stage.steps:
        if step.enabled_by is not None and bool(getattr(config, step.enabled_by)) != step.when:
            continue
        pass_class = step.pass_class
        fixed = dict(step.fixed)
        options = {
            f.name: fixed[f.name] if f.name in fixed else _option(getattr(config, f.name))
            for f in dataclasses.fields(pass_class)
        }
        passes.append(pass_class(**options))
    return tuple(passes)


def fields_read_by_passes() -> dict[str, str]:
    """Config field -> the pass that reads it (as an option or as its switch), or for a
    stage's `attempts_by`, the stage."""
    readers: dict[str, str] = {}
    for stage in STAGES:
        for step in stage.steps:
            for name in step.fields_read():
                readers.setdefault(name, step.pass_name)
        if stage.attempts_by is not None:
            readers.setdefault(stage.attempts_by, f"{stage.name} stage")
    return readers


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class PassRun:
    """One pass as it ran: for the report's stage table and pass_dependency_graph.json."""

    module_pass: ModulePass
    stage: str
    start: float
    end: float

    @property
    def name(self) -> str:
        return self.module_pass.name

    @property
    def seconds(self) -> float:
        return self.end - self.start


def run_stage(
    stage: Stage, config: CompilerConfig, ctx: Context, module: ModuleOp
) -> list[PassRun]:
    """Apply the passes of `stage` to `module` in place; every pass must leave valid IR.

    A stage with `attempts_by` whose mem-plan finds an L1 pool overflowing runs again
    from its L1 promotion (the module as it was then), with the L1 headroom raised by the
    bytes the plan lacked: promotion then sends its least valuable tensors back out of
    L1. It stops at a plan that fits, after `attempts_by` attempts, or when no promoted
    tensor is left to send back; the error then says which."""
    passes = build_passes(stage, config)
    runs: list[PassRun] = []
    start = _l1_promotion(passes) if stage.attempts_by is not None else None
    if start is None:
        _run_passes(stage, passes, ctx, module, runs)
        return runs
    from aipuc.lowering.mem_plan import PoolOverflow

    attempts = getattr(config, stage.attempts_by)  # type: ignore[arg-type]
    _run_passes(stage, passes[:start], ctx, module, runs)
    before = module.clone()
    headroom = demoted = 0
    overflow: PoolOverflow | None = None
    for attempt in range(1, attempts + 1):
        if overflow is not None:
            headroom += overflow.peak - overflow.capacity
            _restore(module, before)
        promote = dataclasses.replace(passes[start], l1_headroom=headroom)  # type: ignore[type-var]
        _run_passes(stage, (promote,), ctx, module, runs)
        if overflow is not None and _demoted(module) == demoted:
            raise overflow.after(
                f", after {attempt - 1} attempt(s) ({stage.attempts_by}={attempts}), with no "
                "tensor promoted to L1 left to send back"
            )
        demoted = _demoted(module)
        try:
            _run_passes(stage, passes[start + 1 :], ctx, module, runs)
            return runs
        except PoolOverflow as error:
            if error.space != MemorySpace.L1:
                raise
            overflow = error
    assert overflow is not None
    raise overflow.after(
        f", after {attempts} attempt(s) ({stage.attempts_by}={attempts}: each failed L1 plan "
        "sends more promoted tensors back out of L1 and plans again)"
    )


def _l1_promotion(passes: Sequence[ModulePass]) -> int | None:
    """The index of the pass that promotes to L1, if any."""
    for index, module_pass in reversed(list(enumerate(passes))):
        if (
            module_pass.name == "mem-promote"
            and module_pass.enable_buffer_promotion  # type: ignore[attr-defined]
            and MemorySpace.L1.value in module_pass.promote_to  # type: ignore[attr-defined]
        ):
            return index
    return None


def _demoted(module: ModuleOp) -> int:
    """How many tensors the L1 promotion sent back to make its headroom."""
    from aipuc.lowering.mem_promote import promotion_record

    return (promotion_record(module) or {}).get("demoted", 0)


def _restore(module: ModuleOp, saved: ModuleOp) -> None:
    """Make `module` (in place: the caller holds it) a copy of `saved`."""
    copy = saved.clone()
    module.body.detach_block(module.body.block)
    module.body.add_block(copy.body.detach_block(copy.body.block))
    module.attributes.clear()
    module.attributes.update(copy.attributes)


def _run_passes(
    stage: Stage,
    passes: Sequence[ModulePass],
    ctx: Context,
    module: ModuleOp,
    runs: list[PassRun],
) -> None:
    """Apply `passes`, recording each run in `runs` (a failing one too) and verifying the IR
    each leaves."""
    started = time.time()
    running: ModulePass | None = None

    def after_each(previous: ModulePass | None, module: ModuleOp, next_: ModulePass | None):
        nonlocal started, running
        if previous is not None:
            runs.append(PassRun(previous, stage.name, started, time.time()))
            running = None
            _verify(module, previous.name)
        started, running = time.time(), next_

    try:
        PassPipeline(tuple(passes), after_each).apply(ctx, module)
    except CompilationError:
        if running is not None:
            runs.append(PassRun(running, stage.name, started, time.time()))
        raise


def _verify(module: ModuleOp, pass_name: str) -> None:
    try:
        module.verify()
    except VerifyException as error:
        raise CompilationError(
            f"pass {pass_name} left IR that does not verify: {error} (please report it)"
        ) from error


# --------------------------------------------------------------------------- xdsl-opt


def xdsl_opt_pipeline(config: CompilerConfig, phases: Sequence[Phase]) -> str:
    """The passes of `phases` as an `xdsl-opt -p` pipeline, every option spelled out."""
    return ",".join(
        spec(module_pass)
        for stage in STAGES
        if stage.phase in phases
        for module_pass in build_passes(stage, config)
    )


def spec(module_pass: ModulePass) -> str:
    """The pass as an xdsl-opt pipeline element, every option spelled out."""
    return str(module_pass.spec(include_default=True))


def describe(config: CompilerConfig) -> str:
    """The pipeline of `config` as the xdsl-opt commands that replay it, with comments."""
    lines = []
    for phase, source, where in (
        (Phase.FLOAT, "float.mlir", "before calibration, on the imported float graph"),
        (
            Phase.QUANTIZED,
            "quantized_model/calibrated.mlir",
            "after calibration: on the calibrated graph it gives quantized_model/model.mlir",
        ),
        (
            Phase.LOWERING,
            "quantized_model/model.mlir",
            "lowering: on the quantized graph it gives lowered/model.mlir (the emitter then "
            "flattens it into the instruction stream)",
        ),
    ):
        passes = xdsl_opt_pipeline(config, (phase,))
        lines.append(f"# {where}")
        lines.append(
            f"xdsl-opt {source} --print-debuginfo -p '{passes}'" if passes else "# no pass"
        )
    lines.append(
        "# a failed L1 plan runs the lowering again from mem-promote with a larger "
        "l1_headroom, up to max_memplan_attempts times (pass_dependency_graph.json lists "
        "the passes as they ran)"
    )
    return "\n".join(lines)
