// RUN: xdsl-opt %s --split-input-file -p rewrite-dense-to-conv2d --print-debuginfo | filecheck %s

// A dense layer on rows [4, 16] and one on tokens [1, 3, 16], sharing one weight: 1x1
// convolutions over the rows, between reshapes that only add or drop axes of size 1.
builtin.module {
  func.func @main(%x: tensor<4x16xf32> {axq.name = "x"}, %t: tensor<1x3x16xf32> {axq.name = "t"}) -> (tensor<4x8xf32> {axq.name = "y"}, tensor<1x3x8xf32> {axq.name = "u"}) {
    %w = axq.constant {value = dense<0.5> : tensor<8x16xf32>} : tensor<8x16xf32> loc("fc.weight")
    %b = axq.constant {value = dense<0.25> : tensor<8xf32>} : tensor<8xf32> loc("fc.bias")
    %y = axq.dense %x, %w, %b : (tensor<4x16xf32>, tensor<8x16xf32>, tensor<8xf32>) -> tensor<4x8xf32> loc("fc")
    %u = axq.dense %t, %w, %b : (tensor<1x3x16xf32>, tensor<8x16xf32>, tensor<8xf32>) -> tensor<1x3x8xf32> loc("tokens")
    func.return %y, %u : tensor<4x8xf32>, tensor<1x3x8xf32>
  }
}

// One kernel for the shared weight, where the weight was; the old weight is gone.
// CHECK:      %[[K:.*]] = axq.constant {value = dense<5.000000e-01> : tensor<8x16x1x1xf32>} : tensor<8x16x1x1xf32> loc("fc.weight")
// CHECK-NEXT: %[[B:.*]] = axq.constant {{.*}} : tensor<8xf32> loc("fc.bias")
// CHECK-NEXT: %[[X:.*]] = axq.reshape %x : tensor<4x16xf32> -> tensor<4x16x1x1xf32> loc("fc")
// CHECK-NEXT: %[[C:.*]] = axq.conv2d %[[X]], %[[K]], %[[B]] {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<4x16x1x1xf32>, tensor<8x16x1x1xf32>, tensor<8xf32>) -> tensor<4x8x1x1xf32> loc("fc")
// CHECK-NEXT: %[[Y:.*]] = axq.reshape %[[C]] : tensor<4x8x1x1xf32> -> tensor<4x8xf32> loc("fc")
// CHECK-NEXT: %[[T:.*]] = axq.reshape %t : tensor<1x3x16xf32> -> tensor<3x16x1x1xf32> loc("tokens")
// CHECK-NEXT: %[[D:.*]] = axq.conv2d %[[T]], %[[K]], %[[B]] {{.*}} -> tensor<3x8x1x1xf32> loc("tokens")
// CHECK-NEXT: %[[U:.*]] = axq.reshape %[[D]] : tensor<3x8x1x1xf32> -> tensor<1x3x8xf32> loc("tokens")
// CHECK-NEXT: func.return %[[Y]], %[[U]]
// CHECK-NOT:  axq.dense

// -----

// A quantized dense layer keeps its types: the kernel is the int8 weight, per output channel.
builtin.module {
  func.func @main(%x: tensor<2x4x!axq.q<i8, 0.5:3>> {axq.name = "x"}) -> (tensor<2x2x!axq.q<i8, 0.25:-1>> {axq.name = "y"}) {
    %w = axq.constant {value = dense<[[1, -2, 3, -4], [5, 6, -7, 8]]> : tensor<2x4xi8>} : tensor<2x4x!axq.q<i8, axis 0, [0.01:0, 0.02:0]>>
    %b = axq.constant {value = dense<[10, -20]> : tensor<2xi32>} : tensor<2x!axq.q<i32, axis 0, [0.005:0, 0.01:0]>>
    %y = axq.dense %x, %w, %b : (tensor<2x4x!axq.q<i8, 0.5:3>>, tensor<2x4x!axq.q<i8, axis 0, [0.01:0, 0.02:0]>>, tensor<2x!axq.q<i32, axis 0, [0.005:0, 0.01:0]>>) -> tensor<2x2x!axq.q<i8, 0.25:-1>>
    func.return %y : tensor<2x2x!axq.q<i8, 0.25:-1>>
  }
}

// CHECK:      axq.constant {value = dense<{{\[\[\[\[}}1]], {{\[\[}}-2]], {{\[\[}}3]], {{\[\[}}-4]]], {{\[\[\[}}5]], {{\[\[}}6]], {{\[\[}}-7]], {{\[\[}}8]]]]> : tensor<2x4x1x1xi8>} : tensor<2x4x1x1x!axq.q<i8, axis 0, [0.01:0, 0.02:0]>>
// CHECK:      axq.reshape %x : tensor<2x4x!axq.q<i8, 0.5:3>> -> tensor<2x4x1x1x!axq.q<i8, 0.5:3>>
// CHECK-NEXT: axq.conv2d
// CHECK-SAME:   -> tensor<2x2x1x1x!axq.q<i8, 0.25:-1>>
// CHECK-NEXT: axq.reshape {{.*}} : tensor<2x2x1x1x!axq.q<i8, 0.25:-1>> -> tensor<2x2x!axq.q<i8, 0.25:-1>>
