"""CompilerConfig: the one definition of every compiler option.

The fields mirror docs/compiler-config.md (names, types, defaults, bounds, descriptions), so a
config written for the reference works unchanged. Validation, the JSON Schema, TOML/JSON files
and the CLI's ``--set`` all derive from these definitions; every problem surfaces as one
ConfigError line that names the field, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar, get_args, get_origin

import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from aipuc.errors import ConfigError
from aipuc.hardware import MemorySpace


class CompilerMode(StrEnum):
    """The operational mode of the compiler."""

    QUANTIZE_AND_LOWER = "quantize_and_lower"
    QUANTIZE_ONLY = "quantize_only"
    LOWER_ONLY = "lower_only"


class DPUAllocationAlgorithm(StrEnum):
    """The DPU register-allocation algorithm to use."""

    GRAPH = "graph"
    LAZY = "lazy"
    BACKJUMP_RECURSIVE = "backjump_recursive"
    TRY_ALL = "try_all"


class GraphCleanerCondition(StrEnum):
    """Available conditions for ONNX graph cleaning."""

    MAXIMUM_WEIGHT_TENSOR_SIZE = "maximum_weight_tensor_size"
    MAXIMUM_WEIGHT_TENSOR_FIRST_DIMENSION_SIZE = "maximum_weight_tensor_first_dimension_size"


class GraphCleanerNode(StrEnum):
    """Available node types for graph cleaning."""

    MATMUL = "MatMul"
    GEMM = "Gemm"
    CLIP = "Clip"


class MulticoreMode(StrEnum):
    """Multicore mode for multicore execution."""

    MULTIPROCESS = "multiprocess"
    MULTITHREAD = "multithread"
    BATCH = "batch"
    COOPERATIVE = "cooperative"
    PIPELINE = "pipeline"


class ProfilingLevel(StrEnum):
    """Levels used to identify the type of trace line in the trace file."""

    # Member names spell the trace-line tags; what each tag traces is the runtime's business.
    UNKNOWN = "[?]"
    B = "[B]"
    PB = "[PB]"
    PE = "[PE]"
    K = "[K]"
    M = "[M]"
    T = "[T]"


class QuantizationScheme(StrEnum):
    """Symbolic names for the quantization scheme.

    Attributes:
        - PER_TENSOR_HISTOGRAM: Quantizes activations per-tensor with a histogram observer,
            and weights per-channel with a minmax observer.
        - PER_TENSOR_MIN_MAX: Quantizes activations per-tensor with a min-max observer,
            and weights per-channel with a minmax observer.
        - HYBRID_PER_TENSOR_PER_CHANNEL: Quantizes the activations per-tensor with a histogram
            observer. If the activations are inputs to a depth-wise convolution, it uses
            per-channel quantization with a min-max observer. Weights are quantizers per-channel
            with a min-max observer.
    """

    PER_TENSOR_HISTOGRAM = "per_tensor_histogram"
    PER_TENSOR_MIN_MAX = "per_tensor_min_max"
    HYBRID_PER_TENSOR_PER_CHANNEL = "hybrid_per_tensor_per_channel"


_T = TypeVar("_T")

# Enums, paths and lists arrive from TOML, JSON and --set as plain strings and lists, which strict
# mode would reject for wanting Python instances; these fields alone validate laxly (a string must
# still name a member: there is no "1" -> 1 coercion anywhere).
Lax = Annotated[_T, Strict(False)]

TilingFactor = Annotated[int, Field(ge=1)]

_INSTRUCTIONS_HOMES = ("default", "l2")


def _check_instructions_home(value: str) -> str:
    if value not in _INSTRUCTIONS_HOMES:
        raise PydanticCustomError(
            "not_one_of", "not one of {allowed}", {"allowed": ", ".join(_INSTRUCTIONS_HOMES)}
        )
    return value


# The reference types these as plain strings ("Ok values: 'default', 'l2'"), without a schema
# enum, so the allowed values are checked here rather than by a Literal.
InstructionsHome = Annotated[str, AfterValidator(_check_instructions_home)]

# Sizes are in bytes and addresses are addresses: a negative one is always a typo.
_NON_NEGATIVE_FIELDS = (
    "l1_size_reserved",
    "l1_size_used",
    "l1_virtual_address",
    "l1_core0_physical_address",
    "l2_size_reserved",
    "l2_size_reserved_tasklist",
    "l2_size_used",
    "ddr_size_max",
    "ddr_size_reserved",
    "ddr_size_used",
)


class CompilerConfig(BaseModel):
    """The Configuration for the Axelera AI Compiler."""

    # The class docstring above is the schema's description, kept identical to the reference.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    apply_pword_padding: bool = Field(
        True,
        description=(
            "Applies a graph transformation to ensure that all inputs have the channel number a "
            "multiple of the PWORD. This is a requirement of the hardware and needs to be done as "
            "part of compilation."
        ),
    )
    rewrite_concat_to_resadd: bool = Field(
        True,
        description=(
            "Converts concatenation operations to binary addition. The hardware does not have "
            "native support for concatenation. It is achieved by padding and shifting inputs and "
            "adding them together. This modification makes the graph legal by converting "
            "concatenation ops."
        ),
    )
    rewrite_dense_to_conv2d: bool = Field(
        True,
        description=(
            "Instances of nn.dense are canonicalized to conv2d with kernel size 1x1. Native "
            "support for dense operations will come in upcoming changes."
        ),
    )
    remove_io_padding_and_layout_transform: bool = Field(
        True,
        description=(
            "After compilation, the graph is modified such that the inputs are padded and their "
            "layouts has changed. Provided that inputs will be padded and transposed in a "
            "pre-processing step on the host, such operations should be removed from the graph. "
            "This step should always run when using the SDK and its preprocessing elements."
        ),
    )
    apply_arithmetic_simplification: bool = Field(
        True,
        description=(
            "Applies arithmetic simplification rules (also known as fast-math) to improve "
            "performance. Warning, this optimization is not guaranteed to preserve numerics."
        ),
    )
    simplify_mac_before_after_lut: bool = Field(
        True,
        description=(
            "Attemtps to optimize multiply-add operations preceding and following look-up-table "
            "operations. Warning, this optimization is not guaranteed to preserve numerics."
        ),
    )
    validate_operators: bool = Field(
        True,
        description=(
            "Performs validation checks on operators to ensure compatibility with the hardware."
        ),
    )
    output_dir: Lax[Path] | None = Field(
        None,
        description=(
            "Directory path where compiler outputs, including generated code and artifacts, will "
            "be stored."
        ),
    )
    remove_output_dir: bool = Field(
        False,
        description="Whether to remove aka. clean the output directory before compilation.",
    )
    compiler_dir: Lax[Path] | None = Field(
        None,
        description=(
            "Root directory of the compiler package, used to locate internal resources and "
            "dependencies."
        ),
    )
    compiler_mode: Lax[CompilerMode] = Field(
        CompilerMode.QUANTIZE_AND_LOWER,
        description=(
            "The mode in which the compiler is running. This replaces the previous field "
            "'quantize_only'."
        ),
    )
    model_name: str = Field(
        "",
        description=(
            "Name of the model to run. This is used in logging, as well as to determine the "
            "model-specific configuration, ie a set of optimal settings for a particular model "
            "that the compiler can not yet determine on its own."
        ),
    )
    # The trailing space is the reference's own (its renderer shows it as "devices. .").
    onnx_opset_version: int = Field(
        17,
        ge=17,
        description=(
            "ONNX opset version used during PyTorch to ONNX conversion, which is a required step "
            "in the quantization pipeline for model deployment. PyTorch models must be converted "
            "to the ONNX format before quantization and compilation for edge devices. "
        ),
    )
    quantization_debug: bool = Field(
        False,
        description=(
            "Debugging mode for quantization. Dumps the model after quantization for accuracy "
            "measurement and debugging."
        ),
    )
    quantization_scheme: Lax[QuantizationScheme] = Field(
        QuantizationScheme.PER_TENSOR_HISTOGRAM,
        description="The type of quantization to use for post-training quantization.",
    )
    model_debug_save_dir: Lax[Path] | None = Field(
        None,
        description="Directory to store the quantized/optimized model for debugging.",
    )
    quantize_dw_channel_wise: bool = Field(
        False,
        description="Quantize depthwise convolution channel-wise.",
    )
    quantized_graph_export: bool = Field(
        True,
        description="Export the quantized graph to json file.",
    )
    remove_io_quantization: bool = Field(
        False,
        description="Remove quantization/dequantization of inputs/outputs from the graph.",
    )
    run_graph_cleaner: bool = Field(
        True,
        description="Whether to run the ONNX graph cleaner.",
    )
    graph_cleaner_split_pre_post_processing: bool = Field(
        True,
        description="Whether to split pre/post graph processing in graph cleaner.",
    )
    graph_cleaner_condition: Lax[GraphCleanerCondition] | None = Field(
        None,
        description="Condition to use for graph cleaning.",
    )
    graph_cleaner_node: Lax[GraphCleanerNode] | None = Field(
        None,
        description="Node name to use condition on.",
    )
    graph_cleaner_threshold: int = Field(
        0,
        description="Threshold to use for the condition.",
    )
    graph_cleaner_dump_core_onnx: str | None = Field(
        None,
        description=(
            "Optional filename to save the ONNX model's core part after graph cleaning for "
            "debugging."
        ),
    )
    graph_cleaner_dump_full_opt_onnx: str | None = Field(
        None,
        description=(
            "Optional filename to save the full optimized ONNX model after graph cleaning (but "
            "before any splitting) for debugging or inference."
        ),
    )
    remove_layout_transform_from_preamble: bool = Field(
        False,
        description=(
            "Remove layout transform node (transpose or reshape) from preamble of the model in "
            "case of NHWC data layout."
        ),
    )
    pipeline_spatial_tiles: bool = Field(
        True,
        description=(
            "Create a software pipeline for tasks within a spatial loop, across height tiles."
        ),
    )
    pipeline_channel_tiles: bool = Field(
        True,
        description=(
            "Create a software pipeline for tasks within a channel loop, across output channel "
            "tiles."
        ),
    )
    inter_operator_async: bool = Field(
        True,
        description="Enable asynchronous scheduling of operators in sequential pieces of IR.",
    )
    use_list_scheduler: bool = Field(
        False,
        description="Use resource-aware list scheduler for async scheduling in the compiler.",
    )
    unroll_prologue_epilogue: bool = Field(
        False,
        description=(
            "Unroll Prologue and Epilogue loops of software pipelines prior to scheduling in "
            "order to expose more parallelism to the compiler."
        ),
    )
    use_hw_tokens: bool = Field(
        True,
        description="Enable hardware tokens to manage synchronization where possible.",
    )
    group_ifdw_tasks: bool = Field(
        False,
        description=(
            "Hoist IFDW operations to an earlier point in time. This is for better IMC weightset "
            "utilization. This also merges the DMA transfers of a group."
        ),
    )
    double_buffer: bool = Field(
        True,
        description=(
            "Use a double-buffering scheme between the host and device memory when transferring "
            "network input and output data. This can be used to hide the latency of data "
            "transfers between the host and device."
        ),
    )
    max_memplan_attempts: int = Field(
        5,
        ge=1,
        description=(
            "The maximum number of loops the memory planner can take to find a valid network "
            "configuration that satisfies the memory constraints. If the memory is still "
            "overflowing after this number of attempts, the compiler will raise an error and stop "
            "the compilation."
        ),
    )
    max_tiling_attempts: int = Field(
        8,
        ge=1,
        description=(
            "The number of attempts the compiler can use to tile an operator to make it fit in "
            "the memory. If the operator still does not fit after this number of attempts, the "
            "compiler will raise an error and stop the compilation."
        ),
    )
    force_h_tiling: TilingFactor | None = Field(
        None,
        description=(
            "Force the compiler to use a specific set of tiling factors for the height dimension "
            "of the operator."
        ),
    )
    force_oc_tiling: TilingFactor | None = Field(
        None,
        description=(
            "Force the compiler to use a specific set of tiling factors for the output channel "
            "dim. of the operator."
        ),
    )
    tiling_depth: int = Field(
        1,
        ge=1,
        description=(
            "The maximum tiling depth to search for. Setting this to a value higher than 1 will "
            "make the compiler attempt to apply depth-first scheduling to the network. A good "
            "setting for this parameter is either 1 to disable depth-first scheduling or 6 if one "
            "wants to enable depth-first scheduling."
        ),
    )
    dfs_search_constraint: int | None = Field(
        None,
        description=(
            "Limit the search space of the depth-first algorithm. This is currently needed for "
            "large networks. If set to None, the compiler will do its default full search. If set "
            "to an integer value, the compiler will do a limited search, where "
            "'search_space[:dfs_search_constraint]' will be the constraint search space. A good "
            "first value to set this is 1."
        ),
    )
    enable_buffer_promotion: bool = Field(
        True,
        description=(
            "Controls the memory optimization mechanism that allows buffers to be strategically "
            "relocated from lower memory hierarchies (e.g., DDR) to higher, faster memory levels "
            "(e.g., L2, L1). When enabled, the compiler analyzes buffer usage patterns and "
            "automatically promotes frequently accessed buffers to faster memory tiers when "
            "possible, reducing memory access latency and potentially improving execution "
            "performance. The promotion process respects configured memory constraints and works "
            "in conjunction with the defined memory pools. For fine-grained control, this can be "
            "used together with split_buffer_promotion to improve depth-first scheduling between "
            "promotion passes."
        ),
    )
    split_buffer_promotion: bool = Field(
        False,
        description=(
            "Split buffer promotion into two separate passes: one for L1 and one for L2 such that "
            "DFS scheduling can be applied in between the two passes. This enables DFS to more "
            "effectively choose buffers for scheduling in L1."
        ),
    )
    io_memory_pool: Lax[MemorySpace] = Field(
        MemorySpace.DDR,
        description=(
            "The initial memory home for the input/output buffers. During buffer promotion, "
            "buffers can be moved up."
        ),
    )
    constant_memory_pool: Lax[MemorySpace] = Field(
        MemorySpace.DDR,
        description=(
            "The initial memory home for the constant buffers. During buffer promotion, buffers "
            "can be moved up."
        ),
    )
    workspace_memory_pool: Lax[MemorySpace] = Field(
        MemorySpace.DDR,
        description=(
            "The initial memory home for the workspace buffers. During buffer promotion, buffers "
            "can be moved up."
        ),
    )
    l1_constraint: int | None = Field(
        None,
        description=(
            "The maximum amount of memory that the compiler is allowed to use for L1 memory. This "
            "can be used to teach the compiler about the memory constraints of the target device."
        ),
    )
    l2_constraint: int | None = Field(
        None,
        description=(
            "The maximum amount of memory that the compiler is allowed to use for L2 memory. This "
            "can be used to teach the compiler about the memory constraints of the target device."
        ),
    )
    ddr_constraint: int | None = Field(
        None,
        description=(
            "The maximum amount of memory that the compiler is allowed to use for DDR memory. "
            "This can be used to teach the compiler about the memory constraints of the target "
            "device."
        ),
    )
    use_sysdma: bool = Field(
        False,
        description=(
            "Use the System DMA for weight transfers between DDR and L2 and Core DMA L2 to L1 "
            "transfers. This will also create intermediate buffers in L2. If set to False, the "
            "Core DMA will directly transfer from DDR to L1."
        ),
    )
    ignore_weight_buffers: bool = Field(
        True,
        description=(
            "Ignore weight buffers when determining tiling factor during memory scheduling."
        ),
    )
    dma_dual_channel: bool = Field(
        True,
        description="Whether to enable the dual channel DMA optimization.",
    )
    dpu_constants_home: Literal[MemorySpace.DDR, MemorySpace.L2] = Field(
        MemorySpace.L2,
        description="Determine where DPU constants are placed.",
    )
    dpu_instructions_home: InstructionsHome = Field(
        "default",
        description="Determine where DPU instructions are placed. Ok values: 'default', 'l2'.",
    )
    dwpu_instructions_home: InstructionsHome = Field(
        "default",
        description="Determine where DWPU instructions are placed. Ok values: 'default', 'l2'.",
    )
    page_memory: bool = Field(
        True,
        description=(
            "Apply paging to L2 and DDR memory to reduce memory fragmentation and increase memory "
            "utilization."
        ),
    )
    elf_in_ddr: bool = Field(
        True,
        description="Store the ELF file in DDR memory, instead of L2 memory.",
    )
    stream_tasklist: bool = Field(
        True,
        description=(
            "Enable tasklist streaming, ie loading chunks of the tasklist into the AIPU memory "
            "on-the-fly."
        ),
    )
    mvm_utilization_limit: float = Field(
        1.0,
        ge=0.125,
        le=1.0,
        description=(
            "The utilization limit for the MVM array. This can be used to reduce the power "
            "consumption of the MVM array by reducing the number of active MACs. Reducing the "
            "utilization limit can lead to some features, such as swICR, being automatically "
            "disabled. If that is the case, a warning message will be shown."
        ),
    )
    enable_icr: bool = Field(
        True,
        description=(
            "Enable In-Core Replication (ICR) for layers with small output-channel counts. This "
            "can be used to improve the performance of layers with small output-channel counts."
        ),
    )
    icrx_force: int = Field(
        -1,
        description=(
            "Force a specific In-Core Replication (ICR) factor. Useful for debugging purposes. If "
            "set to -1, the factor will be automatically determined and not forced."
        ),
    )
    icrx_parallel_block_threshold: int = Field(
        4,
        ge=1,
        le=4,
        description=(
            "The maximum number of parallel blocks on the IMC for which ICR is still applied. "
            "This can be used to limit the number of parallel blocks on the IMC for which ICR is "
            "applied."
        ),
    )
    icrx_max_factor: int = Field(
        8,
        ge=2,
        le=8,
        description=(
            "The maximum In-Core Replication (ICR) factor along the X direction of the image. "
            "This can be used to limit the maximum ICR factor along the X direction of the image."
        ),
    )
    enable_swicr: bool = Field(
        True,
        description=(
            "Enable Subword In-Core Replication (swICR) for first layers with small input channel "
            "counts. This can be used to improve the performance of first layers with small input "
            "channel counts."
        ),
    )
    imc_double_buffer_pipeline: bool = Field(
        False,
        description=(
            "Enable a double-buffering scheme when loading weights into the weight sets of the "
            "MVM IMC array in software pipelines. This can be used to hide the latency of loading "
            "weights."
        ),
    )
    imc_double_buffer_sequential: bool = Field(
        False,
        description=(
            "Enable a double-buffering scheme when loading weights into the weight sets of the "
            "MVM IMC array in sequential sections of IR. This can be used to hide the latency of "
            "loading weights."
        ),
    )
    dpu_allocation_algorithm: Lax[DPUAllocationAlgorithm] = Field(
        DPUAllocationAlgorithm.TRY_ALL,
        description=(
            "Selects the register-allocation algorithm used by the DPU vector unit. Selecting "
            "all, tries all methods until allocation has succeeded."
        ),
    )
    softmax_neutral_value: float = Field(
        -100000.0,
        description=(
            "This value is used for elements that should not influence the numerics of the "
            "softmax. For example, this is used when padding dimensions so that they are pword "
            "aligned. Paddding with zeros affects the numerics, but padding this value should "
            "cause the LUTs that implement the softmax approximation to output zero. Note that "
            "this value is not ninf since that can cause rounding issues in float18. A "
            "sufficiently negative value is enough as it will exceed the highest bin of the LUT."
        ),
    )
    frequency: int = Field(
        800000000,
        ge=20000000,
        le=800000000,
        description="The clock frequency of the device in Hz.",
    )
    aipu_cores_used: int = Field(
        1,
        ge=1,
        le=4,
        description="The number of AIPU the compiler will compile for.",
    )
    resources_used: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description=(
            "The fraction of (memory) resources that the compiled model is allowed to use."
        ),
    )
    multicore_mode: Lax[MulticoreMode] = Field(
        MulticoreMode.MULTIPROCESS,
        description="The mode for multicore execution.",
    )
    l1_size_reserved: int = Field(
        524288,
        description="The size of the L1 memory reserved for the system in bytes.",
    )
    l1_size_used: int = Field(
        4194304,
        description=(
            "The size of the L1 memory in bytes that is available for the compiler to use."
        ),
    )
    l1_virtual_address: int = Field(
        206175207424,
        description="The virtual address of the L1 memory. Copied from mmap_config.h.",
    )
    l1_core0_physical_address: int = Field(
        402653184,
        description=(
            "The physical address of the L1 memory in core 0. Copied from memorymap.h. This is "
            "needed because the aicore sim does not support virtual memory."
        ),
    )
    l2_size_reserved: int = Field(
        1245184,
        description=(
            "The size of the L2 memory reserved for the system in bytes. See SDK-4992 for details "
            "on the default value."
        ),
    )
    l2_size_reserved_tasklist: int = Field(
        1048576,
        description=(
            "The size of the L2 memory reserved per core in bytes. This primarily used to store "
            "the tasklist."
        ),
    )
    l2_size_used: int = Field(
        33554432,
        description="The size of the L2 memory in bytes.",
    )
    ddr_size_max: int = Field(
        1073741824,
        description="The size of the DDR memory in bytes.",
    )
    ddr_size_reserved: int = Field(
        33554432,
        description="The size of the DDR memory reserved for the system in bytes.",
    )
    ddr_size_used: int = Field(
        1073741824,
        description="The size of the DDR memory in bytes.",
    )
    host_processes_used: int = Field(
        1,
        description="The number of host processes to use during execution.",
    )
    input_dmabuf: bool = Field(
        False,
        description="Use DMA for input data transfer.",
    )
    output_dmabuf: bool = Field(
        False,
        description="Use DMA for output data transfer.",
    )
    runtime_dir: Lax[Path] | None = Field(
        None,
        description="The directory for the Axelera runtime.",
    )
    device_dir: Lax[Path] | None = Field(
        None,
        description="The directory for the device.",
    )
    trace_tvm_passes: bool = Field(
        False,
        description=(
            "Whether to trace TVM passes. Enabling this flag collects execution details for each "
            "TVM pass, including start/end timestamps, parent-child relationships, optimization "
            "levels, etc. This information is written to the pass_dependency_graph.json file."
        ),
    )
    propagate_span_information: bool = Field(
        True,
        description="Whether to propagate span information through the compiler.",
    )
    profiling_levels: Lax[tuple[Lax[ProfilingLevel], ...]] = Field(
        (),
        description=(
            "The profiling levels to enable. Enabling multiple levels simultaneously can cause "
            "the tracing to be inaccurate."
        ),
    )
    profiling_drop_percentile: float = Field(
        0.25,
        ge=0.0,
        lt=1.0,
        description=(
            "Drop the first and last n percentiles of the profiling data. This gets rid of "
            "outliers, where the chip is spinning up/down."
        ),
    )
    randomize_onnx_model: bool = Field(
        True,
        description=(
            "Randomize the weights of any cached ONNX models before generating the error artifact."
        ),
    )
    save_error_artifact: bool = Field(
        False,
        description=(
            "Creates an archive containing a copy of the lowered model and relevant error messages."
        ),
    )

    def __init__(self, /, **fields: Any) -> None:
        # Built in code or from a file, a bad config reports itself the same one-line way.
        with _as_config_error():
            super().__init__(**fields)

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        problems = self._rule_violations()
        if problems:
            joined = "; ".join(problems)
            raise PydanticCustomError("config_rules", "{problems}", {"problems": joined})
        return self

    def _rule_violations(self) -> list[str]:
        """Rules that tie fields together, or that the reference states only in its prose.

        Not here: "lower_only needs a quantized input" depends on the model, so the driver checks
        it; a low mvm_utilization_limit disabling swICR is a warning by the reference's own words;
        quantize_dw_channel_wise combines with every quantization scheme.
        """
        problems = [
            f"config field '{name}': {getattr(self, name)} must not be negative"
            for name in _NON_NEGATIVE_FIELDS
            if getattr(self, name) < 0
        ]
        l1_usable = self.l1_size_used - self.l1_size_reserved
        if l1_usable <= 0:
            problems.append(
                f"config field 'l1_size_reserved' ({self.l1_size_reserved}) must be below "
                f"'l1_size_used' ({self.l1_size_used})"
            )
        # L2 also holds one tasklist area per core in use.
        l2_reserved = self.l2_size_reserved + self.aipu_cores_used * self.l2_size_reserved_tasklist
        l2_usable = self.l2_size_used - l2_reserved
        if l2_usable <= 0:
            problems.append(
                f"config fields 'l2_size_reserved' + 'aipu_cores_used' * "
                f"'l2_size_reserved_tasklist' ({self.l2_size_reserved} + {self.aipu_cores_used} * "
                f"{self.l2_size_reserved_tasklist} = {l2_reserved}) must be below 'l2_size_used' "
                f"({self.l2_size_used})"
            )
        ddr_usable = self.ddr_size_used - self.ddr_size_reserved
        if ddr_usable <= 0:
            problems.append(
                f"config field 'ddr_size_reserved' ({self.ddr_size_reserved}) must be below "
                f"'ddr_size_used' ({self.ddr_size_used})"
            )
        if self.ddr_size_used > self.ddr_size_max:
            problems.append(
                f"config field 'ddr_size_used' ({self.ddr_size_used}) must not be above "
                f"'ddr_size_max' ({self.ddr_size_max})"
            )
        problems += _memory_constraint_violations(
            "l1_constraint", self.l1_constraint, l1_usable, "'l1_size_used' - 'l1_size_reserved'"
        )
        problems += _memory_constraint_violations(
            "l2_constraint",
            self.l2_constraint,
            l2_usable,
            "'l2_size_used' - 'l2_size_reserved' - 'aipu_cores_used' * 'l2_size_reserved_tasklist'",
        )
        problems += _memory_constraint_violations(
            "ddr_constraint",
            self.ddr_constraint,
            ddr_usable,
            "'ddr_size_used' - 'ddr_size_reserved'",
        )
        if self.icrx_force != -1 and not 1 <= self.icrx_force <= self.icrx_max_factor:
            problems.append(
                f"config field 'icrx_force': {self.icrx_force} must be -1 (automatic) or between 1 "
                f"and 'icrx_max_factor' ({self.icrx_max_factor})"
            )
        if (self.graph_cleaner_condition is None) != (self.graph_cleaner_node is None):
            problems.append(
                "config fields 'graph_cleaner_condition' and 'graph_cleaner_node' must be set "
                f"together or both be null, not {_show(self.graph_cleaner_condition)} and "
                f"{_show(self.graph_cleaner_node)}"
            )
        if self.graph_cleaner_threshold < 0:
            problems.append(
                f"config field 'graph_cleaner_threshold': {self.graph_cleaner_threshold} must not "
                "be negative"
            )
        elif self.graph_cleaner_condition is not None and self.graph_cleaner_threshold == 0:
            problems.append(
                "config field 'graph_cleaner_threshold': 0 must be positive when "
                f"'graph_cleaner_condition' is set ({_show(self.graph_cleaner_condition)})"
            )
        if self.dfs_search_constraint is not None and self.dfs_search_constraint < 1:
            problems.append(
                f"config field 'dfs_search_constraint': {self.dfs_search_constraint} is below 1 "
                "(null means the full search)"
            )
        # A count of processes: zero or fewer cannot run anything.
        if self.host_processes_used < 1:
            problems.append(
                f"config field 'host_processes_used': {self.host_processes_used} is below 1"
            )
        # The reference: padded softmax lanes must drop out, so the value must be "sufficiently
        # negative" (and finite, "not ninf", which allow_inf_nan=False already ensures).
        if self.softmax_neutral_value >= 0:
            problems.append(
                f"config field 'softmax_neutral_value': {self.softmax_neutral_value} must be "
                "negative so that padded lanes do not contribute to the softmax"
            )
        # split_buffer_promotion splits the promotion pass in two; without promotion there is
        # nothing to split, and silently ignoring it would hide a contradictory config.
        if self.split_buffer_promotion and not self.enable_buffer_promotion:
            problems.append(
                "config field 'split_buffer_promotion' is true but 'enable_buffer_promotion' "
                "is false"
            )
        return problems

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of config files, generated from the fields (for editors and the CLI)."""
        return cls.model_json_schema()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Reads a .toml or .json config file; fields it does not name keep their defaults."""
        path = Path(path)
        file_format = _file_format(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as error:
            reason = getattr(error, "strerror", None) or error
            raise ConfigError(f"cannot read config file {path}: {reason}") from error
        fields = _parse_toml(path, text) if file_format == "toml" else _parse_json(path, text)
        try:
            return cls(**fields)
        except ConfigError as error:
            raise ConfigError(f"config file {path}: {error}") from error

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the config as TOML or JSON, chosen by the file's suffix."""
        path = Path(path)
        text = self.to_toml() if _file_format(path) == "toml" else self.to_json()
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot write config file {path}: {error.strerror}") from error

    def to_toml(self) -> str:
        # TOML has no null: unset optional fields are left out, which loads back as null.
        return tomli_w.dumps(self.model_dump(mode="json", exclude_none=True))

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"

    def show(self) -> str:
        """The effective config as TOML, every field listed; unset ones as comments."""
        return "".join(
            f"# {name} is not set\n" if value is None else tomli_w.dumps({name: value})
            for name, value in self.model_dump(mode="json").items()
        )

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed, validated as a whole (the model is frozen)."""
        return type(self)(**(self.model_dump() | changes))

    def with_overrides(self, assignments: Iterable[str]) -> Self:
        """Applies the CLI's ``--set key=value`` assignments.

        A value is read as JSON when it parses (numbers, true/false, null, lists, quoted strings)
        and as a bare string otherwise, so ``--set io_memory_pool=global.l2`` needs no quotes.
        """
        changes: dict[str, Any] = {}
        for assignment in assignments:
            key, equals, text = assignment.partition("=")
            if not equals:
                raise ConfigError(f"--set expects key=value, got {assignment!r}")
            try:
                changes[key.strip()] = json.loads(text)
            except json.JSONDecodeError:
                changes[key.strip()] = text
        return self.replace(**changes)


def _memory_constraint_violations(
    field: str, constraint: int | None, usable: int, usable_formula: str
) -> list[str]:
    if constraint is None:
        return []
    if constraint <= 0:
        return [f"config field '{field}': {constraint} must be positive (or null for no limit)"]
    # When usable <= 0 the sizes themselves are already reported as wrong.
    if 0 < usable < constraint:
        return [
            f"config field '{field}': {constraint} is above the usable size {usable} "
            f"({usable_formula})"
        ]
    return []


def _file_format(path: Path) -> Literal["toml", "json"]:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix == ".json":
        return "json"
    raise ConfigError(f"config file {path}: unknown suffix {suffix!r}, expected .toml or .json")


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:  # its message carries the line and column
        raise ConfigError(f"config file {path}: invalid TOML: {error}") from error


def _parse_json(path: Path, text: str) -> dict[str, Any]:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"config file {path}, line {error.lineno}: invalid JSON: {error.msg}"
        ) from error
    if not isinstance(fields, dict):
        raise ConfigError(
            f"config file {path}: expected a JSON object of config fields, "
            f"not {type(fields).__name__}"
        )
    return fields


@contextmanager
def _as_config_error() -> Iterator[None]:
    """Turns pydantic's multi-line report into the one-line ConfigError the CLI prints."""
    try:
        yield
    except ValidationError as error:
        message = "; ".join(_describe(detail) for detail in error.errors())
        raise ConfigError(message) from error


