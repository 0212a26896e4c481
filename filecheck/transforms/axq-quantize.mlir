// RUN: xdsl-opt %s --split-input-file -p 'axq-quantize{quantization_scheme=per_tensor_min_max}' | filecheck %s
// RUN: xdsl-opt %s --split-input-file -p 'axq-quantize{remove_io_quantization=true}' | filecheck %s --check-prefix=IO

// A calibrated float graph: conv -> relu6 -> max pool, plus an add of a constant.
builtin.module {
  func.func @main(%x: tensor<1x2x4x4xf32> {axq.calibration = {histogram = array<f64: -1.0, 1.0>, min_max = array<f64: -2.0, 2.0>}, axq.name = "input"}) -> (tensor<1x2x2x2xf32> {axq.name = "pooled"}, tensor<1x2x4x4xf32> {axq.name = "shifted"}) {
    %w = axq.constant {value = dense<[[[[0.5]], [[-0.25]]], [[[1.0]], [[0.125]]]]> : tensor<2x2x1x1xf32>} : tensor<2x2x1x1xf32>
    %b = axq.constant {value = dense<[0.1, -0.2]> : tensor<2xf32>} : tensor<2xf32>
    %conv = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, axq.calibration = [{histogram = array<f64: -1.5, 1.5>, min_max = array<f64: -3.0, 3.0>}]} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
    %relu6 = axq.clip %conv {min = 0.0 : f64, max = 6.0 : f64, axq.calibration = [{histogram = array<f64: 0.0, 1.5>, min_max = array<f64: 0.0, 2.55>}]} : tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
    %pool = axq.max_pool %relu6 {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, axq.calibration = [{histogram = array<f64: 0.0, 1.5>, min_max = array<f64: 0.0, 2.55>}]} : tensor<1x2x4x4xf32> -> tensor<1x2x2x2xf32>
    %k = axq.constant {value = dense<0.5> : tensor<1x2x1x1xf32>} : tensor<1x2x1x1xf32>
    %add = axq.add %x, %k {axq.calibration = [{histogram = array<f64: -0.5, 1.5>, min_max = array<f64: -1.5, 2.5>}]} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
    func.return %pool, %add : tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>
  }
}

// The input is quantized with its min-max range [-2, 2]; histogram's [-1, 1] is not used.
// CHECK:      func.func @main(%x: tensor<1x2x4x4xf32> {axq.name = "input"})
// CHECK-NOT:  axq.calibration
// CHECK-NEXT:   %x_1 = axq.quantize %x : tensor<1x2x4x4xf32> -> tensor<1x2x4x4x!axq.q<i8, 0.01568627543747425:-1>>
// Weights: symmetric int8 per output channel (axis 0), bias int32 at s_in * s_w.
// CHECK-NEXT:   %0 = axq.constant {value = dense<{{\[\[\[\[}}127]], {{\[\[}}-64]]], {{\[\[\[}}127]], {{\[\[}}16]]]]> : tensor<2x2x1x1xi8>} : tensor<2x2x1x1x!axq.q<i8, axis 0, [0.003937007859349251:0, 0.007874015718698502:0]>>
// CHECK-NEXT:   %1 = axq.constant {value = dense<[1619, -1619]> : tensor<2xi32>} : tensor<2x!axq.q<i32, axis 0, [6.175698968125323e-05:0, 0.00012351397936250647:0]>>
// The conv takes the range of the relu6 / max pool chain after it (activation fusion):
// CHECK-NEXT:   %conv = axq.conv2d %x_1, %0, %1
// CHECK-SAME:     -> tensor<1x2x4x4x!axq.q<i8, 0.009999999776482582:-128>>
// CHECK-NEXT:   %relu6 = axq.clip %conv {min = 0.000000e+00 : f64, max = 6.000000e+00 : f64} : tensor<1x2x4x4x!axq.q<i8, 0.009999999776482582:-128>> -> tensor<1x2x4x4x!axq.q<i8, 0.009999999776482582:-128>>
// CHECK-NEXT:   %pool = axq.max_pool %relu6
// CHECK-SAME:     : tensor<1x2x4x4x!axq.q<i8, 0.009999999776482582:-128>> -> tensor<1x2x2x2x!axq.q<i8, 0.009999999776482582:-128>>
// A constant operand of an add is int8 with its own range; the add has its own output type.
// CHECK-NEXT:   %2 = axq.constant {value = dense<127> : tensor<1x2x1x1xi8>} : tensor<1x2x1x1x!axq.q<i8, 0.0019607844296842813:-128>>
// CHECK-NEXT:   %add = axq.add %x_1, %2 : ({{.*}}) -> tensor<1x2x4x4x!axq.q<i8, 0.01568627543747425:-32>>
// CHECK-NEXT:   %3 = axq.dequantize %pool : tensor<1x2x2x2x!axq.q<i8, 0.009999999776482582:-128>> -> tensor<1x2x2x2xf32>
// CHECK-NEXT:   %4 = axq.dequantize %add : tensor<1x2x4x4x!axq.q<i8, 0.01568627543747425:-32>> -> tensor<1x2x4x4xf32>
// CHECK-NEXT:   func.return %3, %4 : tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>

