"""The cycle model: hand-worked costs of hand-built records, and properties of whole programs.

Every expected number below is worked out by hand from the hardware model's figures (named
in each comment), not computed by the cycle model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from lowering_harness import assert_stream_equals_reference, lower, quantize, samples_of
from onnx import numpy_helper, shape_inference

import aipuc
from aipuc import pipeline
from aipuc.config import CompilerConfig
from aipuc.hardware import AIPU, MemorySpace
from aipuc.ir_files import ir_context, load_quantized_model
from aipuc.lowering import stage
from aipuc.lowering.emit_elf import Artifact, EmitOptions
from aipuc.models import build_model, sample_inputs
from aipuc.models.builder import EMBEDDINGS, IMAGE_IMAGENET, GraphBuilder
from aipuc.pipeline import Phase
from aipuc.runtime.sim import cycles, isa
from aipuc.runtime.sim.elf import ElfFile
from aipuc.runtime.sim.isa import DmaEngineCode, DwpuMode, MicroOpcode, MvmFlag, Opcode
from aipuc.runtime.sim.memory import Region, SimulationError

L1 = 0x30_0000_0000
REGIONS = [
    Region("ddr", AIPU.ddr_address, 1 << 20),
    Region("l2", AIPU.l2_address, 1 << 20),
    Region("l1_core0", L1, 1 << 20),
]
PROGRAM = L1 + 0x8000


def _stream(*records: tuple[Opcode, dict]) -> isa.Stream:
    return isa.Stream(b"".join(isa.encode(op, fields) for op, fields in records))


def _costs(*records: tuple[Opcode, dict], programs=None, hw=AIPU) -> list[int]:
    model = cycles.CycleModel(REGIONS, programs or {}, hw)
    return model.costs(_stream(*records)).cycles.tolist()


def _dma(src: int, dst: int, sizes, src_strides, dst_strides, **extra) -> tuple[Opcode, dict]:
    pad = 5 - len(sizes)
    return Opcode.DMA, {
        "src": src,
        "dst": dst,
        "sizes": [1] * pad + list(sizes),
        "src_strides": [0] * pad + list(src_strides),
        "dst_strides": [0] * pad + list(dst_strides),
        **extra,
    }


def _mvm(**fields) -> tuple[Opcode, dict]:
    base = {"out_hw": [4, 10], "in_c": 64, "k_len": 512, "n": 64, "icr": 1, "kernel": [1, 1]}
    return Opcode.MVM, {**base, **fields}


# ---------------------------------------------------------------------------------- records


def test_hand_worked_mvm_cycles_and_useful_macs():
    model = cycles.CycleModel(REGIONS, {})
    costs = model.costs(
        _stream(
            # 4 x 10 pixels, one vector per cycle: 16 (task) + 40
            _mvm(channels=64),
            # ICR 2 computes two x-positions per cycle: 16 + 4 * ceil(10 / 2) = 36
            _mvm(n=32, icr=2, channels=16),
            # 4 x 7 with ICR 4: 16 + 4 * ceil(7 / 4) = 24
            _mvm(out_hw=[4, 7], n=16, icr=4),
            # rows 100..199 of taps of 64 lanes, 10 of them data: tap 1 holds rows 64..127
            # (lanes 36..63 here: none), tap 2 rows 128..191 (10), tap 3 rows 192..199 (8)
            _mvm(k_start=100, k_len=100, channels=10, n=8),
            # one lane per tap (a single-channel input): all 9 rows are data
            _mvm(in_c=1, k_len=9, channels=1, n=8),
        )
    )
    assert costs.cycles.tolist() == [56, 36, 24, 56, 56]
    # useful MACs: pixels x data rows x output channels of the record
    assert costs.macs.tolist() == [
        40 * 512 * 64,
        40 * (8 * 16) * 32,
        28 * 512 * 16,  # channels 0: every lane of in_c is data
        40 * 18 * 8,
        40 * 9 * 8,
    ]


def test_only_transfers_have_levels_and_peak_cycles():
    """`Costs.src`/`dst` are -1 for records that move nothing between levels (a FILL has a
    destination only) and `peak_cycles` 0: the profile's per-level sums and the roofline
    read them. 64 bytes DDR -> L1 by the core DMA at 32 bytes per cycle: 2 peak cycles."""
    model = cycles.CycleModel(REGIONS, {})
    fill = {"dst": L1, "sizes": [1, 1, 1, 1, 64], "dst_strides": [0, 0, 0, 0, 1]}
    costs = model.costs(
        _stream(_mvm(), _dma(AIPU.ddr_address, L1, [64], [1], [1]), (Opcode.FILL, fill))
    )
    ddr, l1 = cycles.LEVELS.index(MemorySpace.DDR), cycles.LEVELS.index(MemorySpace.L1)
    assert costs.src.dtype == costs.dst.dtype == np.int64
    assert costs.src.tolist() == [-1, ddr, -1]
    assert costs.dst.tolist() == [-1, l1, l1]
    assert costs.bytes.tolist() == [0, 64, 64]
    assert costs.peak_cycles.tolist()[:2] == [0, 2]


def test_unknown_opcode_is_an_error():
    record = np.frombuffer(bytearray(isa.encode(*_mvm())), isa.HEADER)
    record["opcode"] = 0xEE
    with pytest.raises(SimulationError, match=r"unknown opcode\(s\) \[238\] in the stream"):
        cycles.CycleModel(REGIONS, {}).costs(isa.Stream(record.tobytes()))


def test_mvm_cycles_follow_the_hardware_model():
    # 40 vectors and the task's issue cycles, whatever they are
    assert _costs(_mvm(), hw=dataclasses.replace(AIPU, unit_task_cycles=0)) == [40]
    assert _costs(_mvm(), hw=dataclasses.replace(AIPU, unit_task_cycles=5)) == [45]


def test_hand_worked_mvm_losses_split_the_capacity():
    model = cycles.CycleModel(REGIONS, {})
    # 4 x 7 pixels, ICR 2 (4 vectors per row), rows 0..99 of 64-lane taps with 10 channels
    # each (data rows: 10 + 10 = 20 of 100), 24 columns per copy
    costs = model.costs(
        _stream(_mvm(out_hw=[4, 7], k_len=100, n=24, icr=2, channels=10)),
    )
    vectors = 4 * 4
    assert costs.cycles.tolist() == [16 + vectors]
    assert costs.macs.tolist() == [28 * 20 * 24]
    assert costs.losses.tolist() == [
        [
            16 * 512 * 64,  # task cycles
            vectors * (512 - 100) * 64,  # rows past the K chunk
            vectors * 100 * (64 - 2 * 24),  # columns past n x icr
            (vectors * 2 - 28) * 100 * 24,  # 4 ICR slots past x = 6 (one per row)
            28 * (100 - 20) * 24,  # zero-point lanes
        ]
    ]
    assert costs.macs.sum() + costs.losses.sum() == (16 + vectors) * 512 * 64


def test_mvm_record_beyond_the_array_is_an_error():
    with pytest.raises(SimulationError, match="80 columns .* beyond the 512 x 64 array"):
        _costs(_mvm(n=40, icr=2))
    with pytest.raises(SimulationError, match="600 rows"):
        _costs(_mvm(k_len=600))


def test_hand_worked_imc_load_cycles():
    # a full 512 x 64 weightset takes imc_weightset_load_cycles (256); a part, its share
    assert _costs(
        (Opcode.IMC_LOAD, {"k": 512, "n": 64}),
        (Opcode.IMC_LOAD, {"k": 64, "n": 64}),
        (Opcode.IMC_LOAD, {"k": 27, "n": 16}),  # 432 bytes of 32768 x 256 = 3.375 -> 4
    ) == [256, 32, 4]


def _dwpu_word(mode: DwpuMode) -> bytes:
    word = np.zeros((), isa.DWPU_OP)
    word["mode"] = mode
    return word.tobytes()


def test_hand_worked_dwpu_cycles():
    """The mode comes from each record's DWPU program word."""
    modes = [DwpuMode.CONV, DwpuMode.MAX, DwpuMode.GLOBAL_AVG]
    programs = {PROGRAM + 0x40 * n: _dwpu_word(mode) for n, mode in enumerate(modes)}
    dwpu = {"out_hw": [5, 6], "in_hw": [7, 8], "channels": 100, "kernel": [3, 3]}
    assert _costs(
        # 30 pixels x 2 channel groups of 64 x 1 pass of 9 taps, plus the task's 16
        (Opcode.DWPU, {**dwpu, "program": PROGRAM}),
        # a 5x5 window is 25 taps: 3 passes
        (Opcode.DWPU, {**dwpu, "kernel": [5, 5], "program": PROGRAM + 0x40}),
        # global average over a 7x7 tile: 49 taps, 6 passes, 2048 channels in 32 groups
        (
            Opcode.DWPU,
            {"out_hw": [1, 1], "in_hw": [7, 7], "channels": 2048, "program": PROGRAM + 0x80},
        ),
        programs=programs,
    ) == [16 + 30 * 2, 16 + 30 * 2 * 3, 16 + 32 * 6]


