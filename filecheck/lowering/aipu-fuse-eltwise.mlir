// RUN: xdsl-opt %s --split-input-file -p aipu-fuse-eltwise | filecheck %s

// A table lookup of %x whose result only the add reads: one program, the looked-up codes
// in a register; the micro-ops keep the order of their layers.

func.func @main(%x : tensor<1x4x64xi8>) -> tensor<1x4x64xi8> {
  %t = aipu.const {value = dense<3> : tensor<256xi8>} : tensor<256xi8>
  %y = aipu.eltwise(%x) : (tensor<1x4x64xi8>) -> tensor<1x4x64xi8> {
  ^bb0(%a : !aipu.vreg):
    %l = aipu.dpu.lut %a, %t : tensor<256xi8>
    aipu.dpu.yield %l
  }
  %z = aipu.eltwise(%y, %x) : (tensor<1x4x64xi8>, tensor<1x4x64xi8>) -> tensor<1x4x64xi8> {
  ^bb0(%b : !aipu.vreg, %c : !aipu.vreg):
    %s = aipu.dpu.add %b, %c
    %q = aipu.dpu.clamp %s, -128, 127
    aipu.dpu.yield %q
  }
  func.return %z : tensor<1x4x64xi8>
}

// CHECK:      %t = aipu.const
// CHECK-NEXT: %z = aipu.eltwise(%x) : (tensor<1x4x64xi8>) -> tensor<1x4x64xi8> {
// CHECK-NEXT: ^bb0(%0: !aipu.vreg):
// CHECK-NEXT:   %l = aipu.dpu.lut %0, %t : tensor<256xi8>
// CHECK-NEXT:   %s = aipu.dpu.add %l, %0
// CHECK-NEXT:   %q = aipu.dpu.clamp %s, -128, 127
// CHECK-NEXT:   aipu.dpu.yield %q
// CHECK-NEXT: }
// CHECK-NEXT: func.return %z : tensor<1x4x64xi8>

// -----

// A result read outside the group (here: returned) stays its own layer.

func.func @main(%x : tensor<1x4x64xi8>) -> (tensor<1x4x64xi8>, tensor<1x4x64xi8>) {
  %y = aipu.eltwise(%x) : (tensor<1x4x64xi8>) -> tensor<1x4x64xi8> {
  ^bb0(%a : !aipu.vreg):
    %n = aipu.dpu.clamp %a, 0, 127
    aipu.dpu.yield %n
  }
  %z = aipu.eltwise(%y) : (tensor<1x4x64xi8>) -> tensor<1x4x64xi8> {
  ^bb0(%b : !aipu.vreg):
    %m = aipu.dpu.clamp %b, -5, 5
    aipu.dpu.yield %m
  }
  func.return %y, %z : tensor<1x4x64xi8>, tensor<1x4x64xi8>
}

// CHECK: %y = aipu.eltwise(%x)
// CHECK: %z = aipu.eltwise(%y)
