// RUN: xdsl-opt %s -p convert-axq-to-aipu --split-input-file | filecheck %s
// RUN: xdsl-opt %s -p 'convert-axq-to-aipu{enable_icr=false enable_swicr=false}' --split-input-file | filecheck %s --check-prefix=PLAIN
// RUN: xdsl-opt %s -p 'convert-axq-to-aipu{enable_icr=false enable_swicr=false remove_io_padding_and_layout_transform=false}' --split-input-file | filecheck %s --check-prefix=PLAINDEVICE
// RUN: xdsl-opt %s -p 'convert-axq-to-aipu{mvm_utilization_limit=0.5}' --split-input-file 2>/dev/null | filecheck %s --check-prefix=LIMIT
// RUN: xdsl-opt %s -p 'convert-axq-to-aipu{mvm_utilization_limit=0.5}' --split-input-file 2>&1 >/dev/null | filecheck %s --check-prefix=WARN
// RUN: xdsl-opt %s -p 'convert-axq-to-aipu{icrx_force=2}' --split-input-file | filecheck %s --check-prefix=FORCE
// RUN: xdsl-opt %s -p 'convert-axq-to-aipu{icrx_max_factor=3}' --split-input-file | filecheck %s --check-prefix=MAX
// RUN: xdsl-opt %s -p 'convert-axq-to-aipu{icrx_parallel_block_threshold=0}' --split-input-file | filecheck %s --check-prefix=THRESHOLD
// RUN: xdsl-opt %s -p 'convert-axq-to-aipu{remove_io_padding_and_layout_transform=false}' --split-input-file | filecheck %s --check-prefix=DEVICEIO
// RUN: not xdsl-opt %s -p 'convert-axq-to-aipu{icrx_force=5}' --split-input-file 2>&1 | filecheck %s --check-prefix=WIDE

// Unit mapping, each expectation worked by hand. Scales are powers of two so the fixed-point
// parameters are exact: a real multiplier r is stored as m * 2**-shift, m in [2**30, 2**31),
// e.g. 0.5 -> (1073741824, 31), 1 -> (1073741824, 30), 2 -> (1073741824, 29).

// A 1x1 convolution (2 -> 3 channels, output width 4) onto the MVM. Input scale 0.5, weights
// 0.25, bias 0.125 = 0.5 * 0.25, output 0.25: the accumulator rescale is 0.125 / 0.25 = 0.5.
builtin.module {
  func.func @main(%x: tensor<1x2x4x4x!axq.q<i8, 0.5:3>> {axq.name = "input"}) -> (tensor<1x3x4x4x!axq.q<i8, 0.25:-1>> {axq.name = "output"}) {
    %w = axq.constant {value = dense<[[[[1]], [[2]]], [[[3]], [[-4]]], [[[5]], [[6]]]]> : tensor<3x2x1x1xi8>} : tensor<3x2x1x1x!axq.q<i8, axis 0, [0.25:0, 0.25:0, 0.25:0]>>
    %b = axq.constant {value = dense<[10, -20, 30]> : tensor<3xi32>} : tensor<3x!axq.q<i32, axis 0, [0.125:0, 0.125:0, 0.125:0]>>
    %y = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4x!axq.q<i8, 0.5:3>>, tensor<3x2x1x1x!axq.q<i8, axis 0, [0.25:0, 0.25:0, 0.25:0]>>, tensor<3x!axq.q<i32, axis 0, [0.125:0, 0.125:0, 0.125:0]>>) -> tensor<1x3x4x4x!axq.q<i8, 0.25:-1>>
    func.return %y : tensor<1x3x4x4x!axq.q<i8, 0.25:-1>>
  }
}

// The input enters in NHWC. swICR packs the 2 channels densely (in_c = 2, K = 2 rows); ICR
// repeats the 3 output columns min(icrx_max_factor 8, 64 // 3, width 4) = 4 times: the weight
// matrix is [K, N * icr] = [2, 12], row c holding w[:, c]. Table rows: bias, m, shift, out_zp.
// CHECK:      %0 = aipu.to_device %x {perm = array<i64: 0, 2, 3, 1>} : tensor<1x2x4x4x!axq.q<i8, 0.5:3>> -> tensor<1x4x4x2xi8>
// CHECK-NEXT: %1 = aipu.const {value = dense<[[1, 3, 5, 1, 3, 5, 1, 3, 5, 1, 3, 5], [2, -4, 6, 2, -4, 6, 2, -4, 6, 2, -4, 6]]> : tensor<2x12xi8>} : tensor<2x12xi8>
// CHECK-NEXT: %2 = aipu.const {value = dense<[[10, 1073741824, 31, -1], [-20, 1073741824, 31, -1], [30, 1073741824, 31, -1]]> : tensor<3x4xi32>} : tensor<3x4xi32>
// CHECK-NEXT: %3 = aipu.conv %0, %1, %2 {in_c = 2 : i64, icr = 4 : i64, swicr = true, in_zp = 3 : i64} : (tensor<1x4x4x2xi8>, tensor<2x12xi8>, tensor<3x4xi32>) -> tensor<1x4x4x3xi8>
// CHECK-NEXT: %y = aipu.from_device %3 {perm = array<i64: 0, 2, 3, 1>} : tensor<1x4x4x3xi8> -> tensor<1x3x4x4x!axq.q<i8, 0.25:-1>>
// CHECK-NEXT: func.return %y