def test_hand_worked_dwpu_windows_and_work():
    """Taps are kernel height x width (or the whole input tile in the global modes), and the
    work is channel-taps over the unit's 64 channels x 9 taps per cycle."""
    modes = [DwpuMode.CONV, DwpuMode.GLOBAL_MAX, DwpuMode.MAX]
    programs = {PROGRAM + 0x40 * n: _dwpu_word(mode) for n, mode in enumerate(modes)}
    dwpu = {"out_hw": [5, 6], "in_hw": [7, 8], "channels": 100}
    records = (
        # a 5x2 window: 10 taps, 2 passes; work 30 pixels x 100 channels x 10 taps / 576
        (Opcode.DWPU, {**dwpu, "kernel": [5, 2], "program": PROGRAM}),
        # the global maximum of a 7x3 tile: 21 taps, 3 passes, 2 channel groups
        (
            Opcode.DWPU,
            {"out_hw": [1, 1], "in_hw": [7, 3], "channels": 100, "program": PROGRAM + 0x40},
        ),
        # a 1x1 window: one tap, one pass
        (Opcode.DWPU, {**dwpu, "kernel": [1, 1], "program": PROGRAM + 0x80}),
    )
    model = cycles.CycleModel(REGIONS, programs, AIPU)
    costs = model.costs(_stream(*records))
    assert costs.cycles.tolist() == [16 + 30 * 2 * 2, 16 + 2 * 3, 16 + 30 * 2]
    assert costs.work.tolist() == [30_000 / 576, 2_100 / 576, 3_000 / 576]


