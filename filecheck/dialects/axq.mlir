// RUN: xdsl-opt %s | xdsl-opt | filecheck %s

// The axq dialect prints and parses back unchanged: every op in its custom format, float
// and quantized (per-tensor and per-axis) tensors, enum attributes and bytes-backed constants.

builtin.module {
  func.func @main(%x: tensor<1x2x8x8xf32> {axq.name = "input"}, %y: tensor<1x2x8x8xf32> {axq.name = "other"}, %xq: tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>>) -> (tensor<1x10xf32> {axq.name = "logits"}, tensor<1x2x4x4x!axq.q<i8, 0.0187:-14>>) {
    %w = axq.constant {value = dense<"0x0000803F000000400000404000008040"> : tensor<2x2x1x1xf32>} : tensor<2x2x1x1xf32>
    %b = axq.constant {value = dense<[0.5, -0.25]> : tensor<2xf32>} : tensor<2xf32>
    %conv = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
    %wq = axq.constant {value = dense<[[[[127, -127, 3]]], [[[-1, 0, 1]]]]> : tensor<2x1x1x3xi8>} : tensor<2x1x1x3x!axq.q<i8, axis 0, [0.5:0, 0.25:0]>>
    %bq = axq.constant {value = dense<[1, -1]> : tensor<2xi32>} : tensor<2x!axq.q<i32, axis 0, [0.00935:0, 0.004675:0]>>
    %convq = axq.conv2d %xq, %wq, %bq {strides = array<i64: 2, 2>, pads = array<i64: 0, 1, 0, 0>, dilations = array<i64: 1, 1>, group = 2 : i64} : (tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>>, tensor<2x1x1x3x!axq.q<i8, axis 0, [0.5:0, 0.25:0]>>, tensor<2x!axq.q<i32, axis 0, [0.00935:0, 0.004675:0]>>) -> tensor<1x2x4x4x!axq.q<i8, 0.0187:-14>>
    %wt = axq.constant {value = dense<1.0> : tensor<2x2x2x2xf32>} : tensor<2x2x2x2xf32>
    %up = axq.conv_transpose2d %conv, %wt, %b {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<2x2x2x2xf32>, tensor<2xf32>) -> tensor<1x2x16x16xf32>
    %flat = axq.reshape %conv : tensor<1x2x8x8xf32> -> tensor<1x128xf32>
    %wd = axq.constant {value = dense<0.125> : tensor<10x128xf32>} : tensor<10x128xf32>
    %bd = axq.constant {value = dense<0.0> : tensor<10xf32>} : tensor<10xf32>
    %logits = axq.dense %flat, %wd, %bd : (tensor<1x128xf32>, tensor<10x128xf32>, tensor<10xf32>) -> tensor<1x10xf32>
    %add = axq.add %x, %y : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
    %gap = axq.global_pool %x {kind = #axq<pool_kind avg>} : tensor<1x2x8x8xf32> -> tensor<1x2x1x1xf32>
    %sub = axq.sub %x, %gap : (tensor<1x2x8x8xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x8x8xf32>
    %mul = axq.mul %x, %y : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
    %prelu = axq.prelu %x, %y : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
    %mm = axq.matmul %x, %y : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
    %lut = axq.lut %x {function = #axq<unary_function hardsigmoid>, params = {alpha = 0.2 : f64, beta = 0.5 : f64}} : tensor<1x2x8x8xf32> -> tensor<1x2x8x8xf32>
    %table = axq.lut %xq {function = #axq<unary_function sigmoid>, params = {}, table = dense<7> : tensor<256xi8>} : tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>> -> tensor<1x2x8x8x!axq.q<i8, 0.00390625:-128>>
    %relu = axq.clip %x {min = 0.0 : f64, max = 0x7FF0000000000000 : f64} : tensor<1x2x8x8xf32> -> tensor<1x2x8x8xf32>
    %soft = axq.softmax %x {axis = 1 : i64} : tensor<1x2x8x8xf32> -> tensor<1x2x8x8xf32>
    %q = axq.quantize %x : tensor<1x2x8x8xf32> -> tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>>
    %dq = axq.dequantize %q : tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>> -> tensor<1x2x8x8xf32>
    %rq = axq.requantize %q : tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>> -> tensor<1x2x8x8x!axq.q<i8, 0.05:3>>
    %nhwc = axq.transpose %x {perm = array<i64: 0, 2, 3, 1>} : tensor<1x2x8x8xf32> -> tensor<1x8x8x2xf32>
    %pad = axq.pad %x {pads = array<i64: 0, 0, 1, 0, 0, 0, 1, 1>, value = 0.5 : f64, mode = #axq<pad_mode reflect>} : tensor<1x2x8x8xf32> -> tensor<1x2x10x9xf32>
    %slice = axq.slice %x {starts = array<i64: 0, 7>, ends = array<i64: 8, -9>, axes = array<i64: 2, 3>, steps = array<i64: 2, -1>} : tensor<1x2x8x8xf32> -> tensor<1x2x4x8xf32>
    %max = axq.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = true} : tensor<1x2x8x8xf32> -> tensor<1x2x4x4xf32>
    %avg = axq.avg_pool %x {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = true} : tensor<1x2x8x8xf32> -> tensor<1x2x8x8xf32>
    %resize = axq.resize %x {mode = #axq<resize_mode linear>, scales = array<f64: 1.0, 1.0, 2.0, 2.0>, coordinate_transform = #axq<coordinate_transform align_corners>, nearest_rounding = #axq<nearest_rounding round_prefer_floor>} : tensor<1x2x8x8xf32> -> tensor<1x2x16x16xf32>
    %cat = axq.concat %x, %y {axis = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>
    %lo, %hi = axq.split %x {axis = 1 : i64} : tensor<1x2x8x8xf32> -> tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>
    %mean = axq.host "ReduceMean"(%x) {domain = "", opset = 18 : i64, attributes = {keepdims = 1 : i64}} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x1xf32>
    func.return %logits, %convq : tensor<1x10xf32>, tensor<1x2x4x4x!axq.q<i8, 0.0187:-14>>
  }
}

// CHECK:      builtin.module {
// CHECK-NEXT:   func.func @main(%x: tensor<1x2x8x8xf32> {axq.name = "input"}, %y: tensor<1x2x8x8xf32> {axq.name = "other"}, %xq: tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>>) -> (tensor<1x10xf32> {axq.name = "logits"}, tensor<1x2x4x4x!axq.q<i8, 0.0187:-14>>) {
// CHECK-NEXT:     %w = axq.constant {value = dense<[[[[1.000000e+00]], [[2.000000e+00]]], [[[3.000000e+00]], [[4.000000e+00]]]]> : tensor<2x2x1x1xf32>} : tensor<2x2x1x1xf32>
// CHECK-NEXT:     %b = axq.constant {value = dense<[5.000000e-01, -2.500000e-01]> : tensor<2xf32>} : tensor<2xf32>
// CHECK-NEXT:     %conv = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %wq = axq.constant {value = dense<[[[[127, -127, 3]]], [[[-1, 0, 1]]]]> : tensor<2x1x1x3xi8>} : tensor<2x1x1x3x!axq.q<i8, axis 0, [0.5:0, 0.25:0]>>
// CHECK-NEXT:     %bq = axq.constant {value = dense<[1, -1]> : tensor<2xi32>} : tensor<2x!axq.q<i32, axis 0, [0.00935:0, 0.004675:0]>>
// CHECK-NEXT:     %convq = axq.conv2d %xq, %wq, %bq {strides = array<i64: 2, 2>, pads = array<i64: 0, 1, 0, 0>, dilations = array<i64: 1, 1>, group = 2 : i64} : (tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>>, tensor<2x1x1x3x!axq.q<i8, axis 0, [0.5:0, 0.25:0]>>, tensor<2x!axq.q<i32, axis 0, [0.00935:0, 0.004675:0]>>) -> tensor<1x2x4x4x!axq.q<i8, 0.0187:-14>>
// CHECK-NEXT:     %wt = axq.constant {value = dense<1.000000e+00> : tensor<2x2x2x2xf32>} : tensor<2x2x2x2xf32>
// CHECK-NEXT:     %up = axq.conv_transpose2d %conv, %wt, %b {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<2x2x2x2xf32>, tensor<2xf32>) -> tensor<1x2x16x16xf32>
// CHECK-NEXT:     %flat = axq.reshape %conv : tensor<1x2x8x8xf32> -> tensor<1x128xf32>
// CHECK-NEXT:     %wd = axq.constant {value = dense<1.250000e-01> : tensor<10x128xf32>} : tensor<10x128xf32>
// CHECK-NEXT:     %bd = axq.constant {value = dense<0.000000e+00> : tensor<10xf32>} : tensor<10xf32>
// CHECK-NEXT:     %logits = axq.dense %flat, %wd, %bd : (tensor<1x128xf32>, tensor<10x128xf32>, tensor<10xf32>) -> tensor<1x10xf32>
// CHECK-NEXT:     %add = axq.add %x, %y : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %gap = axq.global_pool %x {kind = #axq<pool_kind avg>} : tensor<1x2x8x8xf32> -> tensor<1x2x1x1xf32>
// CHECK-NEXT:     %sub = axq.sub %x, %gap : (tensor<1x2x8x8xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %mul = axq.mul %x, %y : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %prelu = axq.prelu %x, %y : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %mm = axq.matmul %x, %y : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %lut = axq.lut %x {function = #axq<unary_function hardsigmoid>, params = {alpha = 2.000000e-01 : f64, beta = 5.000000e-01 : f64}} : tensor<1x2x8x8xf32> -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %table = axq.lut %xq {function = #axq<unary_function sigmoid>, params = {}, table = dense<7> : tensor<256xi8>} : tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>> -> tensor<1x2x8x8x!axq.q<i8, 0.00390625:-128>>
// CHECK-NEXT:     %relu = axq.clip %x {min = 0.000000e+00 : f64, max = 0x7ff0000000000000 : f64} : tensor<1x2x8x8xf32> -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %soft = axq.softmax %x {axis = 1 : i64} : tensor<1x2x8x8xf32> -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %q = axq.quantize %x : tensor<1x2x8x8xf32> -> tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>>
// CHECK-NEXT:     %dq = axq.dequantize %q : tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>> -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %rq = axq.requantize %q : tensor<1x2x8x8x!axq.q<i8, 0.0187:-14>> -> tensor<1x2x8x8x!axq.q<i8, 0.05:3>>
// CHECK-NEXT:     %nhwc = axq.transpose %x {perm = array<i64: 0, 2, 3, 1>} : tensor<1x2x8x8xf32> -> tensor<1x8x8x2xf32>
// CHECK-NEXT:     %pad = axq.pad %x {pads = array<i64: 0, 0, 1, 0, 0, 0, 1, 1>, value = 5.000000e-01 : f64, mode = #axq<pad_mode reflect>} : tensor<1x2x8x8xf32> -> tensor<1x2x10x9xf32>
// CHECK-NEXT:     %slice = axq.slice %x {starts = array<i64: 0, 7>, ends = array<i64: 8, -9>, axes = array<i64: 2, 3>, steps = array<i64: 2, -1>} : tensor<1x2x8x8xf32> -> tensor<1x2x4x8xf32>
// CHECK-NEXT:     %max = axq.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = true} : tensor<1x2x8x8xf32> -> tensor<1x2x4x4xf32>
// CHECK-NEXT:     %avg = axq.avg_pool %x {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = true} : tensor<1x2x8x8xf32> -> tensor<1x2x8x8xf32>
// CHECK-NEXT:     %resize = axq.resize %x {mode = #axq<resize_mode linear>, scales = array<f64: 1.000000e+00, 1.000000e+00, 2.000000e+00, 2.000000e+00>, coordinate_transform = #axq<coordinate_transform align_corners>, nearest_rounding = #axq<nearest_rounding round_prefer_floor>} : tensor<1x2x8x8xf32> -> tensor<1x2x16x16xf32>
// CHECK-NEXT:     %cat = axq.concat %x, %y {axis = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>
// CHECK-NEXT:     %lo, %hi = axq.split %x {axis = 1 : i64} : tensor<1x2x8x8xf32> -> tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>
// CHECK-NEXT:     %mean = axq.host "ReduceMean"(%x) {domain = "", opset = 18 : i64, attributes = {keepdims = 1 : i64}} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x1xf32>
// CHECK-NEXT:     func.return %logits, %convq : tensor<1x10xf32>, tensor<1x2x4x4x!axq.q<i8, 0.0187:-14>>
// CHECK-NEXT:   }
// CHECK-NEXT: }
