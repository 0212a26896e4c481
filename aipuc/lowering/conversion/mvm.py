"""Convolutions and dense layers onto the MVM: weights packed for the IMC, ICR and swICR.

    %y = axq.conv2d %x, %w, %b {strides = [1, 1], pads = [1, 1, 1, 1], ...}
        : (tensor<1x64x56x56x!axq.q<i8, 0.02:-3>>, ...) -> tensor<1x64x56x56x!axq.q<...>>
becomes
    %wk = aipu.const {value = dense<...> : tensor<576x64xi8>} : tensor<576x64xi8>
    %t = aipu.const {value = dense<...> : tensor<64x4xi32>} : tensor<64x4xi32>
    %yd = aipu.conv %xd, %wk, %t {in_c = 64, in_zp = -3, kernel = [3, 3], pads = [1, 1, 1, 1]}
        : (tensor<1x56x56x64xi8>, ...) -> tensor<1x56x56x64xi8>

The K rows of the weight matrix follow the MVM's input vector: kernel taps in row-major
order, each contributing `in_c` lanes of its input pixel. Without swICR a tap is whole
PWORDs (channels padded to 64, the padding lanes meeting zero weights); with swICR a first
layer's few channels are packed densely (3 channels x 9 taps = 27 rows). ICR puts `icr`
copies of a narrow layer's weights side by side in the 64 columns so the MVM computes
`icr` x-positions per cycle.
"""

from __future__ import annotations

import math

import numpy as np
from xdsl.dialects.builtin import TensorType, i8
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import Rewriter

from aipuc.dialects import aipu, axq
from aipuc.dialects.axq import shape_of
from aipuc.dialects.tensors import numpy_from_dense
from aipuc.errors import CompilationError
from aipuc.hardware import AIPU
from aipuc.lowering import layout
from aipuc.lowering.conversion.common import (
    Conversion,
    describe,
    fixed_point,
    int_table,
    logger,
    qtype,
    scales,
    zero_points,
)
from aipuc.runtime.sim import isa

PWORD = AIPU.pword_bytes