def test_dwpu_record_without_its_program_is_an_error():
    record = {"out_hw": [1, 1], "in_hw": [1, 1], "channels": 1, "program": PROGRAM}
    with pytest.raises(
        SimulationError, match=f"^a DWPU record points at {PROGRAM:#x}, which holds no program$"
    ):
        _costs((Opcode.DWPU, record))


def _micro_ops(*codes: MicroOpcode) -> bytes:
    return isa.encode_micro_ops([{"op": int(code)} for code in codes])


def test_hand_worked_dpu_cycles():
    add = _micro_ops(MicroOpcode.LOAD, MicroOpcode.LOAD, MicroOpcode.ADD, MicroOpcode.STORE)
    softmaxish = _micro_ops(MicroOpcode.LOAD, MicroOpcode.RMAX, MicroOpcode.STORE)
    programs = {PROGRAM: add, PROGRAM + 0x100: softmaxish}
    shape = [1, 2, 3, 100]  # 6 rows of 100 lanes: 2 vectors of 64 lanes each
    records = (
        (Opcode.DPU, {"program": PROGRAM, "micro_ops": 4, "shape": shape}),
        (Opcode.DPU, {"program": PROGRAM + 0x100, "micro_ops": 3, "shape": shape}),
    )
    costs = cycles.CycleModel(REGIONS, programs, AIPU).costs(_stream(*records))
    assert costs.cycles.tolist() == [
        16 + 4 * 6 * 2,
        # two element-wise micro-ops on 12 vectors; the reduction per row: 2 vectors and
        # a log2(64) = 6 step lane tree
        16 + 2 * 12 + 6 * (2 + 6),
    ]
    # work: micro-ops x 600 lane values over 64 lanes per cycle
    assert costs.work.tolist() == [4 * 600 / 64, 3 * 600 / 64]


def test_dpu_record_without_its_program_is_an_error():
    with pytest.raises(SimulationError, match="holds no program of 4 micro-ops"):
        _costs((Opcode.DPU, {"program": PROGRAM, "micro_ops": 4, "shape": [1, 1, 1, 64]}))
    # a program of 3 micro-ops where the record counts 4
    three = {PROGRAM: _micro_ops(MicroOpcode.LOAD, MicroOpcode.ADD, MicroOpcode.STORE)}
    with pytest.raises(SimulationError, match="^a DPU record points at .* of 4 micro-ops$"):
        _costs(
            (Opcode.DPU, {"program": PROGRAM, "micro_ops": 4, "shape": [1, 1, 1, 64]}),
            programs=three,
        )


