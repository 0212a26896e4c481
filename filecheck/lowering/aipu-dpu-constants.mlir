// RUN: xdsl-opt %s -p 'aipu-dpu-constants{dpu_constants_home="global.ddr"}' | filecheck %s
// RUN: xdsl-opt %s -p aipu-dpu-constants | filecheck %s --check-prefix=L2

// The LUT only a DPU program reads goes to dpu_constants_home; the weights do not.

func.func @main(%x : tensor<1x4x64xi8>, %w : tensor<64x64xi8>) -> tensor<1x4x64xi8> {
  %t = aipu.const {value = dense<3> : tensor<256xi8>} : tensor<256xi8>
  %k = aipu.const {value = dense<1> : tensor<64x64xi8>} : tensor<64x64xi8>
  %y = aipu.eltwise(%x) : (tensor<1x4x64xi8>) -> tensor<1x4x64xi8> {
  ^bb0(%a : !aipu.vreg):
    %l = aipu.dpu.lut %a, %t : tensor<256xi8>
    aipu.dpu.yield %l
  }
  func.return %y : tensor<1x4x64xi8>
}

// CHECK: %t = aipu.const {value = dense<3> : tensor<256xi8>, home = #mem<space global.ddr>, pinned} : tensor<256xi8>
// CHECK: %k = aipu.const {value = dense<1> : tensor<64x64xi8>} : tensor<64x64xi8>

// L2: %t = aipu.const {value = dense<3> : tensor<256xi8>, home = #mem<space global.l2>, pinned} : tensor<256xi8>
// L2: %k = aipu.const {value = dense<1> : tensor<64x64xi8>} : tensor<64x64xi8>
