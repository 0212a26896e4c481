// RUN: xdsl-opt %s -p simplify-mac-before-after-lut --print-debuginfo | filecheck %s

// Multiply-adds around a table, x * sigmoid(x), x * hardsigmoid(x), the exported hard-swish
// x * clip(x + 3, 0, 6) / 6, the exported GELU 0.5 x (1 + erf(x / sqrt 2)), and a multiply-add
// whose result is read twice (left alone).
builtin.module {
  func.func @main(%x: tensor<1x4xf32> {axq.name = "x"}) -> (tensor<1x4xf32> {axq.name = "affine"}, tensor<1x4xf32> {axq.name = "silu"}, tensor<1x4xf32> {axq.name = "hardswish"}, tensor<1x4xf32> {axq.name = "exported_hardswish"}, tensor<1x4xf32> {axq.name = "gelu"}, tensor<1x4xf32> {axq.name = "shared"}) {
    %half = axq.constant {value = dense<0.5> : tensor<f32>} : tensor<f32> loc("half")
    %three = axq.constant {value = dense<3.0> : tensor<f32>} : tensor<f32> loc("three")
    %one = axq.constant {value = dense<1.0> : tensor<f32>} : tensor<f32> loc("one")
    %sixth = axq.constant {value = dense<0.16666667> : tensor<f32>} : tensor<f32> loc("sixth")
    %rsqrt2 = axq.constant {value = dense<0.70710677> : tensor<f32>} : tensor<f32> loc("rsqrt2")
    %a0 = axq.mul %x, %half : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32> loc("pre.mul")
    %a1 = axq.sub %a0, %three : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32> loc("pre.sub")
    %a2 = axq.lut %a1 {function = #axq<unary_function tanh>, params = {}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("tanh")
    %a3 = axq.mul %a2, %three : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32> loc("post.mul")
    %affine = axq.add %one, %a3 : (tensor<f32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("post.add")
    %s0 = axq.lut %x {function = #axq<unary_function sigmoid>, params = {}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("sigmoid")
    %silu = axq.mul %x, %s0 : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("silu")
    %h0 = axq.lut %x {function = #axq<unary_function hardsigmoid>, params = {alpha = 0.16666667 : f64, beta = 0.5 : f64}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("hardsigmoid")
    %hardswish = axq.mul %h0, %x : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("hardswish")
    %e0 = axq.add %x, %three : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32> loc("hs.add")
    %e1 = axq.clip %e0 {min = 0.0 : f64, max = 6.0 : f64} : tensor<1x4xf32> -> tensor<1x4xf32> loc("hs.clip")
    %e2 = axq.mul %x, %e1 : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("hs.mul")
    %exported_hardswish = axq.mul %e2, %sixth : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32> loc("hs.div")
    %g0 = axq.mul %x, %rsqrt2 : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32> loc("gelu.div")
    %g1 = axq.lut %g0 {function = #axq<unary_function erf>, params = {}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("gelu.erf")
    %g2 = axq.add %g1, %one : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32> loc("gelu.add")
    %g3 = axq.mul %x, %g2 : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("gelu.mul")
    %gelu = axq.mul %g3, %half : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32> loc("gelu.half")
    %t0 = axq.mul %x, %half : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32> loc("shared.mul")
    %t1 = axq.lut %t0 {function = #axq<unary_function sigmoid>, params = {}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("shared.sigmoid")
    %shared = axq.add %t1, %t0 : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("shared.add")
    func.return %affine, %silu, %hardswish, %exported_hardswish, %gelu, %shared : tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>
  }
}

// CHECK:      %[[HALF:.*]] = axq.constant {value = dense<5.000000e-01> : tensor<f32>} : tensor<f32> loc("half")
// 3 tanh(0.5 x - 3) + 1 is one table.
// CHECK-NEXT: %[[AFFINE:.*]] = axq.lut %x {function = #axq<unary_function tanh>, params = {pre_scale = 5.000000e-01 : f64, pre_shift = -3.000000e+00 : f64, post_scale = 3.000000e+00 : f64, post_shift = 1.000000e+00 : f64}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("post.add")
// CHECK-NEXT: %[[SILU:.*]] = axq.lut %x {function = #axq<unary_function silu>, params = {}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("silu")
// CHECK-NEXT: %[[HS:.*]] = axq.lut %x {function = #axq<unary_function hardswish>, params = {}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("hardswish")
// 6 * float32(1/6) is 1 within float32 rounding: a plain hard-swish table.
// CHECK-NEXT: %[[EXPORTED:.*]] = axq.lut %x {function = #axq<unary_function hardswish>, params = {}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("hs.div")
// CHECK-NEXT: %[[GELU:.*]] = axq.lut %x {function = #axq<unary_function gelu>, params = {}} : tensor<1x4xf32> -> tensor<1x4xf32> loc("gelu.half")
// CHECK-NEXT: %[[T0:.*]] = axq.mul %x, %[[HALF]] {{.*}} loc("shared.mul")
// CHECK-NEXT: %[[T1:.*]] = axq.lut %[[T0]] {function = #axq<unary_function sigmoid>, params = {}} {{.*}} loc("shared.sigmoid")
// CHECK-NEXT: %[[SHARED:.*]] = axq.add %[[T1]], %[[T0]] {{.*}} loc("shared.add")
// CHECK-NEXT: func.return %[[AFFINE]], %[[SILU]], %[[HS]], %[[EXPORTED]], %[[GELU]], %[[SHARED]]