def test_hand_worked_dma_cycles():
    ddr, l2 = AIPU.ddr_address, AIPU.l2_address
    assert _costs(
        # DDR -> L1, 1000 contiguous bytes at 32 B/cycle: 64 setup + 32
        _dma(ddr, L1, [1000], [1], [1]),
        # 10 rows of 100 bytes, 200 apart in DDR: 10 runs of ceil(100 / 32) = 4 cycles
        _dma(ddr, L1, [10, 100], [200, 1], [100, 1]),
        # L2 -> L1 at 64 B/cycle: 1024 contiguous bytes = 16 cycles ...
        _dma(l2, L1, [1024], [1], [1]),
        # ... but 64 runs of 16 bytes cost a burst of at least 4 cycles each
        _dma(l2, L1, [64, 16], [32, 1], [16, 1]),
        # the system DMA, DDR -> L2 at 32 B/cycle: 4096 bytes = 128 cycles
        _dma(ddr, l2, [4096], [1], [1], engine=int(DmaEngineCode.SYSTEM)),
        # FILL of 640 contiguous L1 bytes at the on-chip 64 B/cycle
        (Opcode.FILL, {"dst": L1, "sizes": [1, 1, 1, 1, 640], "dst_strides": [0, 0, 0, 0, 1]}),
    ) == [64 + 32, 64 + 10 * 4, 64 + 16, 64 + 64 * 4, 64 + 128, 64 + 10]


def test_dma_runs_merge_across_contiguous_axes():
    # [4, 8, 32] dense on both sides is one run of 1024 bytes: DDR -> L1 at 32 B/cycle
    assert _costs(_dma(AIPU.ddr_address, L1, [4, 8, 32], [256, 32, 1], [256, 32, 1])) == [64 + 32]
    # the same block into a destination with rows 64 apart: runs of 256 bytes
    assert _costs(_dma(AIPU.ddr_address, L1, [4, 8, 32], [256, 32, 1], [512, 32, 1])) == [
        64 + 4 * 8
    ]


def test_hand_worked_dma_edges():
    l2 = AIPU.l2_address
    assert _costs(
        # all five axes dense: one run of 3 x 20 = 60 bytes, one burst (64 B/cycle, 4 minimum);
        # three runs of 20 (the outermost axis not merged) would be 3 bursts
        _dma(l2, L1, [3, 1, 1, 1, 20], [20, 20, 20, 20, 1], [20, 20, 20, 20, 1]),
        # a byte transpose (8 x 4 read column by column): 32 runs of one byte, a burst each
        _dma(l2, L1, [4, 8], [1, 4], [8, 1]),
        # one byte: the setup and one burst
        _dma(l2, L1, [1], [1], [1]),
        # nothing to move: the setup only
        _dma(l2, L1, [0], [1], [1]),
        # rows read and written column-major: the inner axis breaks the run, so the outer one,
        # though its stride is 1 on both sides, does not merge: 32 one-byte runs
        _dma(l2, L1, [4, 8], [1, 4], [1, 4]),
        # ... nor after a size-1 axis between them
        _dma(l2, L1, [4, 1, 8], [1, 0, 4], [1, 0, 4]),
        # a size-1 axis with any stride between two dense axes keeps them one run of 32
        _dma(l2, L1, [4, 1, 8], [8, 99, 1], [8, 99, 1]),
    ) == [64 + 4, 64 + 32 * 4, 64 + 4, 64, 64 + 32 * 4, 64 + 32 * 4, 64 + 4]


def test_a_region_of_no_known_level_is_an_error():
    with pytest.raises(SimulationError, match="^memory region 'sram' is none of DDR, L2, L1$"):
        cycles.region_level(Region("sram", 0x1000, 1 << 10))


def test_shorter_runs_never_cost_less():
    ddr = AIPU.ddr_address
    totals = []
    for run in (4096, 1024, 256, 64, 16, 4, 1):
        count = 4096 // run
        totals.append(_costs(_dma(ddr, L1, [count, run], [2 * run, 1], [run, 1]))[0])
    assert totals == sorted(totals)
    assert totals[-1] > 4 * totals[0]


def test_address_outside_the_memory_map_is_an_error():
    with pytest.raises(SimulationError, match="is in no memory"):
        _costs(_dma(0x10, L1, [64], [1], [1]))
    # the first byte past a region (L2, the lowest, 1 MiB here) is outside it
    past_l2 = AIPU.l2_address + (1 << 20)
    with pytest.raises(SimulationError, match=f"^address {past_l2:#x} is in no memory of the"):
        _costs(_dma(past_l2, L1, [64], [1], [1]))


