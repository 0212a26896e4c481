"""Every lowering config field issue 8 names, end to end: setting it changes the lowered IR or
the instruction stream the way compiler-config.md says, and the stream stays bit-exact with
`run_quantized`; each refusal is a clear error naming what does not fit.

One small probe model is quantized once: conv 3->8 3x3 (swICR: 27 rows; ICR 8), ReLU,
conv 8->24 3x3 (swICR 72 rows, ICR 2; without swICR 576 rows = two K chunks), max pool,
depthwise 3x3 + residual add, conv 24->16 1x1 (ICR 4), sigmoid: 16x16 -> 16x8x8. Facts are
read from the compiled folder (records of the stream, memory_plan.json, lowered IR).
"""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from lowering_harness import (
    assert_stream_equals_reference,
    lower,
    memory_plan,
    quantize,
    samples_of,
    stream_facts,
)
from onnx import TensorProto, helper, numpy_helper

from aipuc.cli import main
from aipuc.errors import CompilationError
from aipuc.models.builder import IR_VERSION, OPSET
from aipuc.pipeline import fields_read_by_passes
from aipuc.runtime.sim.isa import MvmFlag


def probe_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    initializers, nodes = [], []

    def constant(name: str, array) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def conv(x: str, y: str, cin: int, cout: int, kernel: int, group: int = 1) -> None:
        fan_in = cin // group * kernel * kernel
        weight = rng.standard_normal((cout, cin // group, kernel, kernel)) * np.sqrt(2 / fan_in)
        inputs = [x, constant(f"{y}.w", weight), constant(f"{y}.b", rng.normal(0, 0.1, cout))]
        nodes.append(
            helper.make_node(
                "Conv",
                inputs,
                [y],
                name=y,
                kernel_shape=[kernel, kernel],
                pads=[kernel // 2] * 4,
                group=group,
            )
        )

    conv("input", "a", 3, 8, 3)
    nodes.append(helper.make_node("Relu", ["a"], ["a.relu"], name="a.relu"))
    conv("a.relu", "b", 8, 24, 3)
    nodes.append(
        helper.make_node(
            "MaxPool", ["b"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
        )
    )
    conv("pool", "dw", 24, 24, 3, group=24)
    nodes.append(helper.make_node("Add", ["dw", "pool"], ["res"], name="res"))
    conv("res", "d", 24, 16, 1)
    nodes.append(helper.make_node("Sigmoid", ["d"], ["output"], name="sigmoid"))
    graph = helper.make_graph(
        nodes,
        "probe",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 16, 8, 8])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    onnx.checker.check_model(model, full_check=True)
    return model


TIGHT_L1 = 40960
"""Fits the probe only with height tiles; counting weights needs more of them."""
SMALL_L1 = 16384
"""Every layer's tiles fit with weights ignored, but not the plan of everything L1 holds."""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """(quantize_only folder, samples, reference outputs) of the probe model."""
    model = probe_model()
    samples = samples_of(model, 2)
    folder = tmp_path_factory.mktemp("probe") / "quantized"
    compiled = quantize(model, samples, folder)
    return folder, samples, [compiled.run_quantized(sample) for sample in samples]


@pytest.fixture(scope="module")
def compiled(probe, tmp_path_factory):
    """fields -> the lowered folder, checked bit-exact once (each config compiles once)."""
    cache = {}

    def get(**fields):
        key = tuple(sorted(fields.items()))
        if key not in cache:
            folder, samples, references = probe
            out = tmp_path_factory.mktemp("lowered") / "out"
            lower(folder, out, **fields)
            assert_stream_equals_reference(out, references, samples)
            cache[key] = out
        return cache[key]

    return get


def mvm_field(folder, name: str) -> list[int]:
    return [int(record[name]) for record in stream_facts(folder).mvm]


def mvm_rows(folder) -> list[int]:
    """Output rows of each MVM record."""
    return [int(record["out_hw"][0]) for record in stream_facts(folder).mvm]


def swicr_records(folder) -> int:
    return sum(bool(int(r["flags"]) & MvmFlag.SWICR) for r in stream_facts(folder).mvm)


# ------------------------------------------------------------------------------ unit mapping


def test_enable_icr(compiled):
    """ICR on (default): the narrow layers run 8, 2 (both K chunks) and 4 copies; off: one."""
    assert mvm_field(compiled(), "icr") == [8, 2, 2, 4]
    assert set(mvm_field(compiled(enable_icr=False), "icr")) == {1}


def test_icrx_max_factor(compiled):
    assert mvm_field(compiled(icrx_max_factor=3), "icr") == [3, 2, 2, 3]


def test_icrx_force(compiled):
    assert set(mvm_field(compiled(icrx_force=2), "icr")) == {2}


def test_icrx_force_that_does_not_fit_names_the_layer(probe, tmp_path):
    """24 output channels x 3 copies exceed the 64 MVM columns."""
    with pytest.raises(CompilationError) as caught:
        lower(probe[0], tmp_path / "out", icrx_force=3)
    assert re.match(
        r'icrx_force=3 does not fit axq.conv2d at loc\("b"\): 24 output channels x 3 copies '
        r"exceed the 64 MVM columns or its output width 16; use a factor <= 2$",
        str(caught.value),
    )
    assert not (tmp_path / "out" / "compiled_model").exists()


def test_icrx_parallel_block_threshold(compiled):
    """The second conv has two K chunks (two parallel IMC blocks), and without swICR the
    first too: a threshold of 1 turns their ICR off, the default of 4 keeps it; one-chunk
    layers keep theirs."""
    assert mvm_field(compiled(icrx_parallel_block_threshold=1), "icr") == [8, 1, 1, 4]
    assert mvm_field(compiled(enable_swicr=False), "icr") == [8, 8, 2, 2, 4]
    threshold = compiled(enable_swicr=False, icrx_parallel_block_threshold=1)
    assert mvm_field(threshold, "icr") == [1, 1, 1, 1, 4]


def test_enable_swicr(compiled):
    """swICR packs the first layer's 3 channels x 9 taps into 27 K rows; without it every tap
    is a whole PWORD (9 x 64 = 576 rows: two K chunks of 512 and 64). Later layers are never
    packed (swICR is for first layers)."""
    assert mvm_field(compiled(), "k_len") == [27, 512, 64, 64]
    assert swicr_records(compiled()) == 1
    plain = compiled(enable_swicr=False)
    assert mvm_field(plain, "k_len") == [512, 64, 512, 64, 64]
    assert swicr_records(plain) == 0


def test_mvm_utilization_limit(compiled, caplog):
    """Half the MVM rows: weightsets of at most 256 rows, and swICR disabled (with a warning)."""
    limited = compiled(mvm_utilization_limit=0.5)
    assert mvm_field(limited, "k_len") == [256, 256, 64, 256, 256, 64, 64]
    assert swicr_records(limited) == 0
    assert 'swICR disabled for axq.conv2d at loc("a"): mvm_utilization_limit 0.5' in caplog.text


# ------------------------------------------------------------------------------ tiling


IN_DDR = {"enable_buffer_promotion": False}
"""Tensors stay in DDR: promoted to L1, the probe moves no bytes off core at all."""


def test_force_h_tiling(compiled):
    """Four height tiles: every MVM runs a quarter of its output rows per record."""
    assert mvm_rows(compiled()) == [16, 16, 16, 8]
    forced = compiled(force_h_tiling=4)
    assert mvm_rows(forced) == [4] * 12 + [2] * 4
    assert "aipu.tile_loop" in (forced / "lowered" / "model.mlir").read_text()


def test_force_h_tiling_holds_in_depth_first_groups(compiled):
    """aipu-tile records force_h_tiling on the module and aipu-dfs tiles its groups by it: a
    group splits its last layer's rows into 4 tiles, each member computing its rows of each
    tile. Here the members' successors read no halo rows, so the MVM records are those of
    layer-by-layer forced tiling, and fewer bytes move (intermediates stay in L1)."""
    alone = compiled(**IN_DDR, force_h_tiling=4)
    grouped = compiled(**IN_DDR, force_h_tiling=4, tiling_depth=4)
    assert mvm_rows(grouped) == mvm_rows(alone) == [4] * 12 + [2] * 4
    assert stream_facts(grouped).off_core_bytes < stream_facts(alone).off_core_bytes


def test_force_oc_tiling(compiled):
    """Without ICR, two output-channel tiles halve every MVM record's columns; with ICR the
    copies share all columns, so those layers keep one channel tile."""
    assert mvm_field(compiled(enable_icr=False), "n") == [8, 24, 24, 16]
    two = compiled(enable_icr=False, force_oc_tiling=2)
    assert mvm_field(two, "n") == [4, 4, 12, 12, 12, 12, 8, 8]
    assert mvm_field(compiled(force_oc_tiling=2), "n") == [8, 24, 24, 16]


def test_force_oc_tiling_holds_in_depth_first_groups(compiled):
    """Members of a depth-first group keep their output-channel tiles: the same N chunks."""
    alone = compiled(**IN_DDR, enable_icr=False, force_oc_tiling=2)
    grouped = compiled(**IN_DDR, enable_icr=False, force_oc_tiling=2, tiling_depth=4)
    assert mvm_field(grouped, "n") == mvm_field(alone, "n") == [4, 4, 12, 12, 12, 12, 8, 8]
    assert stream_facts(grouped).off_core_bytes < stream_facts(alone).off_core_bytes


def test_ignore_weight_buffers(compiled):
    """Under a tight L1, counting the weightsets (not the default) takes more height tiles."""
    ignored = stream_facts(compiled(l1_constraint=TIGHT_L1)).records["MVM"]
    counted = stream_facts(compiled(l1_constraint=TIGHT_L1, ignore_weight_buffers=False))
    assert ignored < counted.records["MVM"]


def test_max_tiling_attempts(compiled, probe, tmp_path):
    """The tight L1 needs two attempts (1 then 2 height tiles); one attempt is the error that
    names the layer, the sizes tried and the limit."""
    assert stream_facts(compiled(l1_constraint=TIGHT_L1, max_tiling_attempts=2)).records["MVM"]
    with pytest.raises(CompilationError) as caught:
        lower(probe[0], tmp_path / "out", l1_constraint=TIGHT_L1, max_tiling_attempts=1)
    assert re.match(
        r"Could not find a tiling factor that fits the memory constraints for aipu\.\w+ at "
        rf"loc\(\"\w+\"\): L1 holds {TIGHT_L1} bytes, tried \(height x channel tiles\) "
        r"1x1: \d+ bytes; raise max_tiling_attempts or l1_constraint",
        str(caught.value),
    )


def test_tiling_depth_moves_fewer_bytes(compiled):
    """Depth-first groups keep intermediate tiles in L1: fewer bytes to and from L2/DDR."""
    default = stream_facts(compiled(**IN_DDR)).off_core_bytes
    grouped = compiled(**IN_DDR, tiling_depth=4)
    assert stream_facts(grouped).off_core_bytes < default
    assert stream_facts(compiled(**IN_DDR, tiling_depth=6)).off_core_bytes < default


def mvm_losses(folder) -> dict[str, float]:
    report = json.loads((folder / "compilation_report.json").read_text())
    return report["performance"]["mvm"]["losses"]


def test_depth_first_mvms_carry_the_input_channels(compiled):
    """Conv b reads 8 channels per 64-lane tap: its MVM records say so inside a depth-first
    group as they do layer by layer, so the cycle model counts the same zero-point padding
    lanes (the group runs untiled here, so the records are the same MVMs)."""
    plain, grouped = compiled(**IN_DDR), compiled(**IN_DDR, tiling_depth=4)
    assert stream_facts(grouped).off_core_bytes < stream_facts(plain).off_core_bytes

    def lanes(folder) -> list[tuple[int, ...]]:
        fields = ("in_c", "channels", "k_start", "k_len")
        return [tuple(int(r[f]) for f in fields) for r in stream_facts(folder).mvm]

    assert (
        lanes(grouped)
        == lanes(plain)
        == [(3, 3, 0, 27), (64, 8, 0, 512), (64, 8, 512, 64), (64, 24, 0, 64)]
    )
    assert mvm_losses(grouped)["padding_lanes"] == mvm_losses(plain)["padding_lanes"] > 0


TIGHT_DFS = {**IN_DDR, "l1_constraint": 65536, "ignore_weight_buffers": False}
"""A 64 KiB L1 where depth-first groups need height tiles once their weights count (a
group's weights stay in L1 while it runs, so the plan needs them)."""


def test_dfs_search_constraint(compiled):
    """Under a 64 KiB L1 most depth-first groups need height tiles; a search space of one
    candidate per start layer (its longest chain, untiled) finds fewer groups, so more bytes
    move than with the full search, though fewer than without depth-first tiling."""
    tight = stream_facts(compiled(**TIGHT_DFS)).off_core_bytes
    full = stream_facts(compiled(**TIGHT_DFS, tiling_depth=4)).off_core_bytes
    constrained = compiled(**TIGHT_DFS, tiling_depth=4, dfs_search_constraint=1)
    assert full < stream_facts(constrained).off_core_bytes < tight


def test_depth_first_groups_count_their_weights_whatever_ignore_weight_buffers_says(compiled):
    """A group keeps its members' weights in L1 while it runs, so aipu-dfs counts them even
    with ignore_weight_buffers (which only aipu-tile's single layers follow): under a 64 KiB
    L1 conv b's group needs 2 height tiles (8-row MVMs) either way, and both compile bit
    for bit (ignored, the group used to run untiled and overflow the plan of L1)."""
    counted = compiled(**TIGHT_DFS, tiling_depth=4)
    ignored = compiled(**{**TIGHT_DFS, "ignore_weight_buffers": True}, tiling_depth=4)
    assert mvm_rows(counted) == mvm_rows(ignored) == [16, 8, 8, 8, 8, 8]


# ------------------------------------------------------------------------------ memory


def capacities(folder) -> dict[str, int]:
    return {name: pool["capacity"] for name, pool in memory_plan(folder)["pools"].items()}


def test_constraints_and_resources_used_set_the_pool_capacities(compiled):
    """capacity = min(size used - reserved, constraint) x resources_used; L2 also reserves
    the core's tasklist (sizes from compiler-config.md's defaults)."""
    default = capacities(compiled())
    assert default["l1_core0"] == 4194304 - 524288
    assert default["l2"] == 33554432 - 1245184 - 1048576
    assert default["ddr"] == 1073741824 - 33554432
    constrained = capacities(
        compiled(l1_constraint=65536, l2_constraint=1 << 20, ddr_constraint=1 << 22)
    )
    assert constrained == {"ddr": 1 << 22, "l2": 1 << 20, "l1_core0": 65536}
    halved = capacities(compiled(l2_constraint=1 << 20, resources_used=0.5))
    assert halved["l2"] == 1 << 19 and halved["l1_core0"] == (4194304 - 524288) // 2


def test_page_memory(compiled):
    """Paged L2 and DDR pools (default) carry their page size; page_memory=false drops it."""
    paged = (compiled() / "lowered" / "model.mlir").read_text()
    assert re.search(r"mem.pool @ddr global.ddr capacity \d+ page 65536", paged)
    assert re.search(r"mem.pool @l2 global.l2 capacity \d+ page 65536", paged)
    unpaged = (compiled(page_memory=False) / "lowered" / "model.mlir").read_text()
    assert " page " not in unpaged


def test_a_pool_that_cannot_fit_names_the_pool_the_peak_and_the_capacity(probe, tmp_path):
    """The bytes alive at once do not fit: the second promotion, asked for headroom, finds
    no tensor it promoted to L1 whose return would make room, so planning stops there."""
    with pytest.raises(CompilationError) as caught:
        lower(probe[0], tmp_path / "out", l1_constraint=SMALL_L1)
    assert re.match(
        r"memory plan of pool 'l1_core0' needs (\d+) bytes \((\d+) alive at once at best\) but "
        rf"its capacity is {SMALL_L1} bytes, after 1 attempt\(s\) \(max_memplan_attempts=5\), "
        "with no tensor promoted to L1 left to send back; raise the pool's size",
        str(caught.value),
    ), str(caught.value)
    peak = int(re.search(r"needs (\d+) bytes", str(caught.value)).group(1))
    assert peak > SMALL_L1
    assert not (tmp_path / "out" / "compiled_model").exists()


def test_max_memplan_attempts_is_named_in_the_error(probe, tmp_path):
    with pytest.raises(CompilationError, match=r"after 1 attempt\(s\) \(max_memplan_attempts=1: "):
        lower(probe[0], tmp_path / "out", l1_constraint=SMALL_L1, max_memplan_attempts=1)
    assert fields_read_by_passes()["max_memplan_attempts"] == "lower stage"


def pools_used(folder) -> set[str]:
    """Pools holding buffers other than the L1 staging of tiles."""
    return {b["pool"] for b in memory_plan(folder)["buffers"] if not b["pool"].startswith("l1")}


def test_memory_pools_in_l2(compiled):
    """io, constant and workspace pools in L2, promotion off: nothing left in DDR."""
    in_l2 = compiled(
        enable_buffer_promotion=False,
        io_memory_pool="global.l2",
        constant_memory_pool="global.l2",
        workspace_memory_pool="global.l2",
    )
    assert pools_used(in_l2) == {"l2", "ddr"}
    # only DPU programs (1-D micro-op bytes, live throughout) stay in DDR: their home is
    # dpu_instructions_home, not one of these pools
    plan = memory_plan(in_l2)
    end = max(b["last_step"] for b in plan["buffers"])
    for buffer in (b for b in plan["buffers"] if b["pool"] == "ddr"):
        assert re.fullmatch(r"!mem.buffer<\d+xi8, global.ddr>", buffer["type"]), buffer
        assert (buffer["first_step"], buffer["last_step"]) == (0, end), buffer


def ddr_bytes(folder) -> int:
    return sum(b["size"] for b in memory_plan(folder)["buffers"] if b["pool"] == "ddr")


def test_enable_buffer_promotion(compiled):
    """The probe's activations (a few KiB) are promoted out of DDR by default, not without."""
    assert ddr_bytes(compiled()) < ddr_bytes(compiled(enable_buffer_promotion=False))


def test_a_model_too_large_for_l1_fails_with_the_error_and_stage_code(probe, tmp_path, capsys):
    """`aipuc compile` of the quantized probe into an L1 of 16 KiB: exit status 2, one line
    naming the pool, its peak and capacity; the report records stage and code; no stream."""
    out = tmp_path / "out"
    argv = ["compile", str(probe[0]), "-o", str(out), "--set", "compiler_mode=lower_only"]
    assert main([*argv, "--set", f"l1_constraint={SMALL_L1}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert re.match(r"aipuc: error: memory plan of pool 'l1_core0' needs \d+ bytes", err[0])
    assert f"capacity is {SMALL_L1} bytes" in err[0]
    error = json.loads((out / "compilation_report.json").read_text())["error"]
    assert (error["stage"], error["code"]) == ("lower", "E_LOWER")
    assert not (out / "compiled_model").exists() and not (out / "lowered").exists()