_BOUND_PROBLEMS = {
    "greater_than_equal": ("ge", "is below the minimum"),
    "greater_than": ("gt", "is not above the exclusive minimum"),
    "less_than_equal": ("le", "is above the maximum"),
    "less_than": ("lt", "is not below the exclusive maximum"),
}

_EXPECTED_TYPES = {
    "int_type": "an integer",
    "bool_type": "a boolean (true or false)",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "path_type": "a path string",
    "tuple_type": "a list",
}


def _describe(detail: ErrorDetails) -> str:
    kind, location, context = detail["type"], detail["loc"], detail.get("ctx", {})
    if kind == "config_rules":
        return context["problems"]
    if not location:
        return f"config: {detail['msg']}"
    name = str(location[0])
    if kind == "extra_forbidden":
        return _unknown_field(name)
    # An item of a list field is named like profiling_levels[1].
    field = name + "".join(f"[{index}]" for index in location[1:])
    if kind in _BOUND_PROBLEMS:
        bound, problem = _BOUND_PROBLEMS[kind]
        problem = f"{problem} {context[bound]}"
    elif kind in ("enum", "literal_error"):
        annotation = CompilerConfig.model_fields[name].annotation
        problem = f"is not one of {', '.join(_allowed_values(annotation))}"
    elif kind == "not_one_of":
        problem = f"is not one of {context['allowed']}"
    elif kind in _EXPECTED_TYPES:
        problem = f"is not {_EXPECTED_TYPES[kind]}"
    else:
        problem = f"is not accepted: {detail['msg']}"
    return f"config field '{field}': {_show(detail['input'])} {problem}"


def _unknown_field(name: str) -> str:
    guesses = difflib.get_close_matches(name, CompilerConfig.model_fields, n=1)
    hint = f" (did you mean '{guesses[0]}'?)" if guesses else ""
    return f"unknown config field '{name}'{hint}"


def _allowed_values(annotation: Any) -> list[str]:
    """The spellings an enum or literal field accepts, found through Optional, tuple, Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    if get_origin(annotation) is Literal:
        return [str(value) for value in get_args(annotation)]
    return [value for argument in get_args(annotation) for value in _allowed_values(argument)]


def _show(value: Any) -> str:
    """A value as a config file spells it: strings quoted, booleans and null in lower case."""
    if isinstance(value, str | Path):
        return repr(str(value))
    return json.dumps(value, default=str)
