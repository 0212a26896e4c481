// RUN: xdsl-opt %s -p 'apply-pword-padding{softmax_neutral_value=-50000.0}' --print-debuginfo | filecheck %s

// @pays: conv1's 40 output channels reach conv2 through a softmax over channels. Padded at
// conv1 (24 more output channels, zero weights and bias), the softmax masks lanes 40..63
// with the neutral value and conv2 reads all 64 through zero weights: no slice remains.
// @output_only: a conv whose only consumer is the graph output is left alone (a slice
// copy would cost more than it saves).
builtin.module {
  func.func @pays(%x: tensor<1x8x4x4x!axq.q<i8, 0.1:-3>> {axq.name = "x"}) -> (tensor<1x32x4x4x!axq.q<i8, 0.05:-3>> {axq.name = "y"}) {
    %w1 = axq.constant {value = dense<1> : tensor<40x8x1x1xi8>} : tensor<40x8x1x1x!axq.q<i8, 0.01:0>> loc("w1")
    %b1 = axq.constant {value = dense<5> : tensor<40xi32>} : tensor<40x!axq.q<i32, 0.001:0>> loc("b1")
    %c1 = axq.conv2d %x, %w1, %b1 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x8x4x4x!axq.q<i8, 0.1:-3>>, tensor<40x8x1x1x!axq.q<i8, 0.01:0>>, tensor<40x!axq.q<i32, 0.001:0>>) -> tensor<1x40x4x4x!axq.q<i8, 0.05:-3>> loc("conv1")
    %s = axq.softmax %c1 {axis = 1 : i64} : tensor<1x40x4x4x!axq.q<i8, 0.05:-3>> -> tensor<1x40x4x4x!axq.q<i8, 0.00390625:-128>> loc("softmax")
    %w2 = axq.constant {value = dense<1> : tensor<32x40x1x1xi8>} : tensor<32x40x1x1x!axq.q<i8, 0.01:0>> loc("w2")
    %b2 = axq.constant {value = dense<0> : tensor<32xi32>} : tensor<32x!axq.q<i32, 3.90625e-05:0>> loc("b2")
    %c2 = axq.conv2d %s, %w2, %b2 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x40x4x4x!axq.q<i8, 0.00390625:-128>>, tensor<32x40x1x1x!axq.q<i8, 0.01:0>>, tensor<32x!axq.q<i32, 3.90625e-05:0>>) -> tensor<1x32x4x4x!axq.q<i8, 0.05:-3>> loc("conv2")
    func.return %c2 : tensor<1x32x4x4x!axq.q<i8, 0.05:-3>>
  }
  func.func @output_only(%x: tensor<1x8x4x4x!axq.q<i8, 0.1:-3>> {axq.name = "x"}) -> (tensor<1x40x4x4x!axq.q<i8, 0.05:-3>> {axq.name = "y"}) {
    %w1 = axq.constant {value = dense<1> : tensor<40x8x1x1xi8>} : tensor<40x8x1x1x!axq.q<i8, 0.01:0>> loc("w1")
    %b1 = axq.constant {value = dense<5> : tensor<40xi32>} : tensor<40x!axq.q<i32, 0.001:0>> loc("b1")
    %c1 = axq.conv2d %x, %w1, %b1 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x8x4x4x!axq.q<i8, 0.1:-3>>, tensor<40x8x1x1x!axq.q<i8, 0.01:0>>, tensor<40x!axq.q<i32, 0.001:0>>) -> tensor<1x40x4x4x!axq.q<i8, 0.05:-3>> loc("conv1")
    func.return %c1 : tensor<1x40x4x4x!axq.q<i8, 0.05:-3>>
  }
}

// CHECK-LABEL: func.func @pays
// CHECK:       %[[W1:.*]] = axq.constant {value = dense<"0x{{(01)+(00)+}}"> : tensor<64x8x1x1xi8>} : tensor<64x8x1x1x!axq.q<i8, 0.01:0>> loc("w1")
// CHECK-NEXT:  %[[B1:.*]] = axq.constant {value = dense<[{{(5, )+(0, )+}}0]> : tensor<64xi32>} : tensor<64x!axq.q<i32, 0.001:0>> loc("b1")
// CHECK-NEXT:  %[[C1:.*]] = axq.conv2d %x, %[[W1]], %[[B1]] {{.*}} -> tensor<1x64x4x4x!axq.q<i8, 0.05:-3>> loc("conv1")
// CHECK-NEXT:  %[[S:.*]] = axq.softmax %[[C1]] {axis = 1 : i64, valid_length = 40 : i64, neutral_value = -5.000000e+04 : f64} : tensor<1x64x4x4x!axq.q<i8, 0.05:-3>> -> tensor<1x64x4x4x!axq.q<i8, 0.00390625:-128>> loc("softmax")
// CHECK-NEXT:  %[[B2:.*]] = axq.constant {value = dense<0> : tensor<32xi32>}
// CHECK-NEXT:  %[[W2:.*]] = axq.constant {value = dense<"0x{{((01)+(00)+)+}}"> : tensor<32x64x1x1xi8>} : tensor<32x64x1x1x!axq.q<i8, 0.01:0>> loc("w2")
// CHECK-NEXT:  %[[C2:.*]] = axq.conv2d %[[S]], %[[W2]], %[[B2]] {{.*}} -> tensor<1x32x4x4x!axq.q<i8, 0.05:-3>> loc("conv2")
// CHECK-NEXT:  func.return %[[C2]]
// CHECK-NOT:   axq.slice

// CHECK-LABEL: func.func @output_only
// CHECK:       axq.conv2d {{.*}} -> tensor<1x40x4x4x!axq.q<i8, 0.05:-3>> loc("conv1")
// CHECK-NEXT:  func.return
