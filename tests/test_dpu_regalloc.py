"""aipu-dpu-regalloc: every algorithm where it succeeds and where it fails, spills that run
bit-exactly on the simulator, and a DPU-heavy model whose fused program spills end to end."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, i8
from xdsl.ir import Block, Region

import aipuc
from aipuc.config import CompilerConfig, DPUAllocationAlgorithm
from aipuc.dialects import aipu, mem
from aipuc.errors import AipucError
from aipuc.hardware import AIPU, MemorySpace
from aipuc.lowering import dpu_regalloc
from aipuc.lowering.aipu_programs import AipuProgramsPass
from aipuc.lowering.dpu_regalloc import AllocationError, DpuRegallocPass, Liveness
from aipuc.lowering.emit_elf import emit_program
from aipuc.lowering.mem_plan import MemPlanPass
from aipuc.lowering.mem_pools import MemPoolsPass
from aipuc.runtime.sim.device import Device

ROWS, LANES = 4, 64
L1 = MemorySpace.L1


# ------------------------------------------------------------------------- programs


def _module(build_body) -> tuple[ModuleOp, aipu.DpuOp]:
    """A one-segment module: x (int8 [ROWS, LANES] in L1) -> one DPU program -> y."""
    module = ModuleOp([])
    MemPoolsPass().apply(Context(), module)
    x = mem.BufferOp("l1_core0", mem.BufferType([ROWS, LANES], i8, L1))
    y = mem.BufferOp("l1_core0", mem.BufferType([ROWS, LANES], i8, L1))
    program = mem.BufferOp("ddr", mem.BufferType([64], i8, MemorySpace.DDR))
    body = build_body(x.buffer, y.buffer)
    dpu = aipu.DpuOp(body, program=program.buffer)
    core = Region(Block([aipu.CoreOp(0, [dpu])]))
    segment = aipu.SegmentOp(0, [x.buffer], [y.buffer], [[0, 1]], [[0, 1]], core)
    for op in (x, y, program, segment):
        module.body.block.add_op(op)
    return module, dpu


def _wide_sum(width: int):
    """`width` values live at once: x + k for k < width, then their sum, clamped to int8."""

    def body(x, y):
        load = aipu.DpuLoadOp(x)
        ops = [load]
        terms = []
        for k in range(width):
            ops.append(aipu.DpuAddImmOp(load, k - width // 2))
            terms.append(ops[-1])
        total = terms[0]
        for term in terms[1:]:
            ops.append(aipu.DpuAddOp(total, term))
            total = ops[-1]
        ops.append(aipu.DpuClampOp(total, -128, 127))
        ops.append(aipu.DpuStoreOp(ops[-1], y))
        return ops

    return body


def _expected_wide_sum(x: np.ndarray, width: int) -> np.ndarray:
    total = sum(x.astype(np.int64) + (k - width // 2) for k in range(width))
    return np.clip(total, -128, 127).astype(np.int8)


def _run(module: ModuleOp, x: np.ndarray) -> np.ndarray:
    AipuProgramsPass().apply(Context(), module)
    MemPlanPass().apply(Context(), module)
    return Device(emit_program(module)).launch(0, [x])[0]


def _valid(liveness: Liveness, assignment: dict, registers: int) -> bool:
    graph = liveness.graph()
    return all(0 <= r < registers for r in assignment.values()) and all(
        assignment[u] != assignment[v] for u in graph for v in graph[u]
    )


# ------------------------------------------------------------------------- algorithms


@pytest.mark.parametrize("method", [dpu_regalloc.lazy, dpu_regalloc.backjump_recursive])
def test_no_spill_algorithms_succeed_within_the_registers(method):
    _, dpu = _module(_wide_sum(AIPU.dpu_registers))
    liveness = Liveness(list(dpu.body.block.ops))
    assert liveness.pressure()[0] == AIPU.dpu_registers  # a tight fit: every register
    assignment = method(liveness, AIPU.dpu_registers)
    assert _valid(liveness, assignment, AIPU.dpu_registers)


def test_lazy_fails_without_spilling():
    _, dpu = _module(_wide_sum(20))
    with pytest.raises(AllocationError, match=r"lazy needs more than 16 registers: 20 values"):
        dpu_regalloc.lazy(Liveness(list(dpu.body.block.ops)), AIPU.dpu_registers)


def test_backjump_gives_up_after_its_bounded_search():
    _, dpu = _module(_wide_sum(20))
    with pytest.raises(AllocationError, match="backjump_recursive gave up after 20000 search"):
        dpu_regalloc.backjump_recursive(Liveness(list(dpu.body.block.ops)), AIPU.dpu_registers)


def test_backjump_proves_a_small_program_infeasible():
    _, dpu = _module(_wide_sum(3))  # three values live at once, two registers
    with pytest.raises(AllocationError, match="proved that 2 registers do not suffice"):
        dpu_regalloc.backjump_recursive(Liveness(list(dpu.body.block.ops)), 2)


@pytest.mark.parametrize("algorithm", ["lazy", "backjump_recursive"])
def test_pass_reports_the_failure_and_try_all_recovers(algorithm):
    module, _ = _module(_wide_sum(20))
    with pytest.raises(AipucError, match=f"DPU register allocation \\({algorithm}\\) failed"):
        DpuRegallocPass(algorithm).apply(Context(), module)
    module, dpu = _module(_wide_sum(20))
    DpuRegallocPass("try_all").apply(Context(), module)
    assert dpu.attributes["regalloc"].data == "graph"  # type: ignore[union-attr]
    assert dpu.attributes["spills"].value.data > 0  # type: ignore[union-attr]


@pytest.mark.parametrize("algorithm", list(DPUAllocationAlgorithm))
def test_every_algorithm_runs_a_small_program_exactly(algorithm):
    module, dpu = _module(_wide_sum(5))
    DpuRegallocPass(str(algorithm)).apply(Context(), module)
    expected = "lazy" if algorithm == "try_all" else str(algorithm)
    assert dpu.attributes["regalloc"].data == expected  # type: ignore[union-attr]
    x = np.random.default_rng(0).integers(-128, 128, (ROWS, LANES), dtype=np.int8)
    np.testing.assert_array_equal(_run(module, x), _expected_wide_sum(x, 5))


@pytest.mark.parametrize("width", [17, 30])
def test_graph_spills_and_the_simulator_reloads_exactly(width):
    module, dpu = _module(_wide_sum(width))
    DpuRegallocPass("graph").apply(Context(), module)
    ops = list(dpu.body.block.ops)
    assert any(isinstance(op, aipu.DpuSpillOp) for op in ops)
    assert all(dpu_regalloc.REG_ATTR in op.attributes for op in ops if op.results)
    x = np.random.default_rng(width).integers(-128, 128, (ROWS, LANES), dtype=np.int8)
    np.testing.assert_array_equal(_run(module, x), _expected_wide_sum(x, width))


def test_a_wrong_spill_slot_gives_wrong_numbers():
    """The reloads really read L1: two spilled values swapped give another sum."""
    module, dpu = _module(_wide_sum(24))
    DpuRegallocPass("graph").apply(Context(), module)
    reloads = [op for op in dpu.body.block.ops if isinstance(op, aipu.DpuReloadOp)]
    slots = sorted({op.slot.value.data for op in reloads})
    assert len(slots) > 1
    first = next(op for op in reloads if op.slot.value.data == slots[0])
    first.properties["slot"] = aipu._i64(slots[-1])
    x = np.random.default_rng(1).integers(-128, 128, (ROWS, LANES), dtype=np.int8)
    assert not np.array_equal(_run(module, x), _expected_wide_sum(x, 24))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("+-<>c"), st.integers(0, 99), st.integers(0, 99)),
        min_size=1,
        max_size=40,
    )
)
def test_random_programs_spill_exactly_with_few_registers(steps):
    """Random straight-line programs on 4 registers: graph's spill code computes what the
    unallocated program computes (evaluated here directly on NumPy arrays)."""
    x = np.random.default_rng(len(steps)).integers(-128, 128, (ROWS, LANES), dtype=np.int8)

    def body(xb, yb):
        load = aipu.DpuLoadOp(xb)
        ops, values, arrays = [load], [load.result], [x.astype(np.int64)]
        for kind, i, j in steps:
            a, b = values[i % len(values)], values[j % len(values)]
            va, vb = arrays[i % len(values)], arrays[j % len(values)]
            if kind == "+":
                op, value = aipu.DpuAddOp(a, b), va + vb
            elif kind == "-":
                op, value = aipu.DpuSubOp(a, b), va - vb
            elif kind == "<":
                op, value = aipu.DpuMinOp(a, b), np.minimum(va, vb)
            elif kind == ">":
                op, value = aipu.DpuMaxOp(a, b), np.maximum(va, vb)
            else:
                op, value = aipu.DpuClampOp(a, -1000, 1000), np.clip(va, -1000, 1000)
            ops.append(op)
            values.append(op.results[0])
            arrays.append(value)
        total = values[-1]
        for value in values[1:-1:3]:  # keep many values alive to the end
            ops.append(aipu.DpuMaxOp(total, value))
            total = ops[-1].results[0]
            arrays.append(np.maximum(arrays[-1], arrays[values.index(value)]))
        ops.append(aipu.DpuClampOp(total, -128, 127))
        ops.append(aipu.DpuStoreOp(ops[-1], yb))
        body.expected = np.clip(arrays[-1], -128, 127).astype(np.int8)
        return ops

    module, dpu = _module(body)
    dpu_regalloc.allocate_programs(module, DPUAllocationAlgorithm.GRAPH, registers=4)
    registers = [
        op.attributes[dpu_regalloc.REG_ATTR].value.data  # type: ignore[union-attr]
        for op in dpu.body.block.ops
        if op.results
    ]
    assert max(registers) < 4
    np.testing.assert_array_equal(_run(module, x), body.expected)


# ------------------------------------------------------------------------- end to end


def heavy_model(width: int) -> onnx.ModelProto:
    """A convolution, then `width` activations of its output, all summed in graph order:
    fused into one DPU program with `width` values live at once."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv")]
    for i in range(width):
        nodes.append(helper.make_node(("Sigmoid", "Tanh")[i % 2], ["c"], [f"y{i}"], name=f"a{i}"))
    total = "y0"
    for i in range(1, width):
        op = "Mul" if i % 3 == 0 else "Add"
        nodes.append(helper.make_node(op, [total, f"y{i}"], [f"s{i}"], name=f"s{i}"))
        total = f"s{i}"
    nodes.append(helper.make_node("Relu", [total], ["out"], name="out"))
    weights = rng.normal(size=(16, 8, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        nodes,
        "dpu_heavy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 16, 8, 8])],
        [helper.make_tensor("w", TensorProto.FLOAT, weights.shape, weights.ravel())],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def heavy_samples():
    rng = np.random.default_rng(1)
    return [{"x": rng.normal(size=(1, 8, 8, 8)).astype(np.float32)} for _ in range(3)]


def test_dpu_heavy_model_spills_and_runs_bit_exact(tmp_path, heavy_samples):
    compiled = aipuc.compile(
        heavy_model(24), CompilerConfig(output_dir=str(tmp_path / "out")), heavy_samples
    )
    lowered = (tmp_path / "out" / "lowered" / "model.mlir").read_text()
    assert 'regalloc = "graph"' in lowered and "aipu.dpu.reload" in lowered
    for sample in heavy_samples:
        streamed, reference = compiled.run(sample), compiled.run_quantized(sample)
        np.testing.assert_array_equal(streamed["out"], reference["out"])


def test_dpu_heavy_model_with_lazy_fails_clearly(tmp_path, heavy_samples):
    config = CompilerConfig(output_dir=str(tmp_path / "out"), dpu_allocation_algorithm="lazy")
    with pytest.raises(AipucError, match="lazy needs more than 16 registers.*use graph or try_all"):
        aipuc.compile(heavy_model(24), config, heavy_samples)