// Without swICR each tap is a whole PWORD: the 16 pixels' 2 channels are padded to 64 lanes
// with the input zero point 3. The host does it (remove_io_padding_and_layout_transform: the
// input enters `padded`); with the field off a DMA move does it on the device. The matrix is
// [64, 3] (rows 2..63 zero); no ICR. The layer records `channels = 2` (lanes holding data),
// so useful MACs leave out the padding.
// PLAIN:      %0 = aipu.to_device %x {perm = array<i64: 0, 2, 3, 1>, padded} : tensor<1x2x4x4x!axq.q<i8, 0.5:3>> -> tensor<1x4x4x64xi8>
// PLAIN-NEXT: %1 = aipu.const {value = dense<"0x01030502FC06{{(00)+}}"> : tensor<64x3xi8>} : tensor<64x3xi8>
// PLAIN-NEXT: %2 = aipu.const
// PLAIN-NEXT: %3 = aipu.conv %0, %1, %2 {in_c = 64 : i64, channels = 2 : i64, in_zp = 3 : i64} : (tensor<1x4x4x64xi8>, tensor<64x3xi8>, tensor<3x4xi32>) -> tensor<1x4x4x3xi8>
// PLAINDEVICE:      %0 = aipu.to_device %x {perm = array<i64: 0, 1, 2, 3>} : tensor<1x2x4x4x!axq.q<i8, 0.5:3>> -> tensor<1x2x4x4xi8>
// PLAINDEVICE:      %[[NHWC:.*]] = aipu.move(%0) {{.*}} -> tensor<1x4x4x2xi8>
// PLAINDEVICE-NEXT: %[[PADDED:.*]] = aipu.move(%[[NHWC]]) {copies = array<i64: 0, 2, 0, 0, 16, 2, 2, 1, 64, 1>, fill = 3 : i64} : (tensor<1x4x4x2xi8>) -> tensor<1x4x4x64xi8>
// PLAINDEVICE:      aipu.conv %[[PADDED]]

// mvm_utilization_limit 0.5: weightsets of 256 rows, and no swICR (with a warning); ICR stays.
// LIMIT:      %0 = aipu.to_device %x {perm = array<i64: 0, 2, 3, 1>, padded}
// LIMIT:      %3 = aipu.conv %0, %1, %2 {in_c = 64 : i64, channels = 2 : i64, k_chunk = 256 : i64, icr = 4 : i64, in_zp = 3 : i64} : (tensor<1x4x4x64xi8>, tensor<64x12xi8>, tensor<3x4xi32>)
// WARN: swICR disabled for axq.conv2d at loc(unknown): mvm_utilization_limit 0.5 < 1 leaves no room for dense packing

// ICR factors: forced, capped by icrx_max_factor, off when the layer has more K chunks than
// icrx_parallel_block_threshold (here 1 > 0); a forced factor wider than the layer is an error.
// FORCE:      %1 = aipu.const {value = dense<[[1, 3, 5, 1, 3, 5], [2, -4, 6, 2, -4, 6]]> : tensor<2x6xi8>}
// FORCE:      aipu.conv %0, %1, %2 {in_c = 2 : i64, icr = 2 : i64, swicr = true, in_zp = 3 : i64}
// MAX:        aipu.conv %0, %1, %2 {in_c = 2 : i64, icr = 3 : i64, swicr = true, in_zp = 3 : i64} : (tensor<1x4x4x2xi8>, tensor<2x9xi8>, tensor<3x4xi32>)
// THRESHOLD:  aipu.conv %0, %1, %2 {in_c = 2 : i64, swicr = true, in_zp = 3 : i64} : (tensor<1x4x4x2xi8>, tensor<2x3xi8>, tensor<3x4xi32>)
// WIDE: icrx_force=5 does not fit axq.conv2d at loc(unknown): 3 output channels x 5 copies exceed the 64 MVM columns or its output width 4; use a factor <= 4

// -----