def test_the_hardware_model_sets_the_costs():
    """A profile costs records with the hardware model it is given: a system DMA at 16 B/cycle
    (4096 bytes: 64 setup + 256) and a task overhead of 26 cycles (the MVM: 26 + 40)."""
    hw = dataclasses.replace(AIPU, sysdma_ddr_l2_bytes_per_cycle=16, unit_task_cycles=26)
    system = int(DmaEngineCode.SYSTEM)
    stream = _stream(
        _dma(AIPU.ddr_address, AIPU.l2_address, [4096], [1], [1], engine=system), _mvm()
    )
    assert cycles.profile(REGIONS, [], [stream], hw).total_cycles == (64 + 256) + (26 + 40)


def test_profile_sums_bytes_per_level_and_roofline():
    ddr, l2 = AIPU.ddr_address, AIPU.l2_address
    stream = _stream(
        _dma(ddr, L1, [1000], [1], [1]),
        _dma(l2, L1, [1024], [1], [1]),
        _dma(L1, ddr, [500], [1], [1]),
        (Opcode.IMC_LOAD, {"k": 512, "n": 64}),
        _mvm(flags=int(MvmFlag.REQUANTIZE)),
    )
    profile = cycles.profile(REGIONS, [], [stream, stream])
    report = profile.report(800_000_000)
    assert report["bytes"] == {
        "ddr": {"read": 2000, "written": 1000},
        "l2": {"read": 2048, "written": 0},
        "l1": {"read": 1000, "written": 4048},
    }
    # per pair: bytes, cycles (setup + runs), and the bytes at the pair's bandwidth
    assert report["transfers"] == {
        "ddr->l1": {"records": 2, "bytes": 2000, "cycles": 2 * (64 + 32), "peak_cycles": 62},
        "l1->ddr": {"records": 2, "bytes": 1000, "cycles": 2 * (64 + 16), "peak_cycles": 31},
        "l2->l1": {"records": 2, "bytes": 2048, "cycles": 2 * (64 + 16), "peak_cycles": 32},
    }
    dma = 2 * ((64 + 32) + (64 + 16) + (64 + 16))
    peak_dma = 2 * (1000 / 32 + 1024 / 64 + 500 / 32)
    assert report["units"]["dma"] == {
        "records": 6,
        "cycles": dma,
        "busy": pytest.approx(dma / report["cycles"], abs=1e-4),
        "utilization": round(peak_dma / dma, 4),
    }
    # the MVM unit's utilization counts its weight loads; the MVM entry's leaves them out
    assert report["units"]["mvm"]["utilization"] == round(40 / (256 + 56), 4)
    assert report["mvm"]["losses"] == {
        "task_overhead": round(16 / 56, 4),
        "unused_rows": 0.0,
        "unused_columns": 0.0,
        "icr_remainder": 0.0,
        "padding_lanes": 0.0,
    }
    assert report["units"]["mvm"]["cycles"] == 2 * (256 + 56)
    assert (report["mvm"]["mvm_cycles"], report["mvm"]["imc_load_cycles"]) == (2 * 56, 2 * 256)
    assert report["cycles"] == dma + 2 * (256 + 56)
    assert report["mvm"]["useful_macs"] == 2 * 40 * 512 * 64
    assert report["mvm"]["utilization"] == round(40 / 56, 4)
    assert report["mvm"]["utilization_with_loads"] == round(40 / (56 + 256), 4)
    # roofline: compute 2 x 40 cycles at peak; memory: bytes over each pair's bandwidth
    memory = 2 * (1000 / 32 + 1024 / 64 + 500 / 32)
    assert report["roofline"]["compute_cycles"] == 80
    assert report["roofline"]["memory_cycles"] == round(memory)
    assert report["roofline"]["bound"] == "memory"
    assert report["roofline"]["ratio"] == round(report["cycles"] / memory, 3)


def test_profile_counts_fills_as_their_own_transfers():
    """A FILL writes L1 from no memory: its own "fill->l1" entry, and no byte read."""
    fill = (Opcode.FILL, {"dst": L1, "sizes": [1, 1, 1, 1, 640], "dst_strides": [0, 0, 0, 0, 1]})
    report = cycles.profile(REGIONS, [], [_stream(fill)]).report(800_000_000)
    # 640 bytes at the on-chip 64 B/cycle: 64 setup + 10
    assert report["transfers"] == {
        "fill->l1": {"records": 1, "bytes": 640, "cycles": 64 + 10, "peak_cycles": 10}
    }
    assert report["bytes"]["l1"] == {"read": 0, "written": 640}


