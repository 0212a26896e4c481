"""Executes an instruction stream, record by record, against byte-addressed memories.

Each unit's semantics is written once here, on NumPy arrays read from and written to the
memories at the addresses the record holds. The integer arithmetic is `aipuc.numerics`
(requantization, rounding shifts, float18) and the exact GEMM of `aipuc.runtime.kernels`:
the same functions the integer reference uses, so a correct stream reproduces the integer
reference bit for bit, and a wrong address, size or parameter gives wrong numbers.

Requantization tables (int32, one row per output channel, or per channel and divisor):
    MVM:           [n, 4]            bias, multiplier, shift, out_zp
    DWPU CONV:     [C', 5]           bias, multiplier, shift, out_zp, in_zp
    DWPU AVG:      [taps + 1, C', 5] indexed by the divisor of the output position
    DWPU GLOBAL_AVG: [C', 5]
where C' is the channel count with the PER_CHANNEL flag and 1 without (broadcast).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from aipuc import numerics
from aipuc.hardware import AIPU
from aipuc.runtime import kernels
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.isa import DwpuFlag, DwpuMode, MicroOpcode, MvmFlag, Opcode
from aipuc.runtime.sim.memory import Memories, SimulationError, dense_strides

_INT32 = (-(2**31), 2**31 - 1)
_DECODED_LIMIT = 1 << 16
MVM_TABLE_COLUMNS = 4
DWPU_TABLE_COLUMNS = 5


def _decode_record(data: bytes) -> tuple[Opcode, dict]:
    opcode, record = isa.decode_record(data)
    return opcode, isa.plain_fields(record)


def _decode_dwpu_word(data: bytes) -> dict:
    return isa.plain_fields(np.frombuffer(data, isa.DWPU_OP)[0])


def _decode_micro_ops(data: bytes) -> list[dict]:
    return [isa.plain_fields(micro) for micro in isa.decode_micro_ops(data)]


def _largest_centred(tile: np.ndarray, zero_point) -> int:
    """max |tile - zero_point| (per channel along the last axis), from the tile's extremes."""
    if not tile.size:
        return 0
    axes = None if np.ndim(zero_point) == 0 else tuple(range(tile.ndim - 1))
    low = tile.min(axis=axes).astype(np.int64) - zero_point
    high = tile.max(axis=axes).astype(np.int64) - zero_point
    return int(max(np.abs(low).max(), np.abs(high).max()))


class Registers:
    """The DPU's `AIPU.dpu_registers` vector registers, each holding a whole tile."""

    def __init__(self) -> None:
        self.values: list[np.ndarray | None] = [None] * AIPU.dpu_registers

    def _index(self, number) -> int:
        index = int(number)
        if index >= AIPU.dpu_registers:
            raise SimulationError(f"DPU register r{index} does not exist ({AIPU.dpu_registers})")
        return index

    def __getitem__(self, number) -> np.ndarray:
        value = self.values[self._index(number)]
        if value is None:
            raise SimulationError(f"DPU register r{int(number)} is read before it is written")
        return value

    def get(self, number) -> np.ndarray | None:
        """An operand field that may be unused: None when never written."""
        return self.values[self._index(number)]

    def __setitem__(self, number, value: np.ndarray) -> None:
        self.values[self._index(number)] = value