// The DWPU. Depthwise 3x3: weights as [kh, kw, C]; the rescale differs per channel
// (0.25 * 0.5 / 0.25 = 0.5 and 0.5 * 0.5 / 0.25 = 1), so the table has a row per channel:
// bias, m, shift, out_zp, in_zp. Max pooling needs no table. Average pooling 3x3 with pads 1
// (count_include_pad false) divides by the taps inside: one table per divisor d = 0..9 with
// r = 0.5 / (0.5 * max(d, 1)): 1/3 = 1431655765 * 2**-32, 1/5 = 1717986918 * 2**-33,
// 1/6 = 1431655765 * 2**-33, 1/7 = 1227133513 * 2**-33, 1/9 = 1908874354 * 2**-34.
// Global average: 0.5 / (0.25 * 16 pixels) = 0.125 = 2**30 * 2**-33.
builtin.module {
  func.func @main(%x: tensor<1x2x4x4x!axq.q<i8, 0.5:3>>) -> (tensor<1x2x2x2x!axq.q<i8, 0.25:-1>>, tensor<1x2x4x4x!axq.q<i8, 0.5:3>>, tensor<1x2x1x1x!axq.q<i8, 0.25:0>>, tensor<1x2x1x1x!axq.q<i8, 0.5:3>>) {
    %w = axq.constant {value = dense<[[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]], [[[-1, -2, -3], [-4, -5, -6], [-7, -8, -9]]]]> : tensor<2x1x3x3xi8>} : tensor<2x1x3x3x!axq.q<i8, axis 0, [0.25:0, 0.5:0]>>
    %b = axq.constant {value = dense<[7, -7]> : tensor<2xi32>} : tensor<2x!axq.q<i32, axis 0, [0.125:0, 0.25:0]>>
    %dw = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 2 : i64} : (tensor<1x2x4x4x!axq.q<i8, 0.5:3>>, tensor<2x1x3x3x!axq.q<i8, axis 0, [0.25:0, 0.5:0]>>, tensor<2x!axq.q<i32, axis 0, [0.125:0, 0.25:0]>>) -> tensor<1x2x4x4x!axq.q<i8, 0.25:-1>>
    %max = axq.max_pool %dw {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : tensor<1x2x4x4x!axq.q<i8, 0.25:-1>> -> tensor<1x2x2x2x!axq.q<i8, 0.25:-1>>
    %avg = axq.avg_pool %x {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = false} : tensor<1x2x4x4x!axq.q<i8, 0.5:3>> -> tensor<1x2x4x4x!axq.q<i8, 0.5:3>>
    %mean = axq.global_pool %x {kind = #axq<pool_kind avg>} : tensor<1x2x4x4x!axq.q<i8, 0.5:3>> -> tensor<1x2x1x1x!axq.q<i8, 0.25:0>>
    %top = axq.global_pool %x {kind = #axq<pool_kind max>} : tensor<1x2x4x4x!axq.q<i8, 0.5:3>> -> tensor<1x2x1x1x!axq.q<i8, 0.5:3>>
    func.return %max, %avg, %mean, %top : tensor<1x2x2x2x!axq.q<i8, 0.25:-1>>, tensor<1x2x4x4x!axq.q<i8, 0.5:3>>, tensor<1x2x1x1x!axq.q<i8, 0.25:0>>, tensor<1x2x1x1x!axq.q<i8, 0.5:3>>
  }
}

// CHECK:      %0 = aipu.to_device %x {perm = array<i64: 0, 2, 3, 1>} : tensor<1x2x4x4x!axq.q<i8, 0.5:3>> -> tensor<1x4x4x2xi8>
// CHECK-NEXT: %1 = aipu.const {value = dense<{{\[\[\[}}1, -1], [2, -2], [3, -3]], {{\[\[}}4, -4], [5, -5], [6, -6]], {{\[\[}}7, -7], [8, -8], [9, -9]]]> : tensor<3x3x2xi8>}
// CHECK-NEXT: %2 = aipu.const {value = dense<[[7, 1073741824, 31, -1, 3], [-7, 1073741824, 30, -1, 3]]> : tensor<2x5xi32>}
// CHECK-NEXT: %3 = aipu.pool conv %0 : tensor<1x4x4x2xi8> weights %1 : tensor<3x3x2xi8> table %2 : tensor<2x5xi32> {kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, per_channel = true} -> tensor<1x4x4x2xi8>
// CHECK-NEXT: %4 = aipu.pool max %3 : tensor<1x4x4x2xi8> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} -> tensor<1x2x2x2xi8>
// CHECK-NEXT: %max = aipu.from_device %4
// CHECK-NEXT: %5 = aipu.const {value = dense<{{\[\[\[}}0, 1073741824, 30, 3, 3]], {{\[\[}}0, 1073741824, 30, 3, 3]], {{\[\[}}0, 1073741824, 31, 3, 3]], {{\[\[}}0, 1431655765, 32, 3, 3]], {{\[\[}}0, 1073741824, 32, 3, 3]], {{\[\[}}0, 1717986918, 33, 3, 3]], {{\[\[}}0, 1431655765, 33, 3, 3]], {{\[\[}}0, 1227133513, 33, 3, 3]], {{\[\[}}0, 1073741824, 33, 3, 3]], {{\[\[}}0, 1908874354, 34, 3, 3]]]> : tensor<10x1x5xi32>}
// CHECK-NEXT: %6 = aipu.pool avg %0 : tensor<1x4x4x2xi8> table %5 : tensor<10x1x5xi32> {kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>} -> tensor<1x4x4x2xi8>
// CHECK-NEXT: %avg = aipu.from_device %6
// CHECK-NEXT: %7 = aipu.const {value = dense<[[0, 1073741824, 33, 0, 3]]> : tensor<1x5xi32>}
// CHECK-NEXT: %8 = aipu.pool global_avg %0 : tensor<1x4x4x2xi8> table %7 : tensor<1x5xi32> -> tensor<1x1x1x2xi8>
// CHECK-NEXT: %mean = aipu.from_device %8 {perm = array<i64: 0, 2, 3, 1>} : tensor<1x1x1x2xi8> -> tensor<1x2x1x1x!axq.q<i8, 0.25:0>>
// CHECK-NEXT: %9 = aipu.pool global_max %0 : tensor<1x4x4x2xi8> -> tensor<1x1x1x2xi8>

// -----

// The DPU: each op's program repeats the integer reference's formula. add: operands centred,
// << 20, rescaled to the common scale 2 * max(0.5, 0.25) = 1 (by 0.5 and 0.25), summed and
// requantized by 1 / (2**20 * 1.0) = 2**-20 = 2**30 * 2**-50. relu6 clamps to the codes of
// 0 and 6 at scale 1: 0..6. mul: 0.5 * 0.25 / 0.5 = 0.25. requantize: 0.5 / 0.25 = 2. A LUT
// reads its 256-entry table. Softmax in float18 over the innermost axis, then * 1 / 2**-8.
// Tensors that meet no spatial op keep their logical layout.
builtin.module {
  func.func @main(%a: tensor<1x2x3x!axq.q<i8, 0.5:3>>, %b: tensor<1x2x3x!axq.q<i8, 0.25:-2>>, %s: tensor<1x4x!axq.q<i8, 0.0625:0>>) -> (tensor<1x2x3x!axq.q<i8, 1.0:0>>, tensor<1x2x3x!axq.q<i8, 0.5:1>>, tensor<1x2x3x!axq.q<i8, 0.25:0>>, tensor<1x2x3x!axq.q<i8, 0.5:3>>, tensor<1x4x!axq.q<i8, 0.00390625:-128>>) {
    %sum = axq.add %a, %b : (tensor<1x2x3x!axq.q<i8, 0.5:3>>, tensor<1x2x3x!axq.q<i8, 0.25:-2>>) -> tensor<1x2x3x!axq.q<i8, 1.0:0>>
    %relu6 = axq.clip %sum {min = 0.0 : f64, max = 6.0 : f64} : tensor<1x2x3x!axq.q<i8, 1.0:0>> -> tensor<1x2x3x!axq.q<i8, 1.0:0>>
    %prod = axq.mul %a, %b : (tensor<1x2x3x!axq.q<i8, 0.5:3>>, tensor<1x2x3x!axq.q<i8, 0.25:-2>>) -> tensor<1x2x3x!axq.q<i8, 0.5:1>>
    %rq = axq.requantize %a : tensor<1x2x3x!axq.q<i8, 0.5:3>> -> tensor<1x2x3x!axq.q<i8, 0.25:0>>
    %table = axq.lut %a {function = #axq<unary_function sigmoid>, params = {}, table = dense<7> : tensor<256xi8>} : tensor<1x2x3x!axq.q<i8, 0.5:3>> -> tensor<1x2x3x!axq.q<i8, 0.5:3>>
    %soft = axq.softmax %s {axis = 1 : i64} : tensor<1x4x!axq.q<i8, 0.0625:0>> -> tensor<1x4x!axq.q<i8, 0.00390625:-128>>
    func.return %relu6, %prod, %rq, %table, %soft : tensor<1x2x3x!axq.q<i8, 1.0:0>>, tensor<1x2x3x!axq.q<i8, 0.5:1>>, tensor<1x2x3x!axq.q<i8, 0.25:0>>, tensor<1x2x3x!axq.q<i8, 0.5:3>>, tensor<1x4x!axq.q<i8, 0.00390625:-128>>
  }
}

// CHECK:      %2 = aipu.to_device %a {perm = array<i64: 0, 1, 2>} : tensor<1x2x3x!axq.q<i8, 0.5:3>> -> tensor<1x2x3xi8>
// CHECK-NEXT: %3 = aipu.eltwise(%2, %1) : (tensor<1x2x3xi8>, tensor<1x2x3xi8>) -> tensor<1x2x3xi8> {
// CHECK-NEXT: ^bb0(%4: !aipu.vreg, %5: !aipu.vreg):
// CHECK-NEXT:   %6 = aipu.dpu.addi %4, -3
// CHECK-NEXT:   %7 = aipu.dpu.shli %6, 20
// CHECK-NEXT:   %8 = aipu.dpu.rescale %7 multiplier 1073741824 shift 31
// CHECK-NEXT:   %9 = aipu.dpu.addi %5, 2
// CHECK-NEXT:   %10 = aipu.dpu.shli %9, 20
// CHECK-NEXT:   %11 = aipu.dpu.rescale %10 multiplier 1073741824 shift 32
// CHECK-NEXT:   %12 = aipu.dpu.add %8, %11
// CHECK-NEXT:   %13 = aipu.dpu.requant %12 multiplier 1073741824 shift 50 zero_point 0
// CHECK-NEXT:   aipu.dpu.yield %13
// CHECK:        %16 = aipu.dpu.clamp %15, 0, 6
// CHECK:        %20 = aipu.dpu.addi %18, -3
// CHECK-NEXT:   %21 = aipu.dpu.addi %19, 2
// CHECK-NEXT:   %22 = aipu.dpu.mul %20, %21
// CHECK-NEXT:   %23 = aipu.dpu.requant %22 multiplier 1073741824 shift 32 zero_point 1
// CHECK:        %26 = aipu.dpu.addi %25, -3
// CHECK-NEXT:   %27 = aipu.dpu.requant %26 multiplier 1073741824 shift 29 zero_point 0
// CHECK:      %28 = aipu.const {value = dense<7> : tensor<256xi8>} : tensor<256xi8>
// CHECK:        %31 = aipu.dpu.lut %30, %28 : tensor<256xi8>
// The exp table: float18 exp(-d * 0.0625) for d = 0, 1, ...: 1.0 = 0x3F800000, 0.9395 = 0x3F708000.
// CHECK:      %32 = aipu.const {value = dense<"0x0000803F0080703F{{[0-9A-F]+}}"> : tensor<256xf32>}
// CHECK-NEXT: %33 = aipu.eltwise(%0) : (tensor<1x4xi8>) -> tensor<1x4xi8> {
// CHECK-NEXT: ^bb0(%34: !aipu.vreg):
// CHECK-NEXT:   %35 = aipu.dpu.addi %34, 0
// CHECK-NEXT:   %36 = aipu.dpu.itof %35
// CHECK-NEXT:   %37 = aipu.dpu.rmax %36
// CHECK-NEXT:   %38 = aipu.dpu.fneg %37
// CHECK-NEXT:   %39 = aipu.dpu.fadd %36, %38
// CHECK-NEXT:   %40 = aipu.dpu.fneg %39
// CHECK-NEXT:   %41 = aipu.dpu.explut %40, %32 : tensor<256xf32>
// CHECK-NEXT:   %42 = aipu.dpu.rsum %41
// CHECK-NEXT:   %43 = aipu.dpu.frecip %42
// CHECK-NEXT:   %44 = aipu.dpu.fconst 2.560000e+02
// CHECK-NEXT:   %45 = aipu.dpu.fmul %43, %44
// CHECK-NEXT:   %46 = aipu.dpu.fmul %41, %45
// CHECK-NEXT:   %47 = aipu.dpu.ftoi %46 zero_point -128

// -----

// The DMA: copies are [input, rank, src offset, dst offset, sizes, src strides, dst strides]
// in elements between dense layouts. concat on axis 1: each input's 6 bytes in turn; the
// reshape moves nothing; transpose [0, 2, 1]: dst[j, i] = src[i, j]; pad one column each side
// with the code of 1.0 (1 / 0.5 + 3 = 5); slice 2::-2 of 3 columns: columns 2 and 0;
// nearest resize x2 on axis 1 (asymmetric, floor): rows 0 0 1 1, one copy per even/odd row.
builtin.module {
  func.func @main(%a: tensor<1x2x3x!axq.q<i8, 0.5:3>>, %b: tensor<1x2x3x!axq.q<i8, 0.5:3>>) -> (tensor<1x12x!axq.q<i8, 0.5:3>>, tensor<1x3x4x!axq.q<i8, 0.5:3>>, tensor<1x4x5x!axq.q<i8, 0.5:3>>, tensor<1x2x2x!axq.q<i8, 0.5:3>>, tensor<1x4x3x!axq.q<i8, 0.5:3>>) {
    %cat = axq.concat %a, %b {axis = 1 : i64} : (tensor<1x2x3x!axq.q<i8, 0.5:3>>, tensor<1x2x3x!axq.q<i8, 0.5:3>>) -> tensor<1x4x3x!axq.q<i8, 0.5:3>>
    %flat = axq.reshape %cat : tensor<1x4x3x!axq.q<i8, 0.5:3>> -> tensor<1x12x!axq.q<i8, 0.5:3>>
    %t = axq.transpose %cat {perm = array<i64: 0, 2, 1>} : tensor<1x4x3x!axq.q<i8, 0.5:3>> -> tensor<1x3x4x!axq.q<i8, 0.5:3>>
    %pad = axq.pad %cat {pads = array<i64: 0, 0, 1, 0, 0, 1>, value = 1.0 : f64, mode = #axq<pad_mode constant>} : tensor<1x4x3x!axq.q<i8, 0.5:3>> -> tensor<1x4x5x!axq.q<i8, 0.5:3>>
    %sl = axq.slice %a {starts = array<i64: 2>, ends = array<i64: -4>, axes = array<i64: 2>, steps = array<i64: -2>} : tensor<1x2x3x!axq.q<i8, 0.5:3>> -> tensor<1x2x2x!axq.q<i8, 0.5:3>>
    %up = axq.resize %a {mode = #axq<resize_mode nearest>, scales = array<f64: 1.0, 2.0, 1.0>, coordinate_transform = #axq<coordinate_transform asymmetric>, nearest_rounding = #axq<nearest_rounding floor>} : tensor<1x2x3x!axq.q<i8, 0.5:3>> -> tensor<1x4x3x!axq.q<i8, 0.5:3>>
    func.return %flat, %t, %pad, %sl, %up : tensor<1x12x!axq.q<i8, 0.5:3>>, tensor<1x3x4x!axq.q<i8, 0.5:3>>, tensor<1x4x5x!axq.q<i8, 0.5:3>>, tensor<1x2x2x!axq.q<i8, 0.5:3>>, tensor<1x4x3x!axq.q<i8, 0.5:3>>
  }
}

// CHECK:      %2 = aipu.move(%1, %0) {copies = array<i64: 0, 1, 0, 0, 6, 1, 1, 1, 1, 0, 6, 6, 1, 1>} : (tensor<1x2x3xi8>, tensor<1x2x3xi8>) -> tensor<1x4x3xi8>
// CHECK-NEXT: %3 = aipu.reinterpret %2 : tensor<1x4x3xi8> -> tensor<1x12xi8>
// CHECK-NEXT: %flat = aipu.from_device %3
// CHECK-NEXT: %4 = aipu.move(%2) {copies = array<i64: 0, 2, 0, 0, 3, 4, 1, 3, 4, 1>} : (tensor<1x4x3xi8>) -> tensor<1x3x4xi8>
// CHECK-NEXT: %t = aipu.from_device %4
// CHECK-NEXT: %5 = aipu.move(%2) {copies = array<i64: 0, 2, 0, 1, 4, 3, 3, 1, 5, 1>, fill = 5 : i64} : (tensor<1x4x3xi8>) -> tensor<1x4x5xi8>
// CHECK-NEXT: %pad = aipu.from_device %5
// CHECK-NEXT: %6 = aipu.move(%1) {copies = array<i64: 0, 2, 2, 0, 2, 2, 3, -2, 2, 1>} : (tensor<1x2x3xi8>) -> tensor<1x2x2xi8>
// CHECK-NEXT: %sl = aipu.from_device %6
// CHECK-NEXT: %7 = aipu.move(%1) {copies = array<i64: 0, 2, 0, 0, 2, 3, 3, 1, 6, 1, 0, 2, 0, 3, 2, 3, 3, 1, 6, 1>} : (tensor<1x2x3xi8>) -> tensor<1x4x3xi8>

// -----

// A padded tensor that only the host reads (apply-pword-padding's slice before a graph
// output): the host crops it, the device hands over all 64 channels without a copy. With
// remove_io_padding_and_layout_transform=false the device slices (and transposes) by DMA.
builtin.module {
  func.func @main(%x: tensor<1x2x2x2x!axq.q<i8, 0.5:0>> {axq.name = "input"}) -> (tensor<1x40x2x2x!axq.q<i8, 0.25:0>> {axq.name = "output"}) {
    %w = axq.constant {value = dense<1> : tensor<64x2x1x1xi8>} : tensor<64x2x1x1x!axq.q<i8, 0.25:0>>
    %b = axq.constant {value = dense<0> : tensor<64xi32>} : tensor<64x!axq.q<i32, 0.125:0>>
    %y = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x2x2x!axq.q<i8, 0.5:0>>, tensor<64x2x1x1x!axq.q<i8, 0.25:0>>, tensor<64x!axq.q<i32, 0.125:0>>) -> tensor<1x64x2x2x!axq.q<i8, 0.25:0>>
    %s = axq.slice %y {starts = array<i64: 0>, ends = array<i64: 40>, axes = array<i64: 1>, steps = array<i64: 1>} : tensor<1x64x2x2x!axq.q<i8, 0.25:0>> -> tensor<1x40x2x2x!axq.q<i8, 0.25:0>>
    func.return %s : tensor<1x40x2x2x!axq.q<i8, 0.25:0>>
  }
}

// CHECK:      %[[CONV:.*]] = aipu.conv {{.*}} -> tensor<1x2x2x64xi8>
// CHECK-NEXT: %s = aipu.from_device %[[CONV]] {perm = array<i64: 0, 2, 3, 1>, cropped} : tensor<1x2x2x64xi8> -> tensor<1x40x2x2x!axq.q<i8, 0.25:0>>
// CHECK-NEXT: func.return %s
// DEVICEIO:      %[[CONV:.*]] = aipu.conv {{.*}} -> tensor<1x2x2x64xi8>
// DEVICEIO-NEXT: %[[SLICE:.*]] = aipu.move(%[[CONV]]) {{.*}} -> tensor<1x2x2x40xi8>
// DEVICEIO-NEXT: %[[NCHW:.*]] = aipu.move(%[[SLICE]]) {{.*}} -> tensor<1x40x2x2xi8>
// DEVICEIO-NEXT: %s = aipu.from_device %[[NCHW]] {perm = array<i64: 0, 1, 2, 3>}

// -----

// A transpose that swaps single bytes (every byte its own DMA burst) runs on the MVM when
// that is cheaper: the 48 columns split into 12 rows of 4 (whole ICR groups), so the input
// is a 192 x 4 image of one channel, 16 blocks of 12 rows; a 16 x 1 kernel with dilation 12
// and swICR gathers each column into one K vector, identity weights (ICR 4) write it as 16
// channels of a 12 x 4 output that aipu-tile can split by rows; requantization by exactly
// 1 (multiplier 2^30, shift 30), zero points 0. With swICR off it stays a DMA move.
builtin.module {
  func.func @main(%x: tensor<1x16x48x!axq.q<i8, 0.5:3>>) -> tensor<1x48x16x!axq.q<i8, 0.5:3>> {
    %t = axq.transpose %x {perm = array<i64: 0, 2, 1>} : tensor<1x16x48x!axq.q<i8, 0.5:3>> -> tensor<1x48x16x!axq.q<i8, 0.5:3>>
    func.return %t : tensor<1x48x16x!axq.q<i8, 0.5:3>>
  }
}

// CHECK:      %[[IMAGE:.*]] = aipu.reinterpret %{{.*}} : tensor<1x16x48xi8> -> tensor<1x192x4x1xi8>
// CHECK-NEXT: %[[EYE:.*]] = aipu.const {{.*}} : tensor<16x64xi8>
// CHECK-NEXT: %[[TABLE:.*]] = aipu.const {value = dense<{{\[}}[0, 1073741824, 30, 0], {{.*}}> : tensor<16x4xi32>}
// CHECK-NEXT: %[[SWAP:.*]] = aipu.conv %[[IMAGE]], %[[EYE]], %[[TABLE]] {in_c = 1 : i64, icr = 4 : i64, swicr = true, kernel = array<i64: 16, 1>, dilation = array<i64: 12, 1>} : (tensor<1x192x4x1xi8>, tensor<16x64xi8>, tensor<16x4xi32>) -> tensor<1x12x4x16xi8>
// CHECK-NEXT: %[[ROWS:.*]] = aipu.reinterpret %[[SWAP]] : tensor<1x12x4x16xi8> -> tensor<1x48x16xi8>
// CHECK-NEXT: %t = aipu.from_device %[[ROWS]]
// PLAIN:      aipu.move(%{{.*}}) {copies = array<i64: 0, 2, 0, 0, 48, 16, 1, 48, 16, 1>} : (tensor<1x16x48xi8>) -> tensor<1x48x16xi8>

// -----

// A swap of 257 columns (a prime above 255: one row per column does not fit the MVM record's
// dilation, and no divisor splits them) is padded by the DMA to 264 columns (33 rows of 8,
// whole groups of the 8 ICR copies), swapped on the MVM in rows aipu-tile can split, and
// cropped back to each image's first 257 pixels.
builtin.module {
  func.func @main(%x: tensor<1x4x257x!axq.q<i8, 0.5:3>>) -> tensor<1x257x4x!axq.q<i8, 0.5:3>> {
    %t = axq.transpose %x {perm = array<i64: 0, 2, 1>} : tensor<1x4x257x!axq.q<i8, 0.5:3>> -> tensor<1x257x4x!axq.q<i8, 0.5:3>>
    func.return %t : tensor<1x257x4x!axq.q<i8, 0.5:3>>
  }
}

// CHECK:      %[[PADDED:.*]] = aipu.move(%{{.*}}) {copies = array<i64: 0, 2, 0, 0, 4, 257, 257, 1, 264, 1>} : (tensor<1x4x257xi8>) -> tensor<1x4x264xi8>
// CHECK-NEXT: %[[IMAGE:.*]] = aipu.reinterpret %[[PADDED]] : tensor<1x4x264xi8> -> tensor<1x132x8x1xi8>
// CHECK:      %[[SWAP:.*]] = aipu.conv %[[IMAGE]], {{.*}} {in_c = 1 : i64, icr = 8 : i64, swicr = true, kernel = array<i64: 4, 1>, dilation = array<i64: 33, 1>} : (tensor<1x132x8x1xi8>, tensor<4x32xi8>, tensor<4x4xi32>) -> tensor<1x33x8x4xi8>
// CHECK-NEXT: %[[CROP:.*]] = aipu.move(%[[SWAP]]) {copies = array<i64: 0, 1, 0, 0, 1028, 1, 1>} : (tensor<1x33x8x4xi8>) -> tensor<1x257x4xi8>
// CHECK-NEXT: %t = aipu.from_device %[[CROP]]
// PLAIN:      aipu.move(%{{.*}}) {copies = array<i64: 0, 2, 0, 0, 257, 4, 1, 257, 4, 1>} : (tensor<1x4x257xi8>) -> tensor<1x257x4xi8>

// -----

// Attention heads stay token-major: the head splits of %x ([1, T=8, H=2, D=4] -> [1, H, T,
// D]) and the head merge move nothing; the scores MVM reads each head of %x as a column of
// 8 pixels (image_axes: input on axis 2), the context MVM loads each head's values as
// weights [K=8 tokens, heads, N=4] (axis 1) and writes its head of the output in place
// (axis 2). Without swICR the K lanes are padded with the zero point, still token-major.
builtin.module {
  func.func @main(%x: tensor<1x8x2x4x!axq.q<i8, 0.5:3>>, %kt: tensor<1x2x4x8x!axq.q<i8, 0.25:-1>>) -> tensor<1x8x2x4x!axq.q<i8, 0.125:2>> {
    %q = axq.transpose %x {perm = array<i64: 0, 2, 1, 3>} : tensor<1x8x2x4x!axq.q<i8, 0.5:3>> -> tensor<1x2x8x4x!axq.q<i8, 0.5:3>>
    %s = axq.matmul %q, %kt : (tensor<1x2x8x4x!axq.q<i8, 0.5:3>>, tensor<1x2x4x8x!axq.q<i8, 0.25:-1>>) -> tensor<1x2x8x8x!axq.q<i8, 0.5:0>>
    %v = axq.transpose %x {perm = array<i64: 0, 2, 1, 3>} : tensor<1x8x2x4x!axq.q<i8, 0.5:3>> -> tensor<1x2x8x4x!axq.q<i8, 0.5:3>>
    %c = axq.matmul %s, %v : (tensor<1x2x8x8x!axq.q<i8, 0.5:0>>, tensor<1x2x8x4x!axq.q<i8, 0.5:3>>) -> tensor<1x2x8x4x!axq.q<i8, 0.125:2>>
    %m = axq.transpose %c {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x8x4x!axq.q<i8, 0.125:2>> -> tensor<1x8x2x4x!axq.q<i8, 0.125:2>>
    func.return %m : tensor<1x8x2x4x!axq.q<i8, 0.125:2>>
  }
}

// CHECK:      %[[X:.*]] = aipu.to_device %x {perm = array<i64: 0, 1, 2, 3>} : tensor<1x8x2x4x!axq.q<i8, 0.5:3>> -> tensor<1x8x2x4xi8>
// CHECK-NOT:  aipu.move
// CHECK:      %[[SCORES:.*]] = aipu.conv %[[X]], %{{.*}}, %{{.*}} {image_axes = array<i64: 2, 0, 0>, in_c = 4 : i64, swicr = true, in_zp = 3 : i64, w_zp = -1 : i64} : (tensor<1x8x2x4xi8>, tensor<2x4x8xi8>, tensor<8x4xi32>) -> tensor<2x8x1x8xi8>
// CHECK:      %[[V:.*]] = aipu.reinterpret %[[X]] : tensor<1x8x2x4xi8> -> tensor<8x2x4xi8>
// CHECK-NOT:  aipu.move
// CHECK:      %[[CONTEXT:.*]] = aipu.conv %{{.*}}, %[[V]], %{{.*}} {image_axes = array<i64: 0, 1, 2>, in_c = 8 : i64, swicr = true, w_zp = 3 : i64} : (tensor<2x8x1x8xi8>, tensor<8x2x4xi8>, tensor<4x4xi32>) -> tensor<1x8x2x4xi8>
// CHECK-NEXT: %m = aipu.from_device %[[CONTEXT]] {perm = array<i64: 0, 1, 2, 3>}
// PLAIN:      %[[X:.*]] = aipu.to_device %x
// PLAIN-NEXT: %[[Q:.*]] = aipu.move(%[[X]]) {copies = array<i64: 0, 2, 0, 0, 16, 4, 4, 1, 64, 1>, fill = 3 : i64} : (tensor<1x8x2x4xi8>) -> tensor<1x8x2x64xi8>
// PLAIN:      aipu.conv %[[Q]], {{.*}} {image_axes = array<i64: 2, 0, 0>, in_c = 64 : i64, channels = 4 : i64, {{.*}} -> tensor<2x8x1x8xi8>
// PLAIN:      %[[V:.*]] = aipu.reinterpret %[[X]] : tensor<1x8x2x4xi8> -> tensor<8x2x4xi8>
// PLAIN-NEXT: %[[VK:.*]] = aipu.move(%[[V]]) {copies = array<i64: 0, 1, 0, 0, 64, 1, 1>, fill = 3 : i64} : (tensor<8x2x4xi8>) -> tensor<64x2x4xi8>
// PLAIN:      aipu.conv %{{.*}}, %[[VK]], {{.*}} {image_axes = array<i64: 0, 1, 2>, {{.*}} -> tensor<1x8x2x4xi8>