def test_latency_and_fps_scale_with_frequency():
    profile = cycles.profile(REGIONS, [], [_stream(_mvm())])  # 56 cycles
    fast, slow = profile.report(800_000_000), profile.report(200_000_000)
    assert fast["cycles"] == slow["cycles"] == 56
    assert fast["latency_ms"] == pytest.approx(56 / 800e6 * 1e3, rel=1e-6)
    assert slow["latency_ms"] == pytest.approx(4 * fast["latency_ms"], rel=1e-6)
    assert fast["fps"] == pytest.approx(4 * slow["fps"], rel=1e-6)
    # 800e6 / 56 and 200e6 / 56 frames a second, to 2 decimals
    assert (fast["fps"], slow["fps"]) == (14285714.29, 3571428.57)
    assert fast["schedule"].startswith("sequential: one core, one record after another")
    # compute (40 MVM cycles at peak) and memory (1280 bytes at 32 B/cycle) tie: compute-bound
    tie = cycles.profile(
        REGIONS, [], [_stream(_mvm(), _dma(AIPU.ddr_address, L1, [1280], [1], [1]))]
    )
    roofline = tie.report(800_000_000)["roofline"]
    assert (roofline["compute_cycles"], roofline["memory_cycles"]) == (40, 40)
    assert roofline["bound"] == "compute"
    empty = cycles.profile(REGIONS, [], [_stream()]).report(800_000_000)
    assert (empty["cycles"], empty["fps"]) == (0, None)


# ---------------------------------------------------------------------------------- programs

MODEL = "tiny_cnn"
FREQUENCY = 800_000_000


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> Path:
    """tiny_cnn quantized once; each lowering reloads it (lowering rewrites the module)."""
    out = tmp_path_factory.mktemp("quantized")
    model = build_model(MODEL)
    samples = [sample_inputs(model, seed=seed) for seed in range(2)]
    aipuc.compile(
        model, CompilerConfig(output_dir=str(out), compiler_mode="quantize_only"), samples
    )
    return out / "quantized_model"


def _program(quantized: Path, **fields) -> Artifact:
    """The emitted ELF of the quantized model lowered with `fields`."""
    module = load_quantized_model(quantized).module
    config = CompilerConfig(**fields)
    for lowering in pipeline.stages(Phase.LOWERING):
        pipeline.run_stage(lowering, config, ir_context(), module)
    options = EmitOptions(stream_tasklist=config.stream_tasklist, elf_in_ddr=config.elf_in_ddr)
    return stage.emit(module, options)


def _performance(quantized: Path, **fields) -> dict:
    return stage.performance(_program(quantized, **fields), FREQUENCY)


def _mvm_macs_of(model: onnx.ModelProto) -> int:
    """MACs of the model's convolutions (not depthwise) and Gemm, from ONNX shapes."""
    inferred = shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*inferred.graph.value_info, *inferred.graph.output)
    }
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    macs = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out_c, group_in, kh, kw = weights[node.input[1]]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            if group > 1 and group_in == 1 and out_c == group:
                continue  # depthwise: the DWPU's
            _, _, h, w = shapes[node.output[0]]
            # grouped convolutions run as their dense block-diagonal product
            macs += h * w * out_c * group_in * group * kh * kw
        elif node.op_type == "Gemm":
            out_c, in_c = weights[node.input[1]]
            macs += out_c * in_c
    return macs


def test_useful_macs_of_a_whole_model_are_its_convolutions_and_dense_layers(quantized):
    program = _program(quantized)
    report = stage.performance(program, FREQUENCY)
    assert report["mvm"]["useful_macs"] == _mvm_macs_of(build_model(MODEL))
    units = report["units"]
    assert sum(u["cycles"] for u in units.values()) == report["cycles"]
    assert sum(u["records"] for u in units.values()) == sum(len(s) for s in program.executed())
    roofline = report["roofline"]
    assert roofline["bound_cycles"] == max(roofline["compute_cycles"], roofline["memory_cycles"])
    assert roofline["ratio"] >= 1


