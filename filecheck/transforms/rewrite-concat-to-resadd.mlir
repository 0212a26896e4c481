// RUN: xdsl-opt %s -p rewrite-concat-to-resadd --print-debuginfo | filecheck %s

// Quantized concats: on H (any sizes), on C at a PWORD boundary (64 + 8), on C inside a PWORD
// (8 + 8: left alone), and a float concat (left alone: exact only on the integer graph).
builtin.module {
  func.func @main(%a: tensor<1x8x2x4x!axq.q<i8, 0.1:-3>> {axq.name = "a"}, %b: tensor<1x8x3x4x!axq.q<i8, 0.1:-3>> {axq.name = "b"}, %c: tensor<1x64x2x4x!axq.q<i8, 0.1:-3>> {axq.name = "c"}, %f: tensor<1x8x2x4xf32> {axq.name = "f"}) -> (tensor<1x8x5x4x!axq.q<i8, 0.1:-3>> {axq.name = "h"}, tensor<1x72x2x4x!axq.q<i8, 0.1:-3>> {axq.name = "ch"}, tensor<1x16x2x4x!axq.q<i8, 0.1:-3>> {axq.name = "unaligned"}, tensor<1x16x2x4xf32> {axq.name = "float"}) {
    %h = axq.concat %a, %b {axis = 2 : i64} : (tensor<1x8x2x4x!axq.q<i8, 0.1:-3>>, tensor<1x8x3x4x!axq.q<i8, 0.1:-3>>) -> tensor<1x8x5x4x!axq.q<i8, 0.1:-3>> loc("cat_h")
    %ch = axq.concat %c, %a {axis = 1 : i64} : (tensor<1x64x2x4x!axq.q<i8, 0.1:-3>>, tensor<1x8x2x4x!axq.q<i8, 0.1:-3>>) -> tensor<1x72x2x4x!axq.q<i8, 0.1:-3>> loc("cat_c")
    %u = axq.concat %a, %a {axis = 1 : i64} : (tensor<1x8x2x4x!axq.q<i8, 0.1:-3>>, tensor<1x8x2x4x!axq.q<i8, 0.1:-3>>) -> tensor<1x16x2x4x!axq.q<i8, 0.1:-3>> loc("cat_unaligned")
    %fl = axq.concat %f, %f {axis = 1 : i64} : (tensor<1x8x2x4xf32>, tensor<1x8x2x4xf32>) -> tensor<1x16x2x4xf32> loc("cat_float")
    func.return %h, %ch, %u, %fl : tensor<1x8x5x4x!axq.q<i8, 0.1:-3>>, tensor<1x72x2x4x!axq.q<i8, 0.1:-3>>, tensor<1x16x2x4x!axq.q<i8, 0.1:-3>>, tensor<1x16x2x4xf32>
  }
}

// Each input padded with zeros (code -3) into its slice of the output, then added.
// CHECK:      %[[PA:.*]] = axq.pad %a {pads = array<i64: 0, 0, 0, 0, 0, 0, 3, 0>, value = 0.000000e+00 : f64, mode = #axq<pad_mode constant>} : tensor<1x8x2x4x!axq.q<i8, 0.1:-3>> -> tensor<1x8x5x4x!axq.q<i8, 0.1:-3>> loc("cat_h")
// CHECK-NEXT: %[[PB:.*]] = axq.pad %b {pads = array<i64: 0, 0, 2, 0, 0, 0, 0, 0>, value = 0.000000e+00 : f64, mode = #axq<pad_mode constant>} : tensor<1x8x3x4x!axq.q<i8, 0.1:-3>> -> tensor<1x8x5x4x!axq.q<i8, 0.1:-3>> loc("cat_h")
// CHECK-NEXT: %[[H:.*]] = axq.add %[[PA]], %[[PB]] : (tensor<1x8x5x4x!axq.q<i8, 0.1:-3>>, tensor<1x8x5x4x!axq.q<i8, 0.1:-3>>) -> tensor<1x8x5x4x!axq.q<i8, 0.1:-3>> loc("cat_h")
// CHECK-NEXT: %[[PC:.*]] = axq.pad %c {pads = array<i64: 0, 0, 0, 0, 0, 8, 0, 0>, {{.*}} -> tensor<1x72x2x4x!axq.q<i8, 0.1:-3>> loc("cat_c")
// CHECK-NEXT: %[[PD:.*]] = axq.pad %a {pads = array<i64: 0, 64, 0, 0, 0, 0, 0, 0>, {{.*}} -> tensor<1x72x2x4x!axq.q<i8, 0.1:-3>> loc("cat_c")
// CHECK-NEXT: %[[CH:.*]] = axq.add %[[PC]], %[[PD]] {{.*}} loc("cat_c")
// CHECK-NEXT: %[[U:.*]] = axq.concat %a, %a {axis = 1 : i64} {{.*}} loc("cat_unaligned")
// CHECK-NEXT: %[[F:.*]] = axq.concat %f, %f {axis = 1 : i64} {{.*}} loc("cat_float")
// CHECK-NEXT: func.return %[[H]], %[[CH]], %[[U]], %[[F]]
