"""Int8 accuracy on real data: aipuc's post-training quantization against onnxruntime's.

A small CNN is trained in NumPy on scikit-learn's digits (8x8 grey images, ten classes; shipped
inside scikit-learn, nothing is downloaded), exported to ONNX, and quantized with the same
calibration images by aipuc (each `quantization_scheme`) and by onnxruntime's `quantize_static`
(QDQ, per-channel int8, MinMax / Entropy / Percentile). Every model is scored on the held-out
test images. The target: aipuc's default scheme loses no more accuracy than onnxruntime's best.

    python benchmarks/accuracy_digits.py [--epochs N] [--calibration N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from common import (
    ORT_METHODS,
    machine_info,
    markdown_table,
    ort_quantize,
    ort_session,
    sqnr_db,
)
from onnx import helper, numpy_helper
from threadpoolctl import threadpool_limits

import aipuc
from aipuc.compiled import CompiledModel
from aipuc.config import QuantizationScheme

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
IMAGE_SHAPE = (1, 1, 8, 8)
NUM_CLASSES = 10
PIXEL_MAX = 16.0  # digits pixels are integers in [0, 16]
CONV_LAYERS = ((1, 16, 1), (16, 32, 2), (32, 32, 1))  # (in channels, out channels, stride), 3x3
OPSET = 17
IR_VERSION = 8  # the lowest IR version that carries opset 17
AIPUC_SCHEMES = tuple(str(scheme) for scheme in QuantizationScheme)
DEFAULT_SCHEME = str(aipuc.CompilerConfig().quantization_scheme)
TABLE_COLUMNS = (
    "method",
    "accuracy %",
    "drop (pp)",
    "agree %",
    "logit SQNR dB",
    "quantize s",
    "evaluate s",
)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DigitsSplit:
    """Images as float32 [N, 1, 8, 8] in [0, 1]; labels int64 [N]."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def load_digits_split(seed: int = 0, test_fraction: float = 0.2) -> DigitsSplit:
    """scikit-learn's digits, split stratified by class with a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / PIXEL_MAX).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels, random_state=seed
    )
    return DigitsSplit(train_x, train_y, test_x, test_y)


def calibration_images(split: DigitsSplit, count: int, seed: int = 0) -> np.ndarray:
    """`count` training images drawn with a fixed seed: the one calibration set every method
    sees."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(split.train_images), size=count, replace=False)
    return split.train_images[np.sort(chosen)]


# --------------------------------------------------------------------------- NumPy CNN


def _tap_windows(height: int, width: int, stride: int) -> tuple[int, int, list[tuple]]:
    """Output size and the nine strided slices (into the 1-padded input) of a 3x3 conv."""
    out_h, out_w = (height - 1) // stride + 1, (width - 1) // stride + 1
    windows = [
        (
            slice(i, i + stride * (out_h - 1) + 1, stride),
            slice(j, j + stride * (out_w - 1) + 1, stride),
        )
        for i in range(3)
        for j in range(3)
    ]
    return out_h, out_w, windows


def _im2col(x: np.ndarray, stride: int) -> tuple[np.ndarray, int, int]:
    """[N, C, H, W] -> rows [N*Ho*Wo, C*9] (C major, then the 3x3 taps, as ONNX weights are)."""
    n, c, h, w = x.shape
    out_h, out_w, windows = _tap_windows(h, w, stride)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    taps = np.stack([padded[:, :, rows, cols] for rows, cols in windows], axis=2)
    return taps.transpose(0, 3, 4, 1, 2).reshape(n * out_h * out_w, c * 9), out_h, out_w


def _col2im(grad_rows: np.ndarray, x_shape: tuple[int, ...], stride: int) -> np.ndarray:
    """The adjoint of `_im2col`: sums each row's taps back into the input gradient."""
    n, c, h, w = x_shape
    out_h, out_w, windows = _tap_windows(h, w, stride)
    taps = grad_rows.reshape(n, out_h, out_w, c, 9).transpose(0, 3, 4, 1, 2)
    padded = np.zeros((n, c, h + 2, w + 2), dtype=grad_rows.dtype)
    for tap, (rows, cols) in enumerate(windows):
        padded[:, :, rows, cols] += taps[:, :, tap]
    return padded[:, :, 1:-1, 1:-1]