// remove_io_quantization: the signature carries the int8 types (histogram ranges by default).
// IO:      func.func @main(%x: tensor<1x2x4x4x!axq.q<i8, 0.007843137718737125:-1>> {axq.name = "input"}) -> (tensor<1x2x2x2x!axq.q<i8, 0.0058823530562222:-128>> {axq.name = "pooled"}, tensor<1x2x4x4x!axq.q<i8, 0.007843137718737125:-64>> {axq.name = "shifted"})
// IO-NOT:  axq.quantize
// IO-NOT:  axq.dequantize
// IO:      func.return %pool, %add : tensor<1x2x2x2x!axq.q<i8, 0.0058823530562222:-128>>, tensor<1x2x4x4x!axq.q<i8, 0.007843137718737125:-64>>

// -----

// A tensor only a table reads is quantized for where the table is not flat. The sigmoid's
// output step is 1/255, so below -ln(509) = -6.23 (sigmoid < 1/510) every input gives code
// -128 and above 6.23 code 127: %x keeps [-6.24, 6.29] (254 steps of 0.0491 and a
// zero point floored to -1) instead of [-19.9, 20.1] (steps of 0.157). %y, which the mul
// reads too, keeps its calibrated range.
builtin.module {
  func.func @main(%x: tensor<1x8xf32> {axq.calibration = {histogram = array<f64: -20.0, 20.0>, min_max = array<f64: -20.0, 20.0>}, axq.name = "x"}, %y: tensor<1x8xf32> {axq.calibration = {histogram = array<f64: -20.0, 20.0>, min_max = array<f64: -20.0, 20.0>}, axq.name = "y"}) -> (tensor<1x8xf32> {axq.name = "gate"}, tensor<1x8xf32> {axq.name = "gated"}) {
    %gate = axq.lut %x {function = #axq<unary_function sigmoid>, params = {}, axq.calibration = [{histogram = array<f64: 0.0, 1.0>, min_max = array<f64: 0.0, 1.0>}]} : tensor<1x8xf32> -> tensor<1x8xf32>
    %g = axq.lut %y {function = #axq<unary_function sigmoid>, params = {}, axq.calibration = [{histogram = array<f64: 0.0, 1.0>, min_max = array<f64: 0.0, 1.0>}]} : tensor<1x8xf32> -> tensor<1x8xf32>
    %gated = axq.mul %y, %g {axq.calibration = [{histogram = array<f64: -20.0, 20.0>, min_max = array<f64: -20.0, 20.0>}]} : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
    func.return %gate, %gated : tensor<1x8xf32>, tensor<1x8xf32>
  }
}

// CHECK:      %x_1 = axq.quantize %x : tensor<1x8xf32> -> tensor<1x8x!axq.q<i8, 0.049135707318782806:-1>>
// CHECK-NEXT: %y_1 = axq.quantize %y : tensor<1x8xf32> -> tensor<1x8x!axq.q<i8, 0.1568627506494522:-1>>
// The narrowed table spends no entry on the plateau: its first code is -128, its second -127.
// CHECK-NEXT: %gate = axq.lut %x_1 {function = #axq<unary_function sigmoid>, params = {}, table = dense<"0x8081