def _pword_ceil(channels: int) -> int:
    return -(-channels // PWORD) * PWORD


def weight_rows(conv: Conversion) -> int:
    """Rows of one IMC weightset the utilization limit leaves active (whole PWORDs)."""
    limit = conv.options.mvm_utilization_limit
    return max(PWORD, int(AIPU.mvm_k * limit) // PWORD * PWORD)


def _padded_by_the_host(
    conv: Conversion, at: Operation, x: SSAValue, padded: TensorType
) -> SSAValue | None:
    """A host tensor that only this layer reads enters already padded when the host handles
    the IO (`remove_io_padding_and_layout_transform`): no copy on the device.

        %x = aipu.to_device %in {perm = [0, 2, 3, 1]} : ...x3x... -> tensor<1x8x8x3xi8>
    becomes
        %x = aipu.to_device %in {padded, perm = [0, 2, 3, 1]} : ... -> tensor<1x8x8x64xi8>
    """
    enter = x.owner
    if not (
        conv.host_io
        and isinstance(enter, aipu.ToDeviceOp)
        and {use.operation for use in enter.input.uses} == {enter, at}
        and not x.uses
    ):
        return None
    wider = aipu.ToDeviceOp(enter.input, aipu._ints(enter.perm), padded, padded=True)
    Rewriter.replace_op(enter, wider)
    conv.entered[enter.input] = wider.result
    return wider.result


def _padded_by_dma(
    conv: Conversion,
    at: Operation,
    x: SSAValue,
    padded: TensorType,
    in_zp: int,
    rewriter: PatternRewriter,
) -> SSAValue:
    """A DMA move pads the channels of `x` with the zero point."""
    n, h, w, channels = x.type.get_shape()  # type: ignore[attr-defined]
    copies = layout.embed_copies(
        (n, h, w, channels),
        layout.identity(4),
        tuple(padded.get_shape()),
        layout.identity(4),
        (0, 0, 0, 0),
    )
    return conv.move([x], padded, [(0, c) for c in copies], rewriter, at, fill=in_zp)


def _uses_swicr(
    conv: Conversion, channels: int, taps: int, where: str, first_layer: bool = True
) -> bool:
    """swICR packs a first layer's few input channels densely into the K vector (a layer
    whose input comes from the host: the hardware model's swICR is for model inputs such as
    RGB images; inner layers read whole PWORDs, see apply-pword-padding)."""
    if channels % PWORD == 0 or not conv.options.enable_swicr or not first_layer:
        return False
    if taps * channels > weight_rows(conv):
        return False
    if conv.options.mvm_utilization_limit < 1.0:
        logger.warning(
            f"swICR disabled for {where}: mvm_utilization_limit "
            f"{conv.options.mvm_utilization_limit} < 1 leaves no room for dense packing"
        )
        return False
    return True


def _icr_factor(
    conv: Conversion, out_channels: int, out_width: int, k_chunks: int, where: str
) -> int:
    """How many copies of the weights share the MVM columns (In-Core Replication).

    Only layers with room for a second copy (at most 32 output channels) and a second
    x-position take ICR; `icrx_force` sets the factor of those layers, so a forced factor
    leaves a wide layer or a dense layer's single column alone instead of failing.
    """
    options = conv.options
    if not options.enable_icr:
        return 1
    room = AIPU.mvm_n // out_channels if out_channels <= AIPU.mvm_n else 1
    if room < 2 or out_width < 2:  # no spare columns or no second x-position: no ICR
        return 1
    if options.icrx_force != -1:
        if options.icrx_force > room or options.icrx_force > out_width:
            raise CompilationError(
                f"icrx_force={options.icrx_force} does not fit {where}: {out_channels} output "
                f"channels x {options.icrx_force} copies exceed the {AIPU.mvm_n} MVM columns "
                f"or its output width {out_width}; use a factor <= {min(room, out_width)}"
            )
        return options.icrx_force
    if k_chunks > options.icrx_parallel_block_threshold:
        return 1
    return max(1, min(options.icrx_max_factor, room, out_width))


def conv_layer(
    conv: Conversion,
    rewriter: PatternRewriter,
    at: axq.Conv2dOp | axq.DenseOp,
    x: object,
    weights: np.ndarray,
    bias: np.ndarray,
    requant_real: np.ndarray,
    out_zero_points: np.ndarray,
    result_shape: tuple[int, ...],
    *,
    in_zp: int,
    kernel=(1, 1),
    stride=(1, 1),
    dilation=(1, 1),
    pads=(0, 0, 0, 0),
):
    """An MVM layer on device tensor `x` [N, H, W, C] with dense OIHW int8 `weights`."""
    out_channels, channels, kh, kw = weights.shape
    where = describe(at)
    first_layer = not isinstance(at.input.owner, aipu.FromDeviceOp)
    swicr = _uses_swicr(conv, channels, kh * kw, where, first_layer)
    in_c = channels if swicr else _pword_ceil(channels)
    if in_c != channels:  # whole PWORDs per tap: pad the channels with the zero point
        n, h, w, _ = x.type.get_shape()  # type: ignore[attr-defined]
        padded = TensorType(i8, [n, h, w, in_c])
        x = _padded_by_the_host(conv, at, x, padded) or _padded_by_dma(
            conv, at, x, padded, in_zp, rewriter
        )
    rows = weight_rows(conv)
    k_chunks = -(-(kh * kw * in_c) // rows)
    icr = _icr_factor(conv, out_channels, result_shape[2], k_chunks, where)
    matrix = np.zeros((kh, kw, in_c, out_channels), np.int8)
    matrix[:, :, :channels, :] = weights.transpose(2, 3, 1, 0)
    matrix = np.tile(matrix.reshape(kh * kw * in_c, out_channels), (1, icr))
    multiplier, shift = fixed_point(requant_real)
    table = np.stack([bias, multiplier, shift, out_zero_points], axis=1)
    layer = aipu.ConvLayerOp(
        x,  # type: ignore[arg-type]
        conv.constant(matrix, rewriter),
        conv.constant(int_table(table), rewriter),
        TensorType(i8, result_shape),
        in_c=in_c,
        channels=None if channels == in_c else channels,
        k_chunk=rows,
        icr=icr,
        swicr=swicr,
        in_zp=in_zp,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        pads=pads,
    )
    return conv.emit(layer, rewriter, at).results[0]


def _block_diagonal(weights: np.ndarray, group: int) -> np.ndarray:
    """A grouped convolution's weights as one dense convolution (zeros across groups)."""
    out_channels, group_in, kh, kw = weights.shape
    dense = np.zeros((out_channels, group_in * group, kh, kw), weights.dtype)
    per_group = out_channels // group
    for g in range(group):
        rows = slice(g * per_group, (g + 1) * per_group)
        dense[rows, g * group_in : (g + 1) * group_in] = weights[rows]
    return dense


def accumulator_rescale(op, out_channels: int) -> np.ndarray:
    """s_bias / s_out per output channel (the integer reference's `_accumulator_rescale`)."""
    return scales(qtype(op.bias), out_channels) / scales(qtype(op.result), out_channels)


def is_depthwise(op: axq.Conv2dOp) -> bool:
    out_channels, group_in = shape_of(op.weight)[:2]
    group = op.group.value.data
    return group > 1 and group_in == 1 and out_channels == group


class ConvToMvm(RewritePattern):
    """axq.conv2d (dense or grouped, not depthwise) -> aipu.conv."""

    def __init__(self, conv: Conversion):
        self.conv = conv

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.Conv2dOp, rewriter: PatternRewriter) -> None:
        if is_depthwise(op):
            return
        conv = self.conv
        x_type = qtype(op.input)
        if x_type.is_per_axis:
            raise CompilationError(f"{describe(op)}: the MVM needs a per-tensor input")
        weights = numpy_from_dense(op.weight.owner.value)  # type: ignore[union-attr]
        group = op.group.value.data
        if group > 1:
            weights = _block_diagonal(weights, group)
        out_channels = weights.shape[0]
        x = conv.relayout(op.input, layout.NHWC, rewriter, op)
        out_shape = layout.physical_shape(shape_of(op.result), layout.NHWC)
        pads = op.pads.get_values()
        result = conv_layer(
            conv,
            rewriter,
            op,
            x,
            weights,
            numpy_from_dense(op.bias.owner.value).astype(np.int64),  # type: ignore[union-attr]
            accumulator_rescale(op, out_channels),
            zero_points(qtype(op.result), out_channels),
            out_shape,
            in_zp=x_type.zero_point,
            kernel=shape_of(op.weight)[2:],
            stride=op.strides.get_values(),
            dilation=op.dilations.get_values(),
            pads=(pads[0], pads[1], pads[2], pads[3]),
        )
        conv.layouts[op.result] = layout.NHWC
        conv.finish(op, [result], rewriter)


class DenseToMvm(RewritePattern):
    """axq.dense on [..., K] -> aipu.conv 1x1 on the rows seen as [1, 1, M, K]."""

    def __init__(self, conv: Conversion):
        self.conv = conv

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.DenseOp, rewriter: PatternRewriter) -> None:
        conv = self.conv
        x_type = qtype(op.input)
        in_shape, out_shape = shape_of(op.input), shape_of(op.result)
        rows = math.prod(in_shape[:-1])
        x = conv.relayout(op.input, layout.identity(len(in_shape)), rewriter, op)
        flat = conv.emit(
            aipu.ReinterpretOp(x, TensorType(i8, [1, 1, rows, in_shape[-1]])), rewriter, op
        ).results[0]
        weights = numpy_from_dense(op.weight.owner.value)  # type: ignore[union-attr]
        out_channels = weights.shape[0]
        result = conv_layer(
            conv,
            rewriter,
            op,
            flat,
            weights[:, :, None, None],
            numpy_from_dense(op.bias.owner.value).astype(np.int64),  # type: ignore[union-attr]
            accumulator_rescale(op, out_channels),
            zero_points(qtype(op.result), out_channels),
            (1, 1, rows, out_channels),
            in_zp=x_type.zero_point,
        )
        shaped = conv.emit(
            aipu.ReinterpretOp(result, TensorType(i8, out_shape)), rewriter, op
        ).results[0]
        conv.layouts[op.result] = layout.identity(len(out_shape))
        conv.finish(op, [shaped], rewriter)


class MatMulToMvm(RewritePattern):
    """axq.matmul of two computed tensors (attention) -> aipu.conv with run-time weights.

        %s = axq.matmul %q, %kt : (tensor<1x4x16x64x...>, tensor<1x4x64x16x...>) -> ...
    becomes, per image of the batch dimensions, an MVM whose IMC weightset is loaded with
    that image's right operand at run time (centred by its zero point `w_zp`):
        %a = aipu.reinterpret %qd : tensor<1x4x16x64xi8> -> tensor<4x1x16x64xi8>
        %b = aipu.reinterpret %ktd : tensor<1x4x64x16xi8> -> tensor<4x64x16xi8>
        %sd = aipu.conv %a, %b, %t {in_c = 64, in_zp = .., w_zp = ..} -> tensor<4x1x16x16xi8>
    """

    def __init__(self, conv: Conversion):
        self.conv = conv

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.MatMulOp, rewriter: PatternRewriter) -> None:
        conv = self.conv
        a_type, b_type, out_type = qtype(op.lhs), qtype(op.rhs), qtype(op.result)
        a_shape, b_shape = shape_of(op.lhs), shape_of(op.rhs)
        if (
            len(a_shape) < 2
            or a_shape[:-2] != b_shape[:-2]
            or a_type.is_per_axis
            or (b_type.is_per_axis)
        ):
            raise CompilationError(
                f"{describe(op)}: the MVM multiplies per-tensor operands with equal batch "
                f"dimensions, got {list(a_shape)} x {list(b_shape)}"
            )
        images = math.prod(a_shape[:-2])
        rows, depth = a_shape[-2:]
        columns = b_shape[-1]
        swicr = _uses_swicr(conv, depth, 1, describe(op))
        in_c = depth if swicr else _pword_ceil(depth)
        x_axis, w_axis, y_axis = (
            axis if self._token_major(value) else 0
            for value, axis in ((op.lhs, 2), (op.rhs, 1), (op.result, 2))
        )
        # with a token-major input or output, each image is a column of `rows` pixels
        # (the views of a token-major head are), else a row
        image = [rows, 1] if x_axis or y_axis else [1, rows]
        if x_axis:
            a, a_as = conv.device(op.lhs, rewriter), [1, rows, images, depth]
        else:
            a = conv.relayout(op.lhs, layout.identity(len(a_shape)), rewriter, op)
            a_as = [images, *image, depth]
        if w_axis:
            b, b_as = conv.device(op.rhs, rewriter), [depth, images, columns]
        else:
            b = conv.relayout(op.rhs, layout.identity(len(b_shape)), rewriter, op)
            b_as = [images, depth, columns]
        a = self._reshaped(a, a_as, in_c, a_type.zero_point, 3, rewriter, op)
        b = self._reshaped(b, b_as, in_c, b_type.zero_point, 1 - w_axis, rewriter, op)
        out_real = a_type.scale * b_type.scale / scales(out_type, columns)
        multiplier, shift = fixed_point(out_real)
        table = np.stack(
            [np.zeros(columns, np.int64), multiplier, shift, zero_points(out_type, columns)], axis=1
        )
        layer = aipu.ConvLayerOp(
            a,
            b,
            conv.constant(int_table(table), rewriter),
            TensorType(i8, [1, rows, images, columns] if y_axis else [images, *image, columns]),
            in_c=in_c,
            channels=None if depth == in_c else depth,
            k_chunk=weight_rows(conv),
            swicr=swicr,
            in_zp=a_type.zero_point,
            w_zp=b_type.zero_point,
            image_axes=(x_axis, w_axis, y_axis),
        )
        result = conv.emit(layer, rewriter, op).results[0]
        if result.type != conv.device_type(op.result):
            reinterpret = aipu.ReinterpretOp(result, conv.device_type(op.result))
            result = conv.emit(reinterpret, rewriter, op).results[0]
        conv.finish(op, [result], rewriter)

    def _token_major(self, value: SSAValue) -> bool:
        """Attention heads that assign_layouts left token-major, [.., T, H, D]."""
        rank = len(shape_of(value))
        return rank >= 3 and self.conv.perm(value) == layout.token_major(rank)

    def _reshaped(
        self, value, shape: list[int], lanes: int, zero_point: int, axis: int, rewriter, at
    ) -> SSAValue:
        """`value` seen as `shape`, with `axis` (the K axis) padded to `lanes` by its zero
        point so the padding contributes nothing to the centred products."""
        flat = value
        if list(value.type.get_shape()) != shape:  # type: ignore[attr-defined]
            flat = self.conv.emit(
                aipu.ReinterpretOp(value, TensorType(i8, shape)), rewriter, at
            ).results[0]
        if shape[axis] == lanes:
            return flat
        padded = list(shape)
        padded[axis] = lanes
        copies = layout.embed_copies(
            shape,
            layout.identity(len(shape)),
            padded,
            layout.identity(len(shape)),
            [0] * len(shape),
        )
        return self.conv.move(
            [flat], TensorType(i8, padded), [(0, c) for c in copies], rewriter, at, fill=zero_point
        )


