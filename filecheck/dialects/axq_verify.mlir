// RUN: xdsl-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics | filecheck %s

// Verifier errors of the axq dialect, one representative rule per op family; the pytest
// suite (tests/test_dialect_axq.py) checks every rule.

// Quantized types are checked as they are parsed.
// CHECK: zero point 200 out of range: i8 zero points lie in [-128, 127]
%x = "test.op"() : () -> tensor<4x!axq.q<i8, 0.05:200>>

// -----

// CHECK: quantization scales must be positive and finite, got -0.5
%x = "test.op"() : () -> tensor<2x!axq.q<i8, axis 0, [0.1:0, -0.5:0]>>

// -----

// CHECK: quantized storage must be a signless integer of 8 or 32 bits (i8, i32), got i16
%x = "test.op"() : () -> tensor<4x!axq.q<i16, 0.05:0>>

// -----

// CHECK: axq.requantize: a per-axis type along axis 1 needs 4 scales (the size of that axis), got 2
%x = "test.op"() : () -> tensor<1x4x8x8x!axq.q<i8, axis 1, [0.1:0, 0.2:0]>>
%y = axq.requantize %x : tensor<1x4x8x8x!axq.q<i8, axis 1, [0.1:0, 0.2:0]>> -> tensor<1x4x8x8x!axq.q<i8, 0.1:0>>

// -----

// CHECK: axq.constant data of type f32 cannot hold !axq.q<i8, 0.5:0> (it needs i8 data)
%w = axq.constant {value = dense<1.0> : tensor<4xf32>} : tensor<4x!axq.q<i8, 0.5:0>>

// -----

// CHECK: axq.conv2d: 4 input channels do not match weight (8, 2, 3, 3) with group 1
%x = "test.op"() : () -> tensor<1x4x8x8xf32>
%w = axq.constant {value = dense<0.5> : tensor<8x2x3x3xf32>} : tensor<8x2x3x3xf32>
%b = axq.constant {value = dense<0.0> : tensor<8xf32>} : tensor<8xf32>
%y = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x4x8x8xf32>, tensor<8x2x3x3xf32>, tensor<8xf32>) -> tensor<1x8x8x8xf32>

// -----

// The bias is added to the accumulator as it is, so its scale is s_in * s_w per channel.
// CHECK: axq.conv2d bias scale 0.01 of output channel 1 should be input scale x weight scale = 0.005
%x = "test.op"() : () -> tensor<1x2x4x4x!axq.q<i8, 0.02:-3>>
%w = axq.constant {value = dense<1> : tensor<2x2x1x1xi8>} : tensor<2x2x1x1x!axq.q<i8, axis 0, [0.5:0, 0.25:0]>>
%b = axq.constant {value = dense<0> : tensor<2xi32>} : tensor<2x!axq.q<i32, 0.01:0>>
%y = axq.conv2d %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4x!axq.q<i8, 0.02:-3>>, tensor<2x2x1x1x!axq.q<i8, axis 0, [0.5:0, 0.25:0]>>, tensor<2x!axq.q<i32, 0.01:0>>) -> tensor<1x2x4x4x!axq.q<i8, 0.1:0>>

// -----