class Simulator:
    """One device: memories plus the IMC weightsets of each core."""

    def __init__(self, memories: Memories):
        self.memories = memories
        self.weightsets: dict[tuple[int, int], np.ndarray] = {}
        self._decoded: dict[tuple[str, bytes], object] = {}
        """Records, DWPU words and DPU programs decoded from their bytes, by those bytes."""
        self.executed = 0
        self._handlers: dict[Opcode, Callable[[isa.Fields], None]] = {
            Opcode.DMA: self._dma,
            Opcode.FILL: self._fill,
            Opcode.IMC_LOAD: self._imc_load,
            Opcode.MVM: self._mvm,
            Opcode.DWPU: self._dwpu,
            Opcode.DPU: self._dpu,
        }

    def run(self, stream: isa.Stream) -> None:
        """Runs decoded records in order, up to an END (a JUMP needs `run_from`)."""
        for opcode, record in stream.records():
            if opcode == Opcode.END:
                return
            if opcode == Opcode.JUMP:
                raise SimulationError("a JUMP in a stream run without fetching from memory")
            self._execute(opcode, isa.plain_fields(record))

    def _decode(self, kind: str, data: bytes, decode: Callable[[bytes], object]):
        """`decode(data)`, once per distinct bytes: a stream's records, DWPU words and DPU
        programs are fetched from memory every time they run, but decoded once."""
        key = (kind, data)
        value = self._decoded.get(key)
        if value is None:
            if len(self._decoded) >= _DECODED_LIMIT:
                self._decoded.clear()
            value = self._decoded[key] = decode(data)
        return value

    def run_from(self, address: int, limit: int = 1 << 32) -> None:
        """Fetches records from memory at `address` and runs them until an END.

        A tasklist chunk that was never loaded (or loaded wrong) is what the core runs."""
        pc = address
        for _ in range(limit):
            try:
                opcode, record = self._decode(
                    "record", self.memories.dump_bytes(pc, isa.RECORD_BYTES), _decode_record
                )
            except ValueError as error:
                raise SimulationError(
                    f"record at {pc:#x} is not an instruction ({error})"
                ) from None
            if opcode == Opcode.END:
                return
            if opcode == Opcode.JUMP:
                pc = int(record["target"])
                continue
            self._execute(opcode, record)
            pc += isa.RECORD_BYTES
        raise SimulationError(f"no END after {limit} records")

    def _execute(self, opcode: Opcode, record: isa.Fields) -> None:
        try:
            self._handlers[opcode](record)
        except (SimulationError, ValueError, IndexError) as error:
            # ValueError/IndexError: parameters the arithmetic rejects (a requantization
            # shift out of range, a table index past its end), i.e. a bad record.
            raise SimulationError(f"record {self.executed} ({opcode.name}): {error}") from None
        self.executed += 1

    # ----------------------------------------------------------------------- DMA

    def _dma(self, r: isa.Fields) -> None:
        sizes = list(r["sizes"])
        block = self.memories.read(int(r["src"]), sizes, list(r["src_strides"]), np.uint8)
        self.memories.write(int(r["dst"]), sizes, list(r["dst_strides"]), block, np.uint8)

    def _fill(self, r: isa.Fields) -> None:
        value = np.int8(r["value"]).view(np.uint8)
        self.memories.write(
            int(r["dst"]), list(r["sizes"]), list(r["dst_strides"]), value, np.uint8
        )

    # ----------------------------------------------------------------------- MVM

    def _imc_load(self, r: isa.Fields) -> None:
        k, n = int(r["k"]), int(r["n"])
        if not (1 <= k <= AIPU.mvm_k and 1 <= n <= AIPU.mvm_n):
            raise SimulationError(f"IMC weightset of {k}x{n} exceeds {AIPU.mvm_k}x{AIPU.mvm_n}")
        if int(r["weightset"]) >= AIPU.imc_weightsets:
            raise SimulationError(f"weightset {int(r['weightset'])} does not exist")
        weights = self.memories.read(int(r["src"]), [k, n], [int(r["row_stride"]), 1])
        self.weightsets[(int(r["core"]), int(r["weightset"]))] = weights

    def _mvm(self, r: isa.Fields) -> None:
        flags = MvmFlag(int(r["flags"]))
        in_c, n, icr = int(r["in_c"]), int(r["n"]), int(r["icr"])
        if not flags & MvmFlag.SWICR and in_c % AIPU.pword_bytes:
            raise SimulationError(
                f"MVM taps of {in_c} lanes are not whole PWORDs ({AIPU.pword_bytes}) without swICR"
            )
        key = (int(r["core"]), int(r["weightset"]))
        if key not in self.weightsets:
            raise SimulationError(f"MVM uses weightset {key[1]}, never loaded")
        weights = self.weightsets[key].astype(np.int32) - int(r["w_zp"])
        k_start, k_len = int(r["k_start"]), int(r["k_len"])
        if weights.shape != (k_len, n * icr):
            raise SimulationError(
                f"weightset holds {weights.shape[0]}x{weights.shape[1]}, the MVM expects "
                f"{k_len}x{n * icr} (ICR {icr})"
            )
        cols, largest_input = self._im2col(r, in_c, k_start, k_len)
        largest_product = largest_input * int(np.abs(weights).max(initial=0))
        weights = weights.astype(np.float32)  # |w - w_zp| <= 255: exact
        out_h, out_w = (int(v) for v in r["out_hw"])
        table = None
        if flags & MvmFlag.REQUANTIZE:
            table = self.memories.read(
                int(r["rq_addr"]), [n, MVM_TABLE_COLUMNS], [4 * MVM_TABLE_COLUMNS, 4], "<i4"
            ).astype(np.int64)
        acc_strides = [*(int(v) for v in r["acc_strides"]), 4]
        if icr == 1 and not flags & MvmFlag.ACCUMULATE:
            # one GEMM with the bias added as it converts (int32 when the bound allows)
            bias = None if table is None else table[:, 0]
            sums = kernels.exact_bounded_matmul(
                cols.reshape(-1, k_len), weights, largest_product, bias
            ).reshape(out_h, out_w, n)
        else:
            sums = np.empty((out_h, out_w, n), np.int64)
            for replica in range(icr):  # x-position ow uses the weights in columns ow % icr
                columns = weights[:, replica * n : (replica + 1) * n]
                vectors = cols[:, replica::icr]
                flat = vectors.reshape(-1, k_len)  # one GEMM, not one per row
                sums[:, replica::icr] = kernels.exact_bounded_matmul(
                    flat, columns, largest_product
                ).reshape(vectors.shape[0], vectors.shape[1], n)
            if flags & MvmFlag.ACCUMULATE:
                sums += self.memories.read(
                    int(r["acc_addr"]), [out_h, out_w, n], acc_strides, "<i4"
                )
            if table is not None:
                sums += table[:, 0]
        if table is None:
            if sums.size and (sums.min() < _INT32[0] or sums.max() > _INT32[1]):
                raise SimulationError("MVM partial sums overflow int32")
            self.memories.write(int(r["acc_addr"]), [out_h, out_w, n], acc_strides, sums, "<i4")
            return
        codes = numerics.requantize(sums, table[:, 1], table[:, 2], table[:, 3], axis=2)
        row, pixel = (int(v) for v in r["out_strides"])
        self.memories.write(int(r["out_addr"]), [out_h, out_w, n], [row, pixel, 1], codes)

    def _tile(self, r: isa.Fields, lanes: int) -> np.ndarray:
        """The input tile [h, w, lanes] as int64 codes."""
        return self._tile_view(r, lanes).astype(np.int64)

    def _tile_view(self, r: isa.Fields, lanes: int) -> np.ndarray:
        """The input tile [h, w, lanes] of int8 codes, a view of memory where it can be."""
        in_h, in_w = (int(v) for v in r["in_hw"])
        row, pixel = (int(v) for v in r["in_strides"])
        return self.memories.view(int(r["in_addr"]), [in_h, in_w, lanes], [row, pixel, 1])

    def _centred_padded(self, r: isa.Fields, tile: np.ndarray, zero_point, dtype) -> np.ndarray:
        """`tile - zero_point` in `dtype` inside a zero border of the record's pads, in one
        pass (no int64 copy, no np.pad), checked to hold every window of the output."""
        top, left, bottom, right = (int(v) for v in r["pads"])
        in_h, in_w, lanes = tile.shape
        padded = np.zeros((top + in_h + bottom, left + in_w + right, lanes), dtype)
        interior = padded[top : top + in_h, left : left + in_w]
        np.subtract(tile, zero_point, out=interior, dtype=dtype)
        self._check_span(r, padded)
        return padded

    def _windows(self, r: isa.Fields, x: np.ndarray, pad_value: int, extra=(0, 0)) -> np.ndarray:
        """[out_h, out_w, C, kh, kw] windows of x padded with `pad_value` (copy-free view)."""
        return self._window_view(r, self._padded(r, x, pad_value, extra))

    def _window_view(self, r: isa.Fields, padded: np.ndarray) -> np.ndarray:
        (kh, kw), (sh, sw) = (int(v) for v in r["kernel"]), (int(v) for v in r["stride"])
        dh, dw = (int(v) for v in r["dilation"])
        out_h, out_w = (int(v) for v in r["out_hw"])
        span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
        view = sliding_window_view(padded, span, axis=(0, 1))[::sh, ::sw, :, ::dh, ::dw]
        return view[:out_h, :out_w]

    def _padded(self, r: isa.Fields, x: np.ndarray, pad_value: int, extra=(0, 0)) -> np.ndarray:
        """x padded with `pad_value`, checked to hold every window of the output."""
        top, left, bottom, right = (int(v) for v in r["pads"])
        widths = ((top, bottom + extra[0]), (left, right + extra[1]), (0, 0))
        padded = np.pad(x, widths, constant_values=pad_value) if any(map(any, widths)) else x
        self._check_span(r, padded)
        return padded

    def _check_span(self, r: isa.Fields, padded: np.ndarray) -> None:
        (kh, kw), (sh, sw) = (int(v) for v in r["kernel"]), (int(v) for v in r["stride"])
        dh, dw = (int(v) for v in r["dilation"])
        out_h, out_w = (int(v) for v in r["out_hw"])
        if (
            padded.shape[0] < (out_h - 1) * sh + (kh - 1) * dh + 1
            or padded.shape[1] < (out_w - 1) * sw + (kw - 1) * dw + 1
        ):
            raise SimulationError(f"a {out_h}x{out_w} output needs more input than the tile holds")

    def _im2col(self, r: isa.Fields, in_c: int, k_start: int, k_len: int) -> tuple[np.ndarray, int]:
        """Rows k_start..k_start+k_len of every output pixel's input vector (taps major,
        `in_c` centred lanes per tap), as [out_h, out_w, k_len] float32 (exact: |x - zp| <=
        255), and the largest magnitude in the tile."""
        tile = self._tile_view(r, in_c)
        zero_point = int(r["in_zp"])
        windows = self._window_view(r, self._centred_padded(r, tile, zero_point, np.float32))
        kh, kw = windows.shape[-2:]
        if k_start + k_len > kh * kw * in_c:
            raise SimulationError(f"K rows {k_start}..{k_start + k_len} exceed the vector")
        first_tap, last_tap = k_start // in_c, (k_start + k_len - 1) // in_c
        taps = [windows[..., t // kw, t % kw] for t in range(first_tap, last_tap + 1)]
        # [oh, ow, taps * C]; one tap (a 1x1 conv) stays a view, copied once by the GEMM
        cols = taps[0] if len(taps) == 1 else np.concatenate(taps, axis=-1)
        start = k_start - first_tap * in_c
        return cols[..., start : start + k_len], _largest_centred(tile, zero_point)

    # ----------------------------------------------------------------------- DWPU

    def _dwpu_table(self, p: isa.Fields, rows: int, channels: int) -> np.ndarray:
        width = channels if DwpuFlag(int(p["flags"])) & DwpuFlag.PER_CHANNEL else 1
        table = self.memories.read(
            int(p["rq_addr"]),
            [rows, width, DWPU_TABLE_COLUMNS],
            dense_strides([rows, width, DWPU_TABLE_COLUMNS], 4),
            "<i4",
        )
        return table.astype(np.int64)

    def _dwpu(self, r: isa.Fields) -> None:
        word = self.memories.dump_bytes(int(r["program"]), isa.DWPU_OP_BYTES)
        p = self._decode("dwpu", word, _decode_dwpu_word)
        mode = DwpuMode(int(p["mode"]))
        channels = int(r["channels"])
        if mode == DwpuMode.CONV:
            table = self._dwpu_table(p, 1, channels)[0]
            sums = self._depthwise(r, p, channels, table)
            out = numerics.requantize(sums, table[:, 1], table[:, 2], table[:, 3], axis=2)
            row, pixel = (int(v) for v in r["out_strides"])
            self.memories.write(int(r["out_addr"]), list(out.shape), [row, pixel, 1], out)
            return
        x = self._tile(r, channels)
        extra = tuple(int(v) for v in r["extra"])
        if mode in (DwpuMode.MAX, DwpuMode.GLOBAL_MAX):
            if mode == DwpuMode.MAX:
                out = self._windows(r, x, numerics._INT8_MIN, extra).max(axis=(-2, -1))
            else:
                out = x.max(axis=(0, 1), keepdims=True)
        elif mode == DwpuMode.AVG:
            out = self._avg_pool(r, p, x, channels, extra)
        elif mode == DwpuMode.GLOBAL_AVG:
            table = self._dwpu_table(p, 1, channels)[0]
            sums = (x - table[:, 4]).sum(axis=(0, 1), keepdims=True)
            out = numerics.requantize(sums, table[:, 1], table[:, 2], table[:, 3], axis=2)
        else:  # pragma: no cover - DwpuMode is exhaustive
            raise SimulationError(f"unknown DWPU mode {mode}")
        row, pixel = (int(v) for v in r["out_strides"])
        self.memories.write(int(r["out_addr"]), list(out.shape), [row, pixel, 1], out)

    def _depthwise(
        self, r: isa.Fields, p: isa.Fields, channels: int, table: np.ndarray
    ) -> np.ndarray:
        """The DWPU CONV sums [out_h, out_w, C] plus bias, exact: one multiply-add per tap
        in float32 (float64 when a float32 sum could round), over each channel's flattened
        padded plane at unit strides (`kernels`' depthwise taps, channels-last), the bias
        added while converting to integers.

        float64 is exact for every record whose sums requantize accepts (the int32 range):
        a partial sum can pass 2**53 only after 2**15 taps of the largest product, 128 x
        (2**31 + 127) (an int32 zero point), and cancelling them takes as many taps again,
        more than a 255 x 255 kernel has."""
        kh, kw = (int(v) for v in r["kernel"])
        weights = self.memories.view(
            int(p["w_addr"]), [kh, kw, channels], dense_strides([kh, kw, channels])
        )
        tile, zero_point, bias = self._tile_view(r, channels), table[:, 4], table[:, 0]
        largest_product = _largest_centred(tile, zero_point) * kernels.max_magnitude(weights)
        bound = kh * kw * largest_product + kernels.max_magnitude(bias)
        dtype = kernels.elementwise_exact_dtype(largest_product, kh * kw)
        padded = self._centred_padded(r, tile, zero_point, dtype)
        taps = weights.astype(dtype)
        (sh, sw), (dh, dw) = (int(v) for v in r["stride"]), (int(v) for v in r["dilation"])
        out_h, out_w = (int(v) for v in r["out_hw"])
        if sh == sw == 1:
            width = padded.shape[1]
            planes = padded.reshape(-1, padded.shape[2])
            length = (out_h - 1) * width + out_w  # output (h, w) at h * width + w
            out = np.empty((out_h * width, planes.shape[1]), dtype)
            grid, product = out[:length], np.empty((length, planes.shape[1]), dtype)
            reads = [(i * dh * width + j * dw, taps[i, j]) for i in range(kh) for j in range(kw)]
            sources = [(planes[start : start + length], tap) for start, tap in reads]
            result = out.reshape(out_h, width, -1)[:, :out_w]
        else:
            windows = self._window_view(r, padded)
            sources = [(windows[..., i, j], taps[i, j]) for i in range(kh) for j in range(kw)]
            result = grid = np.empty((out_h, out_w, padded.shape[2]), dtype)
            product = np.empty_like(grid)
        for index, source in enumerate(sources):
            if index == 0:
                np.multiply(*source, out=grid)
            else:
                grid += np.multiply(*source, out=product)
        return kernels.exact_sum_as_int(result, bias, bound)

    def _avg_pool(
        self, r: isa.Fields, p: isa.Fields, x: np.ndarray, channels: int, extra
    ) -> np.ndarray:
        kh, kw = (int(v) for v in r["kernel"])
        table = self._dwpu_table(p, kh * kw + 1, channels)
        sums = self._windows(r, x - table[0, :, 4], 0, extra).sum(axis=(-2, -1))
        top, left, bottom, right = (int(v) for v in r["pads"])
        in_h, in_w = x.shape[:2]
        counted = np.zeros(
            (in_h + top + bottom + extra[0], in_w + left + right + extra[1], 1), np.int64
        )
        if DwpuFlag(int(p["flags"])) & DwpuFlag.COUNT_INCLUDE_PAD:
            counted[: top + in_h + bottom, : left + in_w + right] = 1
        else:
            counted[top : top + in_h, left : left + in_w] = 1
        (sh, sw), (dh, dw) = (int(v) for v in r["stride"]), (int(v) for v in r["dilation"])
        span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
        windows = sliding_window_view(counted, span, axis=(0, 1))[::sh, ::sw, :, ::dh, ::dw]
        divisor = windows[: sums.shape[0], : sums.shape[1]].sum(axis=(-2, -1))  # [oh, ow, 1]
        rows = table[divisor[..., 0]]  # [oh, ow, C', 5]
        return numerics.requantize(sums, rows[..., 1], rows[..., 2], rows[..., 3])

    # ----------------------------------------------------------------------- DPU

    def _dpu(self, r: isa.Fields) -> None:
        shape = [int(v) for v in r["shape"]]
        program = self._decode(
            "dpu",
            self.memories.dump_bytes(int(r["program"]), int(r["micro_ops"]) * isa.MICRO_OP_BYTES),
            _decode_micro_ops,
        )
        strides = np.asarray(r["operand_strides"]).reshape(isa.DPU_OPERANDS, isa.DPU_RANK)
        registers = Registers()

        def operand(slot: int) -> tuple[int, list[int], str]:
            size = int(r["operand_bytes"][slot])
            if size not in (1, 4):
                raise SimulationError(f"DPU operand {slot} has elements of {size} bytes")
            return (
                int(r["operand_addr"][slot]),
                [int(s) for s in strides[slot]],
                ("<i1" if size == 1 else "<i4"),
            )

        for micro in program:
            code = MicroOpcode(int(micro["op"]))
            if code == MicroOpcode.STORE:
                address, slot_strides, dtype = operand(int(micro["slot"]))
                self.memories.write(address, shape, slot_strides, registers[micro["a"]], dtype)
                continue
            if code == MicroOpcode.SPILL:
                self._spill(micro, registers[micro["a"]], shape)
                continue
            if code == MicroOpcode.LOAD:
                address, slot_strides, dtype = operand(int(micro["slot"]))
                value = self.memories.read(address, shape, slot_strides, dtype).astype(np.int64)
            elif code == MicroOpcode.RELOAD:
                value = self._reload(micro, shape)
            else:
                value = self._micro_op(code, micro, registers, shape)
            registers[micro["dst"]] = value

    def _spill(self, m: isa.Fields, value: np.ndarray, shape: list[int]) -> None:
        """The whole tile of a register into L1: int32 lanes, or float32 (imm0 = 1)."""
        value = np.broadcast_to(value, shape)
        if int(m["imm0"]):
            dtype = "<f4"
        else:
            dtype = "<i4"
            if value.size and (value.min() < _INT32[0] or value.max() > _INT32[1]):
                raise SimulationError("a spilled integer register exceeds int32")
        self.memories.write(int(m["addr"]), shape, dense_strides(shape, 4), value, dtype)

    def _reload(self, m: isa.Fields, shape: list[int]) -> np.ndarray:
        dtype = "<f4" if int(m["imm0"]) else "<i4"
        value = self.memories.read(int(m["addr"]), shape, dense_strides(shape, 4), dtype)
        return value.astype(np.float32 if int(m["imm0"]) else np.int64)

    def _micro_op(
        self, code: MicroOpcode, m: isa.Fields, regs: Registers, shape: list[int]
    ) -> np.ndarray:
        a = regs.get(m["a"])
        b = regs.get(m["b"])
        imm0, imm1, imm2 = int(m["imm0"]), int(m["imm1"]), int(m["imm2"])
        if code == MicroOpcode.ADDI:
            return a + imm0
        if code == MicroOpcode.SHLI:
            return a << imm0
        if code == MicroOpcode.ADD:
            return a + b
        if code == MicroOpcode.SUB:
            return a - b
        if code == MicroOpcode.MUL:
            return a * b
        if code == MicroOpcode.MAX:
            return np.maximum(a, b)
        if code == MicroOpcode.MIN:
            return np.minimum(a, b)
        if code == MicroOpcode.RESCALE:
            return numerics.requantize(a, imm0, imm1, 0, qmin=_INT32[0], qmax=_INT32[1]).astype(
                np.int64
            )
        if code == MicroOpcode.REQUANT:
            return numerics.requantize(a, imm0, imm1, imm2).astype(np.int64)
        if code == MicroOpcode.REQUANT_TABLE:
            channels = shape[-1]
            table = self.memories.read(int(m["addr"]), [channels, 3], [12, 4], "<i4")
            table = table.astype(np.int64)
            return numerics.requantize(
                a, table[:, 0], table[:, 1], table[:, 2], axis=len(shape) - 1
            ).astype(np.int64)
        if code == MicroOpcode.LUT:
            table = self.memories.read(int(m["addr"]), [AIPU.lut_entries], [1])
            return numerics.apply_lut(a, table).astype(np.int64)
        if code == MicroOpcode.CLAMP:
            return np.clip(a, imm0, imm1)
        if code == MicroOpcode.SELECT:
            return np.where(a >= 0, b, regs[m["c"]])
        if code == MicroOpcode.ITOF:
            return numerics.to_float18(a)
        if code == MicroOpcode.FADD:
            return numerics.f18_add(a, b)
        if code == MicroOpcode.FMUL:
            return numerics.f18_mul(a, b)
        if code == MicroOpcode.FNEG:
            return -a
        if code == MicroOpcode.FRECIP:
            return numerics.f18_reciprocal(a)
        if code == MicroOpcode.FCONST:
            value = np.array([imm1], np.int32).view(np.float32)[0]
            return np.full(shape, numerics.to_float18(value), np.float32)
        if code == MicroOpcode.RMAX:
            return np.broadcast_to(a.max(axis=-1, keepdims=True), shape)
        if code == MicroOpcode.RSUM:
            return np.broadcast_to(numerics.f18_sum(a, axis=-1)[..., None], shape)
        if code == MicroOpcode.EXPLUT:
            table = self.memories.read(int(m["addr"]), [AIPU.lut_entries], [4], "<f4")
            inside = (a >= 0) & (a < AIPU.lut_entries)
            index = np.where(inside, a, 0).astype(np.int64)
            return np.where(inside, table[index], np.float32(0))
        if code == MicroOpcode.FTOI:
            return numerics.f18_to_int8(a, imm2).astype(np.int64)
        if code == MicroOpcode.FRSQRT:
            return numerics.f18_rsqrt(a)
        if code == MicroOpcode.FVEC:
            vector = self.memories.read(int(m["addr"]), [shape[-1]], [4], "<f4")
            return np.broadcast_to(numerics.to_float18(vector), shape)
        raise SimulationError(f"unknown DPU micro-op {code}")