def transposed_as_conv(weights: np.ndarray, group: int) -> np.ndarray:
    """ConvTranspose weights [C_in, C_out / g, kh, kw] as the equivalent convolution's OIHW
    weights: channels swapped per group and the kernel flipped."""
    in_channels, group_out, kh, kw = weights.shape
    group_in = in_channels // group
    dense = np.zeros((group_out * group, in_channels, kh, kw), weights.dtype)
    for g in range(group):
        block = weights[g * group_in : (g + 1) * group_in, :, ::-1, ::-1]
        dense[g * group_out : (g + 1) * group_out, g * group_in : (g + 1) * group_in] = (
            block.transpose(1, 0, 2, 3)
        )
    return dense


class ConvTransposeToMvm(RewritePattern):
    """axq.conv_transpose2d -> zero insertion by the DMA, then a stride-1 convolution.

    A transposed convolution with stride s equals a convolution of the input spread out
    with s - 1 zero-point rows and columns between its pixels, padded by
    dilation * (k - 1) - pad (plus output_padding at the end), with the kernel flipped and
    its input/output channels swapped: the same products, so the same int32 sums.
    """

    def __init__(self, conv: Conversion):
        self.conv = conv

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: axq.ConvTranspose2dOp, rewriter: PatternRewriter) -> None:
        conv = self.conv
        x_type = qtype(op.input)
        weights = numpy_from_dense(op.weight.owner.value)  # type: ignore[union-attr]
        kernel = weights.shape[2:]
        strides, dilations = op.strides.get_values(), op.dilations.get_values()
        pads, extra = op.pads.get_values(), op.output_padding.get_values()
        conv_pads = [dilations[a % 2] * (kernel[a % 2] - 1) - pads[a] for a in range(4)]
        conv_pads[2] += extra[0]
        conv_pads[3] += extra[1]
        if min(conv_pads) < 0:
            raise CompilationError(
                f"{describe(op)}: pads {list(pads)} exceed dilation x (kernel - 1); the "
                "accelerator cannot crop a transposed convolution"
            )
        x = conv.relayout(op.input, layout.NHWC, rewriter, op)
        n, h, w, channels = x.type.get_shape()  # type: ignore[attr-defined]
        if tuple(strides) != (1, 1):
            spread = (n, (h - 1) * strides[0] + 1, (w - 1) * strides[1] + 1, channels)
            dense = layout.logical_strides(spread, layout.identity(4))
            copies = layout.strided(
                0,
                0,
                (n, h, w, channels),
                layout.logical_strides((n, h, w, channels), layout.identity(4)),
                (dense[0], dense[1] * strides[0], dense[2] * strides[1], 1),
            )
            x = conv.move(
                [x],
                TensorType(i8, spread),
                [(0, c) for c in copies],
                rewriter,
                op,
                fill=x_type.zero_point,
            )
        equivalent = transposed_as_conv(weights, op.group.value.data)
        out_channels = equivalent.shape[0]
        result = conv_layer(
            conv,
            rewriter,
            op,
            x,
            equivalent,
            numpy_from_dense(op.bias.owner.value).astype(np.int64),  # type: ignore[union-attr]
            accumulator_rescale(op, out_channels),
            zero_points(qtype(op.result), out_channels),
            layout.physical_shape(shape_of(op.result), layout.NHWC),
            in_zp=x_type.zero_point,
            kernel=kernel,
            dilation=dilations,
            pads=conv_pads,
        )
        conv.layouts[op.result] = layout.NHWC
        conv.finish(op, [result], rewriter)