// CHECK: axq.conv_transpose2d result shape (1, 2, 8, 8) should be (1, 2, 9, 9)
%x = "test.op"() : () -> tensor<1x4x4x4xf32>
%w = axq.constant {value = dense<0.5> : tensor<4x2x3x3xf32>} : tensor<4x2x3x3xf32>
%b = axq.constant {value = dense<0.0> : tensor<2xf32>} : tensor<2xf32>
%y = axq.conv_transpose2d %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : (tensor<1x4x4x4xf32>, tensor<4x2x3x3xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>

// -----

// CHECK: axq.dense input (1, 128) does not match weight (10, 64)
%x = "test.op"() : () -> tensor<1x128xf32>
%w = axq.constant {value = dense<0.5> : tensor<10x64xf32>} : tensor<10x64xf32>
%b = axq.constant {value = dense<0.0> : tensor<10xf32>} : tensor<10xf32>
%y = axq.dense %x, %w, %b : (tensor<1x128xf32>, tensor<10x64xf32>, tensor<10xf32>) -> tensor<1x10xf32>

// -----

// CHECK: axq.add mixes float and quantized tensors; convert with axq.quantize or axq.dequantize
%a = "test.op"() : () -> tensor<1x4xf32>
%b = "test.op"() : () -> tensor<1x4x!axq.q<i8, 0.1:0>>
%y = axq.add %a, %b : (tensor<1x4xf32>, tensor<1x4x!axq.q<i8, 0.1:0>>) -> tensor<1x4x!axq.q<i8, 0.1:0>>

// -----

// CHECK: axq.matmul shapes (2, 3, 4) and (2, 3, 5) do not match: contraction sizes 4 and 3 differ
%a = "test.op"() : () -> tensor<2x3x4xf32>
%b = "test.op"() : () -> tensor<2x3x5xf32>
%y = axq.matmul %a, %b : (tensor<2x3x4xf32>, tensor<2x3x5xf32>) -> tensor<2x3x5xf32>

// -----

// CHECK: a quantized axq.lut needs its 256-entry table (axq-quantize builds it)
%x = "test.op"() : () -> tensor<1x8x!axq.q<i8, 0.05:0>>
%y = axq.lut %x {function = #axq<unary_function sigmoid>, params = {}} : tensor<1x8x!axq.q<i8, 0.05:0>> -> tensor<1x8x!axq.q<i8, 0.00390625:-128>>

// -----

// CHECK: axq.clip needs min <= max, got min 6.0 and max 0.0
%x = "test.op"() : () -> tensor<1x8xf32>
%y = axq.clip %x {min = 6.0 : f64, max = 0.0 : f64} : tensor<1x8xf32> -> tensor<1x8xf32>

// -----

// CHECK: axq.softmax axis 2 out of range for a rank-2 tensor
%x = "test.op"() : () -> tensor<1x8xf32>
%y = axq.softmax %x {axis = 2 : i64} : tensor<1x8xf32> -> tensor<1x8xf32>

// -----

// CHECK: axq.quantize maps a float tensor to a quantized one, got !axq.q<i8, 0.1:0> -> !axq.q<i8, 0.2:0>
%x = "test.op"() : () -> tensor<1x8x!axq.q<i8, 0.1:0>>
%y = axq.quantize %x : tensor<1x8x!axq.q<i8, 0.1:0>> -> tensor<1x8x!axq.q<i8, 0.2:0>>

// -----

// CHECK: axq.reshape cannot change the element count: (1, 4, 8, 8) -> (1, 255)
%x = "test.op"() : () -> tensor<1x4x8x8xf32>
%y = axq.reshape %x : tensor<1x4x8x8xf32> -> tensor<1x255xf32>

// -----

// CHECK: axq.transpose perm [0, 2, 2, 1] is not a permutation of the 4 input axes
%x = "test.op"() : () -> tensor<1x4x8x8xf32>
%y = axq.transpose %x {perm = array<i64: 0, 2, 2, 1>} : tensor<1x4x8x8xf32> -> tensor<1x8x8x4xf32>

// -----

// CHECK: axq.pad result shape (1, 4, 8, 8) should be (1, 4, 10, 10)
%x = "test.op"() : () -> tensor<1x4x8x8xf32>
%y = axq.pad %x {pads = array<i64: 0, 0, 1, 1, 0, 0, 1, 1>, value = 0.0 : f64, mode = #axq<pad_mode constant>} : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>

// -----

// CHECK: axq.slice axes [2, 2] repeat an axis
%x = "test.op"() : () -> tensor<1x4x8x8xf32>
%y = axq.slice %x {starts = array<i64: 0, 1>, ends = array<i64: 4, 8>, axes = array<i64: 2, 2>, steps = array<i64: 1, 1>} : tensor<1x4x8x8xf32> -> tensor<1x4x4x8xf32>

// -----

// CHECK: axq.max_pool pads [2, 0, 0, 0] must be smaller than the kernel [2, 2]
%x = "test.op"() : () -> tensor<1x4x8x8xf32>
%y = axq.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 2, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : tensor<1x4x8x8xf32> -> tensor<1x4x5x4xf32>

// -----

// CHECK: axq.avg_pool window of extent 3 does not fit the padded input extent 2 along axis 2
%x = "test.op"() : () -> tensor<1x4x2x8xf32>
%y = axq.avg_pool %x {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = false} : tensor<1x4x2x8xf32> -> tensor<1x4x0x6xf32>

// -----

// CHECK: axq.global_pool result shape (1, 4) should be (1, 4, 1, 1)
%x = "test.op"() : () -> tensor<1x4x8x8xf32>
%y = axq.global_pool %x {kind = #axq<pool_kind avg>} : tensor<1x4x8x8xf32> -> tensor<1x4xf32>

// -----

// CHECK: axq.resize result shape (1, 4, 8, 8) should be (1, 4, 16, 16)
%x = "test.op"() : () -> tensor<1x4x8x8xf32>
%y = axq.resize %x {mode = #axq<resize_mode nearest>, scales = array<f64: 1.0, 1.0, 2.0, 2.0>, coordinate_transform = #axq<coordinate_transform asymmetric>, nearest_rounding = #axq<nearest_rounding floor>} : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>

// -----

// Concatenation moves codes: inputs of another type are requantized first.
// CHECK: axq.concat moves codes without rescaling, so its result has the input's element type: got !axq.q<i8, 0.1:0> for !axq.q<i8, 0.2:0>
%a = "test.op"() : () -> tensor<1x2x!axq.q<i8, 0.1:0>>
%b = "test.op"() : () -> tensor<1x2x!axq.q<i8, 0.2:0>>
%y = axq.concat %a, %b {axis = 1 : i64} : (tensor<1x2x!axq.q<i8, 0.1:0>>, tensor<1x2x!axq.q<i8, 0.2:0>>) -> tensor<1x4x!axq.q<i8, 0.1:0>>

// -----

// CHECK: axq.split sizes [1, 2] do not add up to 4
%x = "test.op"() : () -> tensor<1x4xf32>
%lo, %hi = axq.split %x {axis = 1 : i64} : tensor<1x4xf32> -> tensor<1x1xf32>, tensor<1x2xf32>

// -----

// CHECK: axq.constant needs a dense `value` in its attribute dictionary
%c = axq.constant {val = dense<1.0> : tensor<f32>} : tensor<f32>