def test_icr_and_swicr_raise_mvm_utilization(quantized):
    """tiny_cnn's first layer has 3 input channels (swICR) and its layers 16 outputs (ICR)."""

    def utilization(**fields) -> float:
        return _performance(quantized, **fields)["mvm"]["utilization"]

    default = utilization()
    assert utilization(enable_icr=False) < default
    assert utilization(enable_swicr=False) < default
    assert utilization(enable_icr=False, enable_swicr=False) < utilization(enable_icr=False)


def test_more_height_tiles_never_reduce_dma_setup_cycles(quantized):
    records = []
    for tiles in (1, 2, 4, 8):  # tensors in DDR: promoted to L1, they would need no DMA
        report = _performance(quantized, force_h_tiling=tiles, enable_buffer_promotion=False)
        records.append(report["units"]["dma"]["records"])
    assert records == sorted(records)
    assert records[-1] > records[0]


def test_compilation_report_and_cli_line(tmp_path):
    model = build_model(MODEL)
    samples = [sample_inputs(model, seed=0)]
    config = CompilerConfig(output_dir=str(tmp_path / "out"), frequency=400_000_000)
    compiled = aipuc.compile(model, config, samples)
    performance = compiled.report["performance"]
    assert performance["frequency_hz"] == 400_000_000
    assert performance["latency_ms"] == pytest.approx(performance["cycles"] / 400e6 * 1e3)
    assert "frequency" not in compiled.report.get("fields_without_effect", {})
    from aipuc.cli import format_report

    line = next(
        text for text in format_report(compiled.report).splitlines() if text.startswith("modelled")
    )
    assert f"{performance['cycles']:,} cycles" in line and "400 MHz" in line
    np.testing.assert_array_equal(
        compiled.run(samples[0])["logits"], compiled.run_quantized(samples[0])["logits"]
    )


def test_element_wise_tiles_run_whole_dpu_vectors(quantized):
    """tiny_cnn's element-wise layers have 16 channels: dense tiles run as rows of 64 lanes."""
    program = _program(quantized)
    constants = dict(program.program().loads)
    per_lane = [int(MicroOpcode.REQUANT_TABLE), int(MicroOpcode.RMAX), int(MicroOpcode.RSUM)]
    shapes = []
    for stream in program.executed():
        for opcode, record in stream.records():
            if opcode != Opcode.DPU:
                continue
            words = constants[int(record["program"])][: int(record["micro_ops"]) * 32]
            if not np.isin(isa.decode_micro_ops(words)["op"], per_lane).any():
                shapes.append(record["shape"].tolist())
    assert shapes and all(shape[-1] == AIPU.dpu_lanes for shape in shapes), shapes


def _c2f_like() -> onnx.ModelProto:
    """conv -> split in two channel halves -> conv on one -> concat -> conv, as YOLO's C2f."""
    b = GraphBuilder("c2f_like", 3)
    x = b.input("input", (1, 3, 16, 16), IMAGE_IMAGENET)
    x = b.conv_bn_act(x, 32, 3, act="relu", name="stem")
    left, right = b.split(x, [16, 16], axis=1)
    right = b.conv_bn_act(right, 16, 3, act="relu", name="inner")
    x = b.concat([left, right], axis=1)
    b.output(b.conv_bn_act(x, 32, 1, act=None, name="out"), "output")
    return b.model("C2f-like split and concat between convolutions")


def test_split_and_concat_keep_the_convolutions_layout(tmp_path):
    """No NHWC <-> NCHW transposes around a split and a concat: every DMA moves runs of at
    least one pixel's channels (16 bytes), and the stream still equals the reference."""
    model = _c2f_like()
    sample = sample_inputs(model, seed=0)
    compiled = aipuc.compile(model, CompilerConfig(output_dir=str(tmp_path / "o")), [sample])
    elf = ElfFile.from_bytes((compiled.output_dir / "compiled_model" / "model.elf").read_bytes())
    runs = [
        int(record["sizes"][-1])
        for section in elf.sections
        if section.name.startswith(".aipu.tasklist.")
        for opcode, record in isa.Stream(section.data).records()
        if opcode == Opcode.DMA
    ]
    assert min(runs) >= 16, sorted(runs)[:5]
    streamed, reference = compiled.run(sample), compiled.run_quantized(sample)
    np.testing.assert_array_equal(streamed["output"], reference["output"])