@dataclass
class DigitsCNN:
    """Conv3x3(1->16)+ReLU, Conv3x3(16->32, stride 2)+ReLU, Conv3x3(32->32)+ReLU,
    GlobalAveragePool, Dense(32->10); 'same' padding. Parameters in ONNX layouts."""

    params: dict[str, np.ndarray]

    @classmethod
    def initialise(cls, seed: int) -> DigitsCNN:
        """He-normal weights, zero biases."""
        rng = np.random.default_rng(seed)
        params: dict[str, np.ndarray] = {}
        for index, (cin, cout, _) in enumerate(CONV_LAYERS):
            params[f"conv{index}.weight"] = (
                rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))
            ).astype(np.float32)
            params[f"conv{index}.bias"] = np.zeros(cout, np.float32)
        features = CONV_LAYERS[-1][1]
        params["dense.weight"] = (
            rng.standard_normal((NUM_CLASSES, features)) * np.sqrt(1.0 / features)
        ).astype(np.float32)
        params["dense.bias"] = np.zeros(NUM_CLASSES, np.float32)
        return cls(params)

    def _forward(self, images: np.ndarray) -> tuple[np.ndarray, list]:
        """Logits and what backprop needs: per conv layer (im2col rows, input shape, output)."""
        caches = []
        x = images
        for index, (_, cout, stride) in enumerate(CONV_LAYERS):
            rows, out_h, out_w = _im2col(x, stride)
            weight = self.params[f"conv{index}.weight"].reshape(cout, -1)
            out = rows @ weight.T + self.params[f"conv{index}.bias"]
            out = np.maximum(out, 0.0).reshape(len(x), out_h, out_w, cout).transpose(0, 3, 1, 2)
            caches.append((rows, x.shape, out))
            x = out
        pooled = x.mean(axis=(2, 3))
        logits = pooled @ self.params["dense.weight"].T + self.params["dense.bias"]
        caches.append(pooled)
        return logits, caches

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self._forward(images)[0]

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.logits(images).argmax(axis=1)

    def loss_and_gradients(
        self, images: np.ndarray, labels: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Mean softmax cross-entropy and its gradient for every parameter (manual backprop)."""
        logits, caches = self._forward(images)
        pooled = caches.pop()
        shifted = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        batch = len(images)
        loss = float(-np.mean(np.log(probabilities[np.arange(batch), labels] + 1e-12)))
        grad_logits = probabilities
        grad_logits[np.arange(batch), labels] -= 1.0
        grad_logits /= batch

        grads = {
            "dense.weight": grad_logits.T @ pooled,
            "dense.bias": grad_logits.sum(axis=0),
        }
        rows, _, last = caches[-1]
        spatial = last.shape[2] * last.shape[3]
        grad = np.broadcast_to(
            (grad_logits @ self.params["dense.weight"])[:, :, None, None] / spatial, last.shape
        )
        for index in reversed(range(len(CONV_LAYERS))):
            rows, input_shape, out = caches[index]
            cout, stride = CONV_LAYERS[index][1], CONV_LAYERS[index][2]
            grad_out = np.where(out > 0.0, grad, 0.0).transpose(0, 2, 3, 1).reshape(-1, cout)
            weight = self.params[f"conv{index}.weight"]
            grads[f"conv{index}.weight"] = (grad_out.T @ rows).reshape(weight.shape)
            grads[f"conv{index}.bias"] = grad_out.sum(axis=0)
            if index:
                grad = _col2im(grad_out @ weight.reshape(cout, -1), input_shape, stride)
        return loss, grads


@dataclass
class TrainingLog:
    epochs: int
    seconds: float
    losses: list[float] = field(default_factory=list)


def train(
    split: DigitsSplit,
    epochs: int = 30,
    seed: int = 0,
    batch_size: int = 32,
    learning_rate: float = 1e-2,
) -> tuple[DigitsCNN, TrainingLog]:
    """Adam on shuffled mini-batches with a cosine learning-rate decay; seeded end to end.

    BLAS runs single-threaded here: the matrices are small, and on a busy 2-core machine
    OpenBLAS's spinning worker threads made training over ten times slower.
    """
    with threadpool_limits(limits=1):
        return _train(split, epochs, seed, batch_size, learning_rate)


def _train(
    split: DigitsSplit, epochs: int, seed: int, batch_size: int, learning_rate: float
) -> tuple[DigitsCNN, TrainingLog]:
    rng = np.random.default_rng(seed)
    model = DigitsCNN.initialise(seed)
    first_moment = {k: np.zeros_like(v) for k, v in model.params.items()}
    second_moment = {k: np.zeros_like(v) for k, v in model.params.items()}
    beta1, beta2, epsilon = 0.9, 0.999, 1e-8
    steps_per_epoch = -(-len(split.train_images) // batch_size)
    total_steps = epochs * steps_per_epoch
    log = TrainingLog(epochs, 0.0)
    started = time.perf_counter()
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(split.train_images))
        epoch_loss = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss, grads = model.loss_and_gradients(
                split.train_images[batch], split.train_labels[batch]
            )
            epoch_loss += loss * len(batch)
            step += 1
            rate = learning_rate * 0.5 * (1.0 + np.cos(np.pi * (step - 1) / total_steps))
            for name, grad in grads.items():
                first_moment[name] = beta1 * first_moment[name] + (1 - beta1) * grad
                second_moment[name] = beta2 * second_moment[name] + (1 - beta2) * grad * grad
                corrected_first = first_moment[name] / (1 - beta1**step)
                corrected_second = second_moment[name] / (1 - beta2**step)
                model.params[name] -= (
                    rate * corrected_first / (np.sqrt(corrected_second) + epsilon)
                ).astype(np.float32)
        log.losses.append(epoch_loss / len(order))
    log.seconds = time.perf_counter() - started
    return model, log


# --------------------------------------------------------------------------- ONNX export


def export_onnx(model: DigitsCNN) -> onnx.ModelProto:
    """The trained network as an opset-17 ONNX model with input 'input' [1, 1, 8, 8] float32
    (batch 1: aipuc compiles fixed shapes) and output 'logits' [1, 10]."""
    nodes, x = [], INPUT_NAME
    for index, (_, _, stride) in enumerate(CONV_LAYERS):
        conv_out, relu_out = f"conv{index}", f"relu{index}"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"conv{index}.weight", f"conv{index}.bias"],
                [conv_out],
                name=conv_out,
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                strides=[stride, stride],
            )
        )
        nodes.append(helper.make_node("Relu", [conv_out], [relu_out], name=relu_out))
        x = relu_out
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["features"], name="flatten", axis=1),
        helper.make_node(
            "Gemm",
            ["features", "dense.weight", "dense.bias"],
            [OUTPUT_NAME],
            name="dense",
            transB=1,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, IMAGE_SHAPE)],
        [helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, (1, NUM_CLASSES))],
        initializer=[numpy_helper.from_array(value, name) for name, value in model.params.items()],
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="aipuc-benchmarks",
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


# --------------------------------------------------------------------------- evaluation


def _feeds(image: np.ndarray) -> dict[str, np.ndarray]:
    return {INPUT_NAME: image[None].astype(np.float32)}


def ort_logits(model: onnx.ModelProto, images: np.ndarray) -> np.ndarray:
    """Logits of `model` under onnxruntime, one image at a time (the model has batch 1)."""
    session = ort_session(model)
    return np.concatenate([session.run([OUTPUT_NAME], _feeds(image))[0] for image in images])


def aipuc_logits(compiled: CompiledModel, images: np.ndarray) -> np.ndarray:
    """Logits of aipuc's integer reference (`CompiledModel.run_quantized`), image by image."""
    return np.concatenate([compiled.run_quantized(_feeds(image))[OUTPUT_NAME] for image in images])


def compile_with_aipuc(
    model: onnx.ModelProto, calibration: np.ndarray, scheme: str, output_dir: Path
) -> CompiledModel:
    """Quantize only: the integer reference is what this benchmark scores."""
    config = aipuc.CompilerConfig(
        output_dir=output_dir, quantization_scheme=scheme, compiler_mode="quantize_only"
    )
    return aipuc.compile(model, config, calibration=[_feeds(image) for image in calibration])


@dataclass
class DigitsBenchmark:
    """The result table (one row per method) and what it was measured with. The target
    properties need the default scheme and at least one onnxruntime method in the rows."""

    rows: list[dict[str, object]]
    float_accuracy: float
    training: TrainingLog
    calibration_samples: int
    test_samples: int

    @property
    def default_scheme_drop(self) -> float:
        return next(r["drop (pp)"] for r in self.rows if r["method"] == f"aipuc {DEFAULT_SCHEME}")  # type: ignore[return-value]

    @property
    def best_onnxruntime_drop(self) -> float:
        return min(
            r["drop (pp)"]
            for r in self.rows  # type: ignore[type-var]
            if str(r["method"]).startswith("onnxruntime ")
        )

    @property
    def target_met(self) -> bool:
        """aipuc's default scheme loses no more accuracy than onnxruntime's best method."""
        return self.default_scheme_drop <= self.best_onnxruntime_drop

    def table(self) -> str:
        return markdown_table(self.rows, TABLE_COLUMNS)


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float(np.mean(logits.argmax(axis=1) == labels))


def run_benchmark(
    epochs: int = 30,
    calibration_samples: int = 64,
    test_samples: int | None = None,
    schemes: Sequence[str] = AIPUC_SCHEMES,
    ort_methods: Sequence[str] = tuple(ORT_METHODS),
    seed: int = 0,
    work_dir: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> DigitsBenchmark:
    """Train, export, quantize with every method and score all on the test split.

    `test_samples` limits the test images (None: all 360); aipuc output folders go under
    `work_dir` (a temporary folder if None).
    """
    split = load_digits_split(seed)
    test_images, test_labels = split.test_images[:test_samples], split.test_labels[:test_samples]
    model, training = train(split, epochs=epochs, seed=seed)
    progress(
        f"trained {epochs} epochs in {training.seconds:.1f} s "
        f"(final loss {training.losses[-1]:.4f})"
    )
    proto = export_onnx(model)
    calibration = calibration_images(split, calibration_samples, seed)

    started = time.perf_counter()
    numpy_logits = model.logits(test_images)
    numpy_seconds = time.perf_counter() - started
    started = time.perf_counter()
    float_onnx_logits = ort_logits(proto, test_images)
    float_seconds = time.perf_counter() - started
    float_accuracy = _accuracy(numpy_logits, test_labels)
    if not np.array_equal(numpy_logits.argmax(1), float_onnx_logits.argmax(1)):
        difference = np.abs(numpy_logits - float_onnx_logits).max()
        raise RuntimeError(
            "the exported ONNX model disagrees with the NumPy model "
            f"(max |logit difference| {difference:.3g})"
        )

    rows: list[dict[str, object]] = []

    def add_row(method: str, logits: np.ndarray, quantize_s: float, evaluate_s: float) -> None:
        """One table row; agreement and SQNR are against the float NumPy model's logits, so
        methods with equal accuracy still show how far they moved from float."""
        accuracy = _accuracy(logits, test_labels)
        agreement = 100.0 * float(np.mean(logits.argmax(axis=1) == numpy_logits.argmax(axis=1)))
        rows.append(
            {
                "method": method,
                "accuracy %": accuracy,
                "drop (pp)": float_accuracy - accuracy,
                "agree %": agreement,
                "logit SQNR dB": sqnr_db(numpy_logits, logits),
                "quantize s": quantize_s,
                "evaluate s": evaluate_s,
            }
        )
        progress(f"{method}: {accuracy:.2f} %")

    add_row("float32 NumPy", numpy_logits, 0.0, numpy_seconds)
    add_row("float32 onnxruntime", float_onnx_logits, 0.0, float_seconds)

    with tempfile.TemporaryDirectory(prefix="aipuc-digits-") as scratch:
        root = Path(work_dir) if work_dir is not None else Path(scratch)
        for scheme in schemes:
            started = time.perf_counter()
            compiled = compile_with_aipuc(proto, calibration, scheme, root / scheme)
            quantize_s = time.perf_counter() - started
            started = time.perf_counter()
            logits = aipuc_logits(compiled, test_images)
            add_row(f"aipuc {scheme}", logits, quantize_s, time.perf_counter() - started)

    for method in ort_methods:
        started = time.perf_counter()
        quantized = ort_quantize(proto, [_feeds(image) for image in calibration], method)
        quantize_s = time.perf_counter() - started
        started = time.perf_counter()
        logits = ort_logits(quantized, test_images)
        add_row(f"onnxruntime {method}", logits, quantize_s, time.perf_counter() - started)

    return DigitsBenchmark(rows, float_accuracy, training, calibration_samples, len(test_images))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    parser.add_argument(
        "--calibration",
        type=int,
        default=64,
        help="calibration images, the same for every method (default 64)",
    )
    parser.add_argument("--seed", type=int, default=0, help="split, init and shuffle seed")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep aipuc's output folders here (default: a temporary folder)",
    )
    args = parser.parse_args(argv)
    print(machine_info())
    result = run_benchmark(
        epochs=args.epochs,
        calibration_samples=args.calibration,
        seed=args.seed,
        work_dir=args.work_dir,
        progress=print,
    )
    print(
        f"\ndigits: {result.test_samples} test images, {result.calibration_samples} "
        f"calibration images, training {result.training.seconds:.1f} s\n"
    )
    print(result.table())
    verdict = "met" if result.target_met else "NOT met"
    print(
        f"\ntarget (aipuc {DEFAULT_SCHEME} drop <= best onnxruntime drop): {verdict} "
        f"({result.default_scheme_drop:.2f} pp vs {result.best_onnxruntime_drop:.2f} pp)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
