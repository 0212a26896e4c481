// RUN: xdsl-opt %s --split-input-file -p apply-arithmetic-simplification --print-debuginfo | filecheck %s

// Float graph: consecutive scalings and shifts, identities, an unfolded BatchNorm after a conv,
// ReLU then ReLU6. Integer graph: a ReLU6 the input type already satisfies, and a clip that clamps.
builtin.module {
  func.func @main(%x: tensor<1x2x3x3xf32> {axq.name = "x"}, %q: tensor<1x2x3x3x!axq.q<i8, 0.02:-128>> {axq.name = "q"}) -> (tensor<1x2x3x3xf32> {axq.name = "scaled"}, tensor<1x2x3x3xf32> {axq.name = "shifted"}, tensor<1x2x3x3xf32> {axq.name = "same"}, tensor<1x2x3x3xf32> {axq.name = "bn"}, tensor<1x2x3x3xf32> {axq.name = "relu6"}, tensor<1x2x3x3x!axq.q<i8, 0.02:-128>> {axq.name = "fused"}, tensor<1x2x3x3x!axq.q<i8, 0.02:-128>> {axq.name = "clamps"}) {
    %two = axq.constant {value = dense<2.0> : tensor<f32>} : tensor<f32> loc("two")
    %k = axq.constant {value = dense<[[[[0.5]], [[0.25]]]]> : tensor<1x2x1x1xf32>} : tensor<1x2x1x1xf32> loc("k")
    %m1 = axq.mul %x, %two : (tensor<1x2x3x3xf32>, tensor<f32>) -> tensor<1x2x3x3xf32> loc("mul1")
    %scaled = axq.mul %k, %m1 : (tensor<1x2x1x1xf32>, tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> loc("mul2")
    %a1 = axq.add %x, %two : (tensor<1x2x3x3xf32>, tensor<f32>) -> tensor<1x2x3x3xf32> loc("add1")
    %shifted = axq.sub %a1, %k : (tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x3x3xf32> loc("sub1")
    %one = axq.constant {value = dense<1.0> : tensor<1x2x1x1xf32>} : tensor<1x2x1x1xf32> loc("one")
    %zero = axq.constant {value = dense<0.0> : tensor<f32>} : tensor<f32> loc("zero")
    %i1 = axq.mul %x, %one : (tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x3x3xf32> loc("times_one")
    %same = axq.add %zero, %i1 : (tensor<f32>, tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> loc("plus_zero")
    %w = axq.constant {value = dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>} : tensor<2x2x1x1xf32> loc("conv.weight")
    %b = axq.constant {value = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<2xf32> loc("conv.bias")
    %conv = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32> loc("conv")
    %bn_scale = axq.mul %conv, %k : (tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x3x3xf32> loc("bn.mul")
    %bn = axq.add %bn_scale, %k : (tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x3x3xf32> loc("bn.add")
    %r = axq.clip %x {min = 0.0 : f64, max = 0x7FF0000000000000 : f64} : tensor<1x2x3x3xf32> -> tensor<1x2x3x3xf32> loc("relu")
    %relu6 = axq.clip %r {min = 0.0 : f64, max = 6.0 : f64} : tensor<1x2x3x3xf32> -> tensor<1x2x3x3xf32> loc("relu6")
    %fused = axq.clip %q {min = 0.0 : f64, max = 6.0 : f64} : tensor<1x2x3x3x!axq.q<i8, 0.02:-128>> -> tensor<1x2x3x3x!axq.q<i8, 0.02:-128>> loc("fused_relu6")
    %clamps = axq.clip %q {min = 0.0 : f64, max = 2.0 : f64} : tensor<1x2x3x3x!axq.q<i8, 0.02:-128>> -> tensor<1x2x3x3x!axq.q<i8, 0.02:-128>> loc("relu2")
    func.return %scaled, %shifted, %same, %bn, %relu6, %fused, %clamps : tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3x!axq.q<i8, 0.02:-128>>, tensor<1x2x3x3x!axq.q<i8, 0.02:-128>>
  }
}

// x * 2 * k is x * (2 k); x + 2 - k is x + (2 - k).
// CHECK:      %[[S:.*]] = axq.constant {value = dense<{{\[\[\[\[}}1.000000e+00]], {{\[\[}}5.000000e-01]]]]> : tensor<1x2x1x1xf32>} : tensor<1x2x1x1xf32> loc("mul2")
// CHECK-NEXT: %[[SCALED:.*]] = axq.mul %x, %[[S]] : (tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x3x3xf32> loc("mul2")
// CHECK-NEXT: %[[T:.*]] = axq.constant {value = dense<{{\[\[\[\[}}1.500000e+00]], {{\[\[}}1.750000e+00]]]]> : tensor<1x2x1x1xf32>} : tensor<1x2x1x1xf32> loc("sub1")
// CHECK-NEXT: %[[SHIFTED:.*]] = axq.add %x, %[[T]] : (tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x3x3xf32> loc("sub1")
// The BatchNorm's per-channel scale and shift are in the conv's weights and bias.
// CHECK-NEXT: %[[W:.*]] = axq.constant {value = dense<{{\[\[\[\[}}5.000000e-01]], {{\[\[}}1.000000e+00]]], {{\[\[\[}}7.500000e-01]], {{\[\[}}1.000000e+00]]]]> : tensor<2x2x1x1xf32>} : tensor<2x2x1x1xf32> loc("conv.weight")
// CHECK-NEXT: %[[B:.*]] = axq.constant {value = dense<[1.000000e+00, 0.000000e+00]> : tensor<2xf32>} : tensor<2xf32> loc("conv.bias")
// CHECK-NEXT: %[[BN:.*]] = axq.conv2d %x, %[[W]], %[[B]] {{.*}} loc("conv")
// CHECK-NEXT: %[[RELU6:.*]] = axq.clip %x {min = 0.000000e+00 : f64, max = 6.000000e+00 : f64} : tensor<1x2x3x3xf32> -> tensor<1x2x3x3xf32> loc("relu6")
// quantize(0) = -128 and quantize(6) >= 127 in 0.02:-128: the first clip clamps nothing and goes.
// CHECK-NEXT: %[[CLAMPS:.*]] = axq.clip %q {min = 0.000000e+00 : f64, max = 2.000000e+00 : f64} {{.*}} loc("relu2")
// x * 1 + 0 is x; the ReLU6 of q is q.
// CHECK-NEXT: func.return %[[SCALED]], %[[SHIFTED]], %x, %[[BN]], %[[RELU6]], %q, %[[CLAMPS]]

// -----

// Reshapes of reshapes, on either graph: Flatten then the 1x1 conv's reshape is no reshape.
builtin.module {
  func.func @main(%p: tensor<1x8x1x1x!axq.q<i8, 0.1:2>> {axq.name = "p"}) -> (tensor<1x8x1x1x!axq.q<i8, 0.1:2>> {axq.name = "back"}, tensor<2x4xf32> {axq.name = "other"}) {
    %f = axq.reshape %p : tensor<1x8x1x1x!axq.q<i8, 0.1:2>> -> tensor<1x8x!axq.q<i8, 0.1:2>> loc("flatten")
    %back = axq.reshape %f : tensor<1x8x!axq.q<i8, 0.1:2>> -> tensor<1x8x1x1x!axq.q<i8, 0.1:2>> loc("fc")
    %d = axq.dequantize %p : tensor<1x8x1x1x!axq.q<i8, 0.1:2>> -> tensor<1x8x1x1xf32> loc("p")
    %r = axq.reshape %d : tensor<1x8x1x1xf32> -> tensor<8xf32> loc("r1")
    %other = axq.reshape %r : tensor<8xf32> -> tensor<2x4xf32> loc("r2")
    func.return %back, %other : tensor<1x8x1x1x!axq.q<i8, 0.1:2>>, tensor<2x4xf32>
  }
}

// CHECK:      %[[D:.*]] = axq.dequantize %p
// CHECK-NEXT: %[[R:.*]] = axq.reshape %[[D]] : tensor<1x8x1x1xf32> -> tensor<2x4xf32> loc("r2")
// CHECK-NEXT: func.return %p, %[[R]]

// -----

// A Linear on [1, T, C] exported as MatMul + Add, after rewrite-dense-to-conv2d: the bias Add
// (and a per-channel scale) read the reshape back to [1, T, C] and fold into the 1x1 conv.
// A reshape whose last axis is not the channels keeps its Add.
builtin.module {
  func.func @main(%x: tensor<4x2x1x1xf32> {axq.name = "x"}) -> (tensor<1x4x2xf32> {axq.name = "linear"}, tensor<1x8xf32> {axq.name = "flat"}) {
    %w = axq.constant {value = dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>} : tensor<2x2x1x1xf32> loc("fc.weight")
    %b = axq.constant {value = dense<0.0> : tensor<2xf32>} : tensor<2xf32> loc("fc.bias")
    %t = axq.constant {value = dense<[0.5, -0.25]> : tensor<2xf32>} : tensor<2xf32> loc("fc.b")
    %s = axq.constant {value = dense<[[[2.0, 3.0]]]> : tensor<1x1x2xf32>} : tensor<1x1x2xf32> loc("scale")
    %y = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<4x2x1x1xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<4x2x1x1xf32> loc("fc.matmul")
    %r = axq.reshape %y : tensor<4x2x1x1xf32> -> tensor<1x4x2xf32> loc("fc.matmul")
    %a = axq.add %r, %t : (tensor<1x4x2xf32>, tensor<2xf32>) -> tensor<1x4x2xf32> loc("fc.add")
    %linear = axq.mul %a, %s : (tensor<1x4x2xf32>, tensor<1x1x2xf32>) -> tensor<1x4x2xf32> loc("scale.mul")
    %y2 = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<4x2x1x1xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<4x2x1x1xf32> loc("fc2.matmul")
    %r2 = axq.reshape %y2 : tensor<4x2x1x1xf32> -> tensor<1x8xf32> loc("fc2.matmul")
    %u = axq.constant {value = dense<[1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]> : tensor<8xf32>} : tensor<8xf32> loc("u")
    %flat = axq.add %r2, %u : (tensor<1x8xf32>, tensor<8xf32>) -> tensor<1x8xf32> loc("flat.add")
    func.return %linear, %flat : tensor<1x4x2xf32>, tensor<1x8xf32>
  }
}

// (y + t) * s: weights times s per output channel, bias (0 + t) * s.
// CHECK:      %[[W:.*]] = axq.constant {value = dense<{{\[\[\[\[}}2.000000e+00]], {{\[\[}}4.000000e+00]]], {{\[\[\[}}9.000000e+00]], {{\[\[}}1.200000e+01]]]]> : tensor<2x2x1x1xf32>} : tensor<2x2x1x1xf32> loc("fc.weight")
// CHECK-NEXT: %[[B:.*]] = axq.constant {value = dense<[1.000000e+00, -7.500000e-01]> : tensor<2xf32>} : tensor<2xf32> loc("fc.bias")
// CHECK-NEXT: %[[Y:.*]] = axq.conv2d %x, %[[W]], %[[B]] {{.*}} -> tensor<4x2x1x1xf32> loc("fc.matmul")
// CHECK-NEXT: %[[LINEAR:.*]] = axq.reshape %[[Y]] : tensor<4x2x1x1xf32> -> tensor<1x4x2xf32> loc("fc.matmul")
// CHECK-NOT:  loc("fc.add")
// CHECK:      %[[Y2:.*]] = axq.conv2d %x, %{{.*}}, %{{.*}} {{.*}} loc("fc2.matmul")
// CHECK-NEXT: %[[R2:.*]] = axq.reshape %[[Y2]] : tensor<4x2x1x1xf32> -> tensor<1x8xf32> loc("fc2.matmul")
// CHECK:      %[[FLAT:.*]] = axq.add %[[R2]], %{{.*}} {{.*}} loc("flat.add")
// CHECK-NEXT: func.return %[[LINEAR]], %[[FLAT]]
