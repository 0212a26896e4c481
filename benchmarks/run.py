"""The numbers users of an edge-AI compiler wait on, per zoo model, with peers as ratios.

For each model (32 calibration samples by default):

- aipuc compiles end to end (`quantize_and_lower`) in a child process, so that its peak
  resident memory (VmHWM) is the compiler's alone; the compilation report gives the
  seconds of every stage and pass and the op count of the IR after each stage;
- the compiled model runs one held-out input on the stream simulator (`CompiledModel.run`,
  best of `--runs` warm runs) against onnxruntime's float run of the same ONNX model, and the
  stream's outputs are compared with the integer reference (`run_quantized`) bit for bit;
- the modelled cycles, latency, FPS, per-unit busy fractions, MVM utilization and the roofline
  bound come from the report's `performance` entry (written by the emit stage);
- peers, each optional (`pip install -e '.[bench]'`); one that is not installed is reported as
  missing: onnxruntime `quantize_static` (QDQ, per channel, MinMax; with and without its
  `quant_pre_process`) against aipuc's quantization stages (everything before lowering), and
  Apache TVM (Relax `from_onnx` + `tvm.compile(target="llvm")`) and IREE (`iree-import-onnx` +
  `iree-compile --iree-hal-target-backends=llvm-cpu`) against aipuc's lowering stages
  (convert, lower, emit). TVM runs in a child process (timed without `import tvm`); IREE's two
  command-line tools are timed as run.

    python benchmarks/run.py [--models resnet50,mobilenetv2] [--calibration 32] [--runs 5]
        [--peers ort,tvm,iree | --peers none] [--out docs/benchmarks_table.md]
        [--work-dir DIR] [--profile DIR]

Times are wall-clock seconds on a machine others share; the ratios (aipuc over the peer, both
measured back to back in the same run) are the figures to compare. `--profile DIR` writes
cProfile files of the compilation and of one simulator run and prints their top entries.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import importlib.util
import io
import json
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from common import machine_info, markdown_table

from aipuc.models import ZOO, build_model, sample_inputs

HELD_OUT_SEED = 1000  # the simulated input never shares a seed with calibration samples
LOWERING_STAGES = ("convert", "lower", "emit")
PEERS = ("ort", "tvm", "iree")
MISSING = "missing"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks_table.md"
SUMMARY_COLUMNS = (
    "model",
    "compile s",
    "compile CPU s",
    "quantize s",
    "lowering s",
    "peak RSS MiB",
    "sim s",
    "ort float s",
    "sim / ort",
    "sim / ort CPU",
    "sim == run_quantized",
    "cycles",
    "latency ms",
    "FPS",
    "MVM util",
    "roofline bound",
    "cycles / bound",
)
UNIT_COLUMNS = ("model", "unit busy (fraction of the modelled cycles)")
PEER_COLUMNS = (
    "model",
    "aipuc quantize s",
    "ort quantize_static s",
    "aipuc / ort",
    "ort pre_process + quantize_static s",
    "aipuc / ort pre",
    "aipuc lowering s",
    "TVM s",
    "aipuc / TVM",
    "IREE s",
    "aipuc / IREE",
)


# --------------------------------------------------------------------------- aipuc


def _compile_child(name: str, calibration: int, output_dir: Path, profile: Path | None) -> None:
    """In the child process: compile `name`, print wall/CPU seconds and peak RSS as JSON."""
    import aipuc

    model = build_model(name)
    samples = [sample_inputs(model, seed=seed) for seed in range(calibration)]
    config = aipuc.CompilerConfig(output_dir=str(output_dir), remove_output_dir=True)
    profiler = cProfile.Profile() if profile is not None else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler is None:
        aipuc.compile(model, config, samples)
    else:
        profiler.runcall(aipuc.compile, model, config, samples)
        profiler.dump_stats(str(profile))
    result = {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_mib": _peak_rss_mib(),
    }
    print(json.dumps(result))


def _peak_rss_mib() -> float:
    """This process's peak resident memory. Linux's VmHWM belongs to the address space exec
    made; `ru_maxrss` would also count the parent's peak from before the fork."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _in_child(arguments: Sequence[str], what: str, timeout: float | None = None) -> dict:
    """Run this script with `arguments` in a fresh interpreter; its last stdout line, as JSON."""
    done = subprocess.run(
        [sys.executable, __file__, *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class ModelResult:
    """Everything measured for one model; a value that could not be measured is a string."""

    name: str
    compile: dict[str, Any]
    report: dict[str, Any]
    sim_s: tuple[float, float]
    """Best wall and CPU seconds of one stream run; `ort_float_s` the same for onnxruntime."""
    ort_float_s: tuple[float, float]
    exact: bool
    peers: dict[str, Any] = field(default_factory=dict)

    def stage_seconds(self, names: Sequence[str] | None = None) -> float:
        return sum(
            s["seconds"] for s in self.report["stages"] if names is None or s["stage"] in names
        )

    @property
    def quantize_s(self) -> float:
        """aipuc's quantization: every stage before lowering (load to evaluate) but the
        evaluate stage's SQNR check, which onnxruntime's quantizer does not do."""
        sqnr = sum(s.get("sqnr_seconds", 0.0) for s in self.report["stages"])
        return self.stage_seconds() - self.lowering_s - sqnr

    @property
    def lowering_s(self) -> float:
        return self.stage_seconds(LOWERING_STAGES)


def _best_seconds(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """The fastest wall and CPU seconds (all threads) of `repeats` runs: on a shared machine
    the slower runs only add others' load, and CPU time is what the run itself costs."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return min(wall), min(cpu)


def _simulate(
    output_dir: Path, model: onnx.ModelProto, runs: int, profile: Path | None
) -> tuple[tuple[float, float], tuple[float, float], bool]:
    """Best warm seconds of the stream simulator and of onnxruntime's float run on one
    held-out input, and whether the stream equals the integer reference bit for bit."""
    import aipuc

    compiled = aipuc.load(output_dir)
    held_out = sample_inputs(model, seed=HELD_OUT_SEED)
    stream = compiled.run(held_out)  # warm-up: loads the device program
    exact = all(np.array_equal(stream[k], v) for k, v in compiled.run_quantized(held_out).items())
    sim_s = _best_seconds(lambda: compiled.run(held_out), runs)
    if profile is not None:
        cProfile.Profile().runcall(compiled.run, held_out)  # warm the profiler's own costs
        profiler = cProfile.Profile()
        profiler.runcall(compiled.run, held_out)
        profiler.dump_stats(str(profile))
    from common import ort_session

    session = ort_session(model)
    session.run(None, held_out)
    return sim_s, _best_seconds(lambda: session.run(None, held_out), runs), exact


# --------------------------------------------------------------------------- peers


def _peer_missing(peer: str) -> str | None:
    """Why `peer` cannot run here (None: it can)."""
    if peer == "ort":
        found = importlib.util.find_spec("onnxruntime") is not None
        return None if found else "onnxruntime not installed"
    if peer == "tvm":
        return None if importlib.util.find_spec("tvm") is not None else "apache-tvm not installed"
    if peer == "iree":
        return None if _iree_tool("iree-compile") else "iree-base-compiler not installed"
    raise ValueError(peer)


def _iree_tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else shutil.which(name)


def _ort_quantize_s(model: onnx.ModelProto, samples, pre_process: bool) -> float:
    from common import ort_quantize
    from onnxruntime.quantization.shape_inference import quant_pre_process

    started = time.perf_counter()
    if pre_process:
        with tempfile.TemporaryDirectory(prefix="ort-pre-") as folder:
            source, target = Path(folder, "float.onnx"), Path(folder, "pre.onnx")
            onnx.save(model, source)
            quant_pre_process(str(source), str(target))
            model = onnx.load(str(target))
    ort_quantize(model, samples, "MinMax")
    return time.perf_counter() - started


def _tvm_child(model_path: Path) -> None:
    """In the child process: TVM Relax import and LLVM build, timed without `import tvm`."""
    import tvm
    from tvm.relax.frontend.onnx import from_onnx

    model = onnx.load(str(model_path))
    shapes = {
        i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input
    }
    started = time.perf_counter()
    tvm.compile(from_onnx(model, shape_dict=shapes), target="llvm")
    print(json.dumps({"wall_s": time.perf_counter() - started}))


def _iree_s(model_path: Path, folder: Path) -> float:
    mlir, vmfb = folder / "model.mlir", folder / "model.vmfb"
    commands = (
        [_iree_tool("iree-import-onnx"), str(model_path), "-o", str(mlir)],
        [
            _iree_tool("iree-compile"),
            "--iree-hal-target-backends=llvm-cpu",
            str(mlir),
            "-o",
            str(vmfb),
        ],
    )
    started = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-300:]}")
    return time.perf_counter() - started


def _peers(model: onnx.ModelProto, samples, peers: Sequence[str], folder: Path) -> dict[str, Any]:
    """Seconds of every requested peer; a missing or failing peer is a string saying so."""
    model_path = folder / "float.onnx"
    onnx.save(model, model_path)
    jobs: dict[str, Callable[[], float]] = {
        "ort": lambda: _ort_quantize_s(model, samples, pre_process=False),
        "ort_pre": lambda: _ort_quantize_s(model, samples, pre_process=True),
        "tvm": lambda: _in_child(["--tvm-child", str(model_path)], "TVM", timeout=1800)["wall_s"],
        "iree": lambda: _iree_s(model_path, folder),
    }
    results: dict[str, Any] = {}
    for key, job in jobs.items():
        peer = "ort" if key.startswith("ort") else key
        if peer not in peers:
            continue
        reason = _peer_missing(peer)
        if reason is not None:
            results[key] = f"{MISSING} ({reason})"
            continue
        try:
            results[key] = job()
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            results[key] = f"failed: {str(error).splitlines()[0]}"
    return results


# --------------------------------------------------------------------------- one model


def measure_model(
    name: str,
    calibration: int,
    runs: int,
    peers: Sequence[str],
    work_dir: Path,
    profile_dir: Path | None = None,
) -> ModelResult:
    """Compile, simulate and run the peers for zoo model `name`."""
    output_dir = work_dir / name
    compile_profile = sim_profile = None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        compile_profile = profile_dir / f"{name}.compile.prof"
        sim_profile = profile_dir / f"{name}.sim.prof"
    arguments = ["--compile-child", name, "--calibration", str(calibration)]
    arguments += ["--work-dir", str(output_dir)]
    if compile_profile is not None:
        arguments += ["--profile", str(compile_profile)]
    compiled = _in_child(arguments, f"compiling {name}")
    report = json.loads((output_dir / "compilation_report.json").read_text())
    model = build_model(name)
    sim_s, ort_s, exact = _simulate(output_dir, model, runs, sim_profile)
    result = ModelResult(name, compiled, report, sim_s, ort_s, exact)
    if peers:
        samples = [sample_inputs(model, seed=seed) for seed in range(calibration)]
        peer_dir = work_dir / f"{name}.peers"
        peer_dir.mkdir(parents=True, exist_ok=True)
        result.peers = _peers(model, samples, peers, peer_dir)
    return result


# --------------------------------------------------------------------------- tables


def _num(value: object, digits: int = 3) -> str:
    """A number to `digits` significant digits; strings (missing, failed) as they are."""
    if isinstance(value, str) or value is None:
        return MISSING if value is None else value
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"


def _ratio(ours: float, theirs: object) -> str:
    return f"{ours / theirs:.2f}x" if isinstance(theirs, float) and theirs > 0 else "-"


def _performance(report: dict[str, Any]) -> dict[str, Any]:
    """The modelled figures, or `missing` for each when the report has none."""
    p = report.get("performance")
    if not isinstance(p, dict):
        return {}
    roofline, mvm = p.get("roofline", {}), p.get("mvm", {})
    return {
        "cycles": p.get("cycles"),
        "latency ms": p.get("latency_ms"),
        "FPS": p.get("fps"),
        "MVM util": None if mvm.get("utilization") is None else f"{mvm['utilization']:.1%}",
        "roofline bound": None
        if roofline.get("bound_cycles") is None
        else f"{roofline['bound_cycles']:,} ({roofline.get('bound')})",
        "cycles / bound": roofline.get("ratio"),
        "units": ", ".join(
            f"{unit} {entry['busy']:.1%}"
            for unit, entry in p.get("units", {}).items()
            if entry.get("busy") is not None
        ),
    }


def summary_row(r: ModelResult) -> dict[str, str]:
    performance = _performance(r.report)
    row = {
        "model": r.name,
        "compile s": _num(r.compile["wall_s"]),
        "compile CPU s": _num(r.compile["cpu_s"]),
        "quantize s": _num(r.quantize_s),
        "lowering s": _num(r.lowering_s),
        "peak RSS MiB": _num(round(r.compile["peak_rss_mib"])),
        "sim s": _num(r.sim_s[0]),
        "ort float s": _num(r.ort_float_s[0]),
        "sim / ort": _ratio(r.sim_s[0], r.ort_float_s[0]),
        "sim / ort CPU": _ratio(r.sim_s[1], r.ort_float_s[1]),
        "sim == run_quantized": _num(r.exact),
    }
    for column in SUMMARY_COLUMNS[len(row) :]:
        row[column] = _num(performance.get(column))
    return row


def peer_row(r: ModelResult) -> dict[str, str]:
    p = r.peers

    def cell(key: str) -> str:
        return _num(p.get(key, "not run"))

    return {
        "model": r.name,
        "aipuc quantize s": _num(r.quantize_s),
        "ort quantize_static s": cell("ort"),
        "aipuc / ort": _ratio(r.quantize_s, p.get("ort")),
        "ort pre_process + quantize_static s": cell("ort_pre"),
        "aipuc / ort pre": _ratio(r.quantize_s, p.get("ort_pre")),
        "aipuc lowering s": _num(r.lowering_s),
        "TVM s": cell("tvm"),
        "aipuc / TVM": _ratio(r.lowering_s, p.get("tvm")),
        "IREE s": cell("iree"),
        "aipuc / IREE": _ratio(r.lowering_s, p.get("iree")),
    }


def stage_rows(r: ModelResult) -> list[dict[str, str]]:
    return [
        {
            "stage": s["stage"],
            "seconds": _num(s["seconds"]),
            "ops after": _num(s.get("ops", "-")),
            "passes (s)": ", ".join(f"{p['pass']} {_num(p['seconds'])}" for p in s["passes"])
            if s.get("passes")
            else "",
        }
        for s in r.report["stages"]
    ]


def render(results: Sequence[ModelResult], command: str, calibration: int, runs: int) -> str:
    """The whole Markdown document: summary, units, peers, one stage table per model."""
    lines = [
        "# aipuc benchmark tables",
        "",
        f"`{command}` on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; "
        f"{machine_info()}.",
        f"{calibration} calibration samples; run times are the best of {runs} warm runs of one "
        "held-out input; seconds are wall-clock but `compile CPU s` (the child's CPU time) and "
        "`sim / ort CPU` (CPU seconds of all threads). "
        "`compile s` is the whole compilation in a child process; `quantize s` the stages "
        "before lowering (without the SQNR check where the report times it apart); "
        "`lowering s` convert + lower + emit; ratios are aipuc over the peer. The modelled "
        "figures are the cycle model's, not a measurement of hardware.",
        "",
        "## Summary",
        "",
        markdown_table([summary_row(r) for r in results], SUMMARY_COLUMNS),
        "",
        "## Modelled unit busy fractions",
        "",
        markdown_table(
            [
                {"model": r.name, UNIT_COLUMNS[1]: _performance(r.report).get("units") or MISSING}
                for r in results
            ],
            UNIT_COLUMNS,
        ),
    ]
    if any(r.peers for r in results):
        lines += ["", "## Peers", "", markdown_table([peer_row(r) for r in results], PEER_COLUMNS)]
    for r in results:
        lines += [
            "",
            f"## {r.name}: stages",
            "",
            markdown_table(stage_rows(r), ("stage", "seconds", "ops after", "passes (s)")),
        ]
    return "\n".join(lines) + "\n"


def _top_entries(path: Path, count: int = 15) -> str:
    text = io.StringIO()
    pstats.Stats(str(path), stream=text).sort_stats("tottime").print_stats(count)
    return text.getvalue()


def run_benchmark(
    models: Sequence[str],
    calibration: int = 32,
    runs: int = 5,
    peers: Sequence[str] = PEERS,
    work_dir: Path | None = None,
    profile_dir: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> list[ModelResult]:
    results = []
    with tempfile.TemporaryDirectory(prefix="aipuc-bench-") as scratch:
        root = work_dir if work_dir is not None else Path(scratch)
        for name in models:
            progress(f"{name}: compiling, simulating{', peers' if peers else ''} ...")
            results.append(measure_model(name, calibration, runs, peers, root, profile_dir))
            progress(markdown_table([summary_row(results[-1])], SUMMARY_COLUMNS).splitlines()[2])
    return results


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(ZOO), help="comma-separated zoo names")
    parser.add_argument("--calibration", type=int, default=32, help="calibration samples")
    parser.add_argument("--runs", type=int, default=5, help="timed simulator/onnxruntime runs")
    parser.add_argument(
        "--peers", default=",".join(PEERS), help=f"comma-separated of {', '.join(PEERS)}, or none"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the Markdown file")
    parser.add_argument("--work-dir", type=Path, help="keep output folders here")
    parser.add_argument("--profile", type=Path, help="write cProfile files into this folder")
    parser.add_argument("--compile-child", help=argparse.SUPPRESS)
    parser.add_argument("--tvm-child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.compile_child:
        _compile_child(args.compile_child, args.calibration, args.work_dir, args.profile)
        return 0
    if args.tvm_child:
        _tvm_child(args.tvm_child)
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    peers = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",")]
    for kind, names, valid in (("zoo model", models, ZOO), ("peer", peers, PEERS)):
        unknown = [n for n in names if n not in valid]
        if unknown:
            print(f"error: unknown {kind}(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
            return 2
    results = run_benchmark(
        models, args.calibration, args.runs, peers, args.work_dir, args.profile, print
    )
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    document = render(results, command.strip(), args.calibration, args.runs)
    print(document)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(document)
    if args.profile is not None:
        for path in sorted(args.profile.glob("*.prof")):
            print(f"--- {path.name}: top entries by own time")
            print(_top_entries(path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