def test_dense_rows_share_one_weight_load(tmp_path):
    """A dense layer on 8 rows (a conv on 8 images of 1x1 after rewrite-dense-to-conv2d)
    loads its one weightset once, not once per row; the stream equals the reference."""
    b = GraphBuilder("rows", 5)
    x = b.input("input", (8, 32), EMBEDDINGS)
    b.output(b.gemm(x, 16), "output")
    model = b.model("a dense layer on 8 rows")
    sample = sample_inputs(model, seed=0)
    compiled = aipuc.compile(model, CompilerConfig(output_dir=str(tmp_path / "o")), [sample])
    performance = compiled.report["performance"]
    assert performance["units"]["mvm"]["records"] == 2  # one IMC load, one MVM of 8 pixels
    streamed, reference = compiled.run(sample), compiled.run_quantized(sample)
    np.testing.assert_array_equal(streamed["output"], reference["output"])


# ---------------------------------------------------------------------------------- ICR, swICR


def _narrow_model() -> onnx.ModelProto:
    """A 3-channel stem (swICR), a 64 -> 16 3x3 conv (two K chunks of 576 rows, ICR room 4)
    and a 1x1 16 -> 16 (swICR and ICR): every unit-mapping field has a layer to change."""
    b = GraphBuilder("narrow", 7)
    x = b.input("input", (1, 3, 16, 16), IMAGE_IMAGENET)
    x = b.conv_bn_act(x, 64, 3, act="relu", name="wide")
    x = b.conv_bn_act(x, 16, 3, act="relu", name="narrow")
    b.output(b.conv_bn_act(x, 16, 1, act=None, name="out"), "output")
    return b.model("narrow layers for ICR and swICR")


@pytest.fixture(scope="module")
def narrow(tmp_path_factory) -> tuple[Path, list, list]:
    """The narrow model quantized once: (folder, samples, run_quantized outputs)."""
    folder = tmp_path_factory.mktemp("narrow")
    model = _narrow_model()
    samples = samples_of(model)
    compiled = quantize(model, samples, folder)
    return folder, samples, [compiled.run_quantized(s) for s in samples]


MAPPING_FIELDS = {
    # field=value: the loss that grows when the field takes ICR or swICR away
    "enable_icr=False": ({"enable_icr": False}, "unused_columns"),
    "icrx_force=2": ({"icrx_force": 2}, "unused_columns"),
    "icrx_parallel_block_threshold=1": ({"icrx_parallel_block_threshold": 1}, "unused_columns"),
    "icrx_max_factor=2": ({"icrx_max_factor": 2}, "unused_columns"),
    "enable_swicr=False": ({"enable_swicr": False}, "padding_lanes"),
    # the limit also turns swICR off (a warning): the stem's 3 channels pad to 64 lanes
    "mvm_utilization_limit=0.5": ({"mvm_utilization_limit": 0.5}, "padding_lanes"),
}


def _streams(folder: Path) -> bytes:
    """The tasklist sections of model.elf."""
    elf = ElfFile.from_bytes((folder / "compiled_model" / "model.elf").read_bytes())
    return b"".join(s.data for s in elf.sections if s.name.startswith(".aipu.tasklist."))


@pytest.mark.parametrize("case", MAPPING_FIELDS)
def test_each_mapping_field_changes_the_stream_and_mvm_utilization(narrow, tmp_path, case):
    """Against the defaults, each field gives another stream (still equal to the integer
    reference bit for bit) and a lower modelled MVM utilization, through the loss it names."""
    fields, loss = MAPPING_FIELDS[case]
    quantized, samples, references = narrow
    default = lower(quantized, tmp_path / "default")
    changed = lower(quantized, tmp_path / "changed", **fields)
    assert _streams(tmp_path / "changed") != _streams(tmp_path / "default")
    before, after = default.report["performance"], changed.report["performance"]
    assert after["cycles"] != before["cycles"]
    assert after["mvm"]["utilization"] < before["mvm"]["utilization"]
    assert after["mvm"]["losses"][loss] > before["mvm"]["losses"][loss]
    assert_stream_equals_reference(tmp_path / "changed", references, samples)
    if "mvm_utilization_limit" in fields:  # half the rows of a weightset at most
        elf = ElfFile.from_bytes(
            (tmp_path / "changed" / "compiled_model" / "model.elf").read_bytes()
        )
        rows = [
            int(record["k_len"])
            for section in elf.sections
            if section.name.startswith(".aipu.tasklist.")
            for opcode, record in isa.Stream(section.data).records()
            if opcode == Opcode.MVM
        ]
        assert max(rows) == AIPU.mvm_k // 2