def swap_on_mvm(
    conv: Conversion,
    source: SSAValue,
    copy: layout.Copy,
    result_type: TensorType,
    rewriter: PatternRewriter,
    at: Operation,
) -> SSAValue | None:
    """A byte-granular swap of the two inner axes, [N, B, A] -> [N, A, B], on the MVM
    instead of the DMA, or None when `copy` is not one.

    Every byte of such a swap is a DMA run of its own (a burst each, see the cycle model);
    the MVM gathers a kernel window into its input vector instead. The A columns are split
    into R rows of A / R (R the largest divisor of A up to the MVM record's dilation, whole
    ICR groups per row), so that [N, B, A] is the NHWC image [N, B * R, A / R, 1]: B blocks
    of R rows. A B x 1 kernel with dilation R and swICR packs column a (B taps of one lane,
    one per block) into one K vector, and identity weights give output pixel a's B
    channels, [N, R, A / R, B]: the result's bytes. Zero points 0 and a requantization by
    exactly 1 keep every code (int8 in, int8 out). The R output rows are what aipu-tile
    splits when the swap does not fit L1 (mem-bufferize stages only the rows of each block
    a tile reads); an A above 255 that splits into too few rows (a prime, say) is first
    padded by the DMA to columns that split well, and the result cropped back
    (`_swap_columns`). This packs taps of single lanes as swICR does for a first layer's
    few channels, so the fields that turn swICR off (`enable_swicr`,
    `mvm_utilization_limit`) keep it on the DMA.

        %y = aipu.move(%x) {copies = array<i64: 0, 2, 0, 0, 128, 64, 1, 128, 64, 1>}
            : tensor<1x64x128xi8> -> tensor<1x128x64xi8>
    becomes
        %img = aipu.reinterpret %x : tensor<1x64x128xi8> -> tensor<1x8192x1x1xi8>
        %t = aipu.conv %img, %eye, %table {in_c = 1, swicr, kernel = [64, 1],
                                           dilation = [128, 1]} -> tensor<1x128x1x64xi8>
        %y = aipu.reinterpret %t : tensor<1x128x1x64xi8> -> tensor<1x128x64xi8>
    """
    sizes, src, dst = copy.sizes, copy.src_strides, copy.dst_strides
    if (copy.src_offset, copy.dst_offset) != (0, 0) or len(sizes) not in (2, 3):
        return None
    a, b = sizes[-2:]
    images = sizes[0] if len(sizes) == 3 else 1
    if src[-2:] != (1, a) or dst[-2:] != (b, 1):
        return None
    if len(sizes) == 3 and (src[0], dst[0]) != (a * b, a * b):
        return None
    total = math.prod(result_type.get_shape())
    if total != images * a * b or math.prod(source.type.get_shape()) != total:  # type: ignore[attr-defined]
        return None
    options = conv.options
    if not options.enable_swicr or options.mvm_utilization_limit < 1.0:
        return None  # the same fields that turn off a first layer's dense packing
    if b > min(weight_rows(conv), _KERNEL_LIMIT):
        return None
    icr = _icr_factor(conv, b, a, 1, describe(at))
    columns = _swap_columns(a, icr)
    cycles = _swap_cycles_on_mvm(images, columns, b, icr)
    if columns > a:  # the pad and the crop: a run per row of B, then one per image
        moved = 2 * images * b * columns // AIPU.core_dma_ddr_l1_bytes_per_cycle
        cycles += 2 * AIPU.dma_setup_cycles + images * (b + 1) * AIPU.dma_burst_min_cycles + moved
    if cycles >= images * a * b * AIPU.dma_burst_min_cycles:
        return None  # a small swap: its bursts cost less than the weights and the task
    if columns > a:
        widen = layout.strided(0, 0, (images, b, a), (a * b, a, 1), (columns * b, columns, 1))
        widened = TensorType(i8, [images, b, columns])
        source = conv.move([source], widened, [(0, c) for c in widen], rewriter, at)
    rows = _swap_rows(columns, icr)
    image_type = TensorType(i8, [images, b * rows, columns // rows, 1])
    image = conv.emit(aipu.ReinterpretOp(source, image_type), rewriter, at)
    multiplier, shift = fixed_point(np.ones(b))
    table = np.stack([np.zeros(b, np.int64), multiplier, shift, np.zeros(b, np.int64)], axis=1)
    layer = aipu.ConvLayerOp(
        image.results[0],
        conv.constant(np.tile(np.eye(b, dtype=np.int8), (1, icr)), rewriter),
        conv.constant(int_table(table), rewriter),
        TensorType(i8, [images, rows, columns // rows, b]),
        in_c=1,
        k_chunk=weight_rows(conv),
        icr=icr,
        swicr=True,
        kernel=(b, 1),
        dilation=(rows, 1),
    )
    swapped = conv.emit(layer, rewriter, at).results[0]
    if columns > a:  # each image's first A pixels of B channels
        crop = layout.strided(0, 0, (images, a * b), (columns * b, 1), (a * b, 1))
        return conv.move([swapped], result_type, [(0, c) for c in crop], rewriter, at)
    return conv.emit(aipu.ReinterpretOp(swapped, result_type), rewriter, at).results[0]


def _swap_cycles_on_mvm(images: int, a: int, b: int, icr: int) -> int:
    """About what the swap costs on the MVM: the weights' and the table's DMA setups, the
    weightset load, one task per image and an input vector per `icr` output pixels."""
    load = -(-b * b * icr * AIPU.imc_weightset_load_cycles // AIPU.imc_weightset_bytes)
    vectors = images * (AIPU.unit_task_cycles + -(-a // icr))
    return 2 * AIPU.dma_setup_cycles + load + vectors


def _swap_rows(a: int, icr: int) -> int:
    """The most rows a swap's A columns split into: a divisor of A, at most the largest
    dilation an MVM record holds, each row whole groups of `icr` x-positions (so the MVM
    spends A / icr vectors however they split); 1 when A has no such divisor."""
    limit = min(a, _DILATION_LIMIT)
    return max(r for r in range(1, limit + 1) if a % r == 0 and (r == 1 or a // r % icr == 0))


def _swap_columns(a: int, icr: int) -> int:
    """A, or the fewest more columns (padding the DMA adds and crops) that split into
    enough rows for aipu-tile to split a swap that does not fit L1: half the most a
    record's dilation holds, or a row per ICR group of A if that is fewer. Only an A above
    255 (which cannot be one row per column) that splits into fewer (a prime, say) grows;
    `target` x icr columns always split into `target` rows."""
    if a <= _DILATION_LIMIT:
        return a
    target = min(_DILATION_LIMIT // 2, a // icr)
    columns = a
    while _swap_rows(columns, icr) < target:
        columns += 1
    return columns


_KERNEL_LIMIT = int(np.iinfo(isa.DTYPES[isa.Opcode.MVM]["kernel"].base).max)
"""The largest kernel height an MVM record holds."""
_DILATION_LIMIT = int(np.iinfo(isa.DTYPES[isa.Opcode.MVM]["dilation"].base).max)
"""The largest dilation an MVM record holds."""
