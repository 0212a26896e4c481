// RUN: xdsl-opt %s --split-input-file -p validate-operators --verify-diagnostics --print-debuginfo | filecheck %s

// A legal quantized core passes unchanged; the NHWC input's layout transform is allowed.
builtin.module {
  func.func @main(%x: tensor<1x4x4x8xf32> {axq.name = "image"}) -> (tensor<1x8x4x4xf32> {axq.name = "y"}) {
    %q = axq.quantize %x : tensor<1x4x4x8xf32> -> tensor<1x4x4x8x!axq.q<i8, 0.05:0>> loc("image")
    %t = axq.transpose %q {perm = array<i64: 0, 3, 1, 2>} : tensor<1x4x4x8x!axq.q<i8, 0.05:0>> -> tensor<1x8x4x4x!axq.q<i8, 0.05:0>> loc("to_nchw")
    %p = axq.pad %t {pads = array<i64: 0, 0, 1, 1, 0, 0, 1, 1>, value = 0.0 : f64, mode = #axq<pad_mode constant>} : tensor<1x8x4x4x!axq.q<i8, 0.05:0>> -> tensor<1x8x6x6x!axq.q<i8, 0.05:0>> loc("pad")
    %m = axq.max_pool %p {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : tensor<1x8x6x6x!axq.q<i8, 0.05:0>> -> tensor<1x8x4x4x!axq.q<i8, 0.05:0>> loc("pool")
    %y = axq.dequantize %m : tensor<1x8x4x4x!axq.q<i8, 0.05:0>> -> tensor<1x8x4x4xf32> loc("pool")
    func.return %y : tensor<1x8x4x4xf32>
  }
}

// CHECK:      axq.transpose %{{.*}} {perm = array<i64: 0, 3, 1, 2>}
// CHECK:      axq.max_pool

// -----

// Data movement is a strided DMA: a head split, a non-zero pad value, a channel pad, reflect
// padding and a padded average pool without the padding in its divisor all pass.
builtin.module {
  func.func @main(%x: tensor<1x8x4x4x!axq.q<i8, 0.05:0>> {axq.name = "x"}) -> (tensor<1x4x8x4x!axq.q<i8, 0.05:0>> {axq.name = "heads"}, tensor<1x16x4x4x!axq.q<i8, 0.05:0>> {axq.name = "padded"}, tensor<1x8x3x3x!axq.q<i8, 0.05:0>> {axq.name = "pooled"}) {
    %heads = axq.transpose %x {perm = array<i64: 0, 2, 1, 3>} : tensor<1x8x4x4x!axq.q<i8, 0.05:0>> -> tensor<1x4x8x4x!axq.q<i8, 0.05:0>> loc("head_split")
    %padded = axq.pad %x {pads = array<i64: 0, 0, 0, 0, 0, 8, 0, 0>, value = 1.0 : f64, mode = #axq<pad_mode constant>} : tensor<1x8x4x4x!axq.q<i8, 0.05:0>> -> tensor<1x16x4x4x!axq.q<i8, 0.05:0>> loc("pad")
    %reflected = axq.pad %x {pads = array<i64: 0, 0, 1, 1, 0, 0, 1, 1>, value = 0.0 : f64, mode = #axq<pad_mode reflect>} : tensor<1x8x4x4x!axq.q<i8, 0.05:0>> -> tensor<1x8x6x6x!axq.q<i8, 0.05:0>> loc("reflect")
    %pooled = axq.avg_pool %reflected {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = false} : tensor<1x8x6x6x!axq.q<i8, 0.05:0>> -> tensor<1x8x3x3x!axq.q<i8, 0.05:0>> loc("avgpool")
    func.return %heads, %padded, %pooled : tensor<1x4x8x4x!axq.q<i8, 0.05:0>>, tensor<1x16x4x4x!axq.q<i8, 0.05:0>>, tensor<1x8x3x3x!axq.q<i8, 0.05:0>>
  }
}

// CHECK:      axq.transpose %{{.*}} {perm = array<i64: 0, 2, 1, 3>}
// CHECK:      axq.pad
// CHECK:      axq.pad %{{.*}} mode = #axq<pad_mode reflect>
// CHECK:      axq.avg_pool

// -----

// Every violation, in program order, with its node name and the reason; host ops are not checked.
builtin.module {
  func.func @main(%a: tensor<2x4x8x!axq.q<i8, 0.05:0>> {axq.name = "a"}, %b: tensor<1x8x4x!axq.q<i8, 0.05:0>> {axq.name = "b"}, %m: tensor<2x3x!axq.q<i8, 0.05:0>> {axq.name = "m"}) -> (tensor<2x4x4x!axq.q<i8, 0.05:0>> {axq.name = "product"}, tensor<4x3x!axq.q<i8, 0.05:0>> {axq.name = "weighted"}, tensor<4xf32> {axq.name = "host"}) {
    %product = axq.matmul %a, %b : (tensor<2x4x8x!axq.q<i8, 0.05:0>>, tensor<1x8x4x!axq.q<i8, 0.05:0>>) -> tensor<2x4x4x!axq.q<i8, 0.05:0>> loc("broadcast_matmul")
    %w = axq.constant {value = dense<1> : tensor<4x2xi8>} : tensor<4x2x!axq.q<i8, 0.1:0>> loc("w")
    %weighted = axq.matmul %w, %m : (tensor<4x2x!axq.q<i8, 0.1:0>>, tensor<2x3x!axq.q<i8, 0.05:0>>) -> tensor<4x3x!axq.q<i8, 0.05:0>> loc("weight_on_the_left")
    %c = axq.constant {value = dense<1.0> : tensor<4xf32>} : tensor<4xf32> loc("c")
    %host = axq.host "Erf"(%c) {domain = "", opset = 17 : i64, attributes = {}} : (tensor<4xf32>) -> tensor<4xf32> loc("erf")
    func.return %product, %weighted, %host : tensor<2x4x4x!axq.q<i8, 0.05:0>>, tensor<4x3x!axq.q<i8, 0.05:0>>, tensor<4xf32>
  }
}

// CHECK: 2 hardware constraint violation(s) in the accelerated core: node 'broadcast_matmul' (axq.matmul): batched MatMul of [2, 4, 8] and [1, 8, 4] needs equal batch dims (one weightset per image); node 'weight_on_the_left' (axq.matmul): constant left operand; only the right operand can be a weight. Enable run_graph_cleaner to run these operators on the host, or set validate_operators=false
