// RUN: xdsl-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics | filecheck %s

// Verifier errors of the aipu and mem dialects, one representative rule per op; the pytest
// suite (tests/test_dialect_aipu_mem.py) checks every rule.

// CHECK: an L1 pool belongs to one core: give `core` for L1 only
mem.pool @l1 global.l1 capacity 4096

// -----

// CHECK: core 4 out of range: the AIPU has 4 cores
mem.pool @l1 global.l1 core 4 capacity 4096

// -----

// CHECK: buffer [4096, 8192) overflows pool @l1 of 4096 bytes
mem.pool @l1 global.l1 core 0 capacity 4096
%x = mem.buffer @l1 size 4096 align 64 offset 4096 : !mem.buffer<4096xi8, global.l1>

// -----

// CHECK: buffer in global.l2 but pool @l1 is global.l1
mem.pool @l1 global.l1 core 0 capacity 4096
%x = mem.buffer @l1 size 64 align 64 : !mem.buffer<64xi8, global.l2>

// -----

// CHECK: offset 32 is not a multiple of alignment 64
mem.pool @l1 global.l1 core 0 capacity 4096
%x = mem.buffer @l1 size 64 align 64 offset 32 : !mem.buffer<64xi8, global.l1>

// -----

// CHECK: view out of bounds in dimension 1: elements 0..59 of a buffer of size 56
mem.pool @l1 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1 size 200704 align 64 : !mem.buffer<1x56x56x64xi8, global.l1>
aipu.core 0 {
  aipu.tile_loop %i = 0 to 15 {
    %v = mem.view %x[0, 4 * %i, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
  }
}

// -----

// CHECK: a view has the element type and memory space of its buffer
mem.pool @l1 global.l1 core 0 capacity 4096
%x = mem.buffer @l1 size 64 align 64 : !mem.buffer<64xi8, global.l1>
%v = mem.view %x[0] : !mem.buffer<64xi8, global.l1> -> !mem.view<16xi32, global.l1>

// -----

// CHECK: core 1 uses a buffer in @l1_core0, the L1 of core 0
mem.pool @l1_core0 global.l1 core 0 capacity 4096
%w = mem.buffer @l1_core0 size 4096 align 64 : !mem.buffer<64x64xi8, global.l1>
aipu.core 1 {
  %t = aipu.imc_load ins(%w : !mem.buffer<64x64xi8, global.l1>) weightset 0
}

// -----

// CHECK: tile loop needs 0 <= lb < ub, got 3 to 3
aipu.core 0 {
  aipu.tile_loop %i = 3 to 3 {
  }
}

// -----

// CHECK: 'aipu.tile_loop' expects ancestor op 'aipu.core'
aipu.tile_loop %i = 0 to 3 {
}

// -----

// CHECK: weightset 4 out of range 0..3
mem.pool @l1 global.l1 core 0 capacity 1048576
%w = mem.buffer @l1 size 4096 align 64 : !mem.buffer<64x64xi8, global.l1>
aipu.core 0 {
  %t = aipu.imc_load ins(%w : !mem.buffer<64x64xi8, global.l1>) weightset 4
}

// -----

// CHECK: ICR factor 4 with N 32 does not fit the 64 MVM columns
mem.pool @l1 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
%y = mem.buffer @l1 size 4096 align 64 : !mem.buffer<1x4x8x32xi32, global.l1>
aipu.core 0 {
  %t = aipu.mvm ins(%x : !mem.buffer<1x4x8x64xi8, global.l1>) outs(%y : !mem.buffer<1x4x8x32xi32, global.l1>) {weightset = 0 : i64, k = 64 : i64, n = 32 : i64, in_c = 64 : i64, icr = 4 : i64}
}

// -----

// CHECK: without swICR each tap is whole PWORDs: in_c 3 is not a multiple of 64
mem.pool @l1 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
%y = mem.buffer @l1 size 4096 align 64 : !mem.buffer<1x4x8x32xi32, global.l1>
aipu.core 0 {
  %t = aipu.mvm ins(%x : !mem.buffer<1x4x8x64xi8, global.l1>) outs(%y : !mem.buffer<1x4x8x32xi32, global.l1>) {weightset = 0 : i64, k = 3 : i64, n = 32 : i64, in_c = 3 : i64}
}

// -----

// CHECK: output height 4 does not match input height 4 (expected 2)
mem.pool @l1 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
aipu.core 0 {
  %t = aipu.dwpu max ins(%x : !mem.buffer<1x4x8x64xi8, global.l1>) outs(%x : !mem.buffer<1x4x8x64xi8, global.l1>) {kernel = array<i64: 3, 3>}
}

// -----

// CHECK: global pooling of [1, 4, 8, 64] gives [N, 1, 1, C]
mem.pool @l1 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
%y = mem.buffer @l1 size 64 align 64 : !mem.buffer<1x1x1x32xi8, global.l1>
aipu.core 0 {
  %t = aipu.dwpu global_max ins(%x : !mem.buffer<1x4x8x64xi8, global.l1>) outs(%y : !mem.buffer<1x1x1x32xi8, global.l1>)
}

// -----

// CHECK: avg mode needs requant
mem.pool @l1 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
aipu.core 0 {
  %t = aipu.dwpu avg ins(%x : !mem.buffer<1x4x8x64xi8, global.l1>) outs(%x : !mem.buffer<1x4x8x64xi8, global.l1>)
}

// -----

// CHECK: the system DMA moves data between DDR and L2, not L1
mem.pool @l1 global.l1 core 0 capacity 4096
mem.pool @ddr global.ddr capacity 4096
%a = mem.buffer @ddr size 64 align 64 : !mem.buffer<64xi8, global.ddr>
%b = mem.buffer @l1 size 64 align 64 : !mem.buffer<64xi8, global.l1>
aipu.core 0 {
  %t = aipu.dma system ins(%a : !mem.buffer<64xi8, global.ddr>) outs(%b : !mem.buffer<64xi8, global.l1>)
}

// -----

// CHECK: DMA pattern reaches past the dest
mem.pool @l1 global.l1 core 0 capacity 4096
mem.pool @ddr global.ddr capacity 4096
%a = mem.buffer @ddr size 64 align 64 : !mem.buffer<64xi8, global.ddr>
%b = mem.buffer @l1 size 64 align 64 : !mem.buffer<64xi8, global.l1>
aipu.core 0 {
  %t = aipu.dma core ins(%a : !mem.buffer<64xi8, global.ddr>) outs(%b : !mem.buffer<64xi8, global.l1>) {sizes = array<i64: 8, 8>, src_strides = array<i64: 8, 1>, dst_strides = array<i64: 1, 8>, offsets = array<i64: 0, 1>}
}

// -----

// CHECK: fill value 200 out of int8 range
mem.pool @l1 global.l1 core 0 capacity 4096
%b = mem.buffer @l1 size 64 align 64 : !mem.buffer<64xi8, global.l1>
aipu.core 0 {
  %t = aipu.fill %b : !mem.buffer<64xi8, global.l1> value 200
}

// -----

// CHECK: token 32 out of range 0..31
aipu.core 0 {
  %t = aipu.token_wait dpu 32
}

// -----

// CHECK: dpu cannot signal completion of a mvm task
mem.pool @l1 global.l1 core 0 capacity 4096
%w = mem.buffer @l1 size 4096 align 64 : !mem.buffer<64x64xi8, global.l1>
aipu.core 0 {
  %t = aipu.imc_load ins(%w : !mem.buffer<64x64xi8, global.l1>) weightset 0
  aipu.token_signal dpu 0 after %t
}

// -----

// CHECK: aipu.imc_load runs on mvm but waits on a token_wait of dpu
mem.pool @l1 global.l1 core 0 capacity 4096
%w = mem.buffer @l1 size 4096 align 64 : !mem.buffer<64x64xi8, global.l1>
aipu.core 0 {
  %go = aipu.token_wait dpu 0
  %t = aipu.imc_load ins(%w : !mem.buffer<64x64xi8, global.l1>) weightset 0 after %go
}

// -----

// CHECK: loaded tile [1, 2, 8, 64] does not broadcast to [1, 4, 8, 64]
mem.pool @l1 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1 size 1024 align 64 : !mem.buffer<1x2x8x64xi8, global.l1>
%y = mem.buffer @l1 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
aipu.core 0 {
  %t = aipu.dpu {
    %a = aipu.dpu.load %x : !mem.buffer<1x2x8x64xi8, global.l1>
    aipu.dpu.store %a, %y : !mem.buffer<1x4x8x64xi8, global.l1>
  }
}

// -----

// CHECK: a LUT has 256 entries, got shape [128]
mem.pool @l1 global.l1 core 0 capacity 1048576
%y = mem.buffer @l1 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
%lut = mem.buffer @l1 size 128 align 64 : !mem.buffer<128xi8, global.l1>
aipu.core 0 {
  %t = aipu.dpu {
    %a = aipu.dpu.load %y : !mem.buffer<1x4x8x64xi8, global.l1>
    %b = aipu.dpu.lut %a, %lut : !mem.buffer<128xi8, global.l1>
    aipu.dpu.store %b, %y : !mem.buffer<1x4x8x64xi8, global.l1>
  }
}

// -----

// CHECK: zero point 200 out of int8 range
mem.pool @l1 global.l1 core 0 capacity 1048576
%y = mem.buffer @l1 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
aipu.core 0 {
  %t = aipu.dpu {
    %a = aipu.dpu.load %y : !mem.buffer<1x4x8x64xi8, global.l1>
    %b = aipu.dpu.requant %a multiplier 1073741824 shift 31 zero_point 200
    aipu.dpu.store %b, %y : !mem.buffer<1x4x8x64xi8, global.l1>
  }
}

// -----

// CHECK: shift 63 out of range 0..62
mem.pool @l1 global.l1 core 0 capacity 1048576
%y = mem.buffer @l1 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
aipu.core 0 {
  %t = aipu.dpu {
    %a = aipu.dpu.load %y : !mem.buffer<1x4x8x64xi8, global.l1>
    %b = aipu.dpu.rescale %a multiplier 1073741824 shift 63
    aipu.dpu.store %b, %y : !mem.buffer<1x4x8x64xi8, global.l1>
  }
}

// -----

// CHECK: a reinterpretation keeps the bytes and the memory space
mem.pool @l1 global.l1 core 0 capacity 4096
%b = mem.buffer @l1 size 64 align 64 : !mem.buffer<64xi8, global.l1>
%r = mem.reinterpret %b : !mem.buffer<64xi8, global.l1> -> !mem.buffer<16xi32, global.l2>

// -----

// Layers.

// CHECK: perm [0, 1, 1, 3] is not a permutation of 4 axes
%x = "test.op"() : () -> tensor<1x64x4x8xi8>
%d = aipu.to_device %x {perm = array<i64: 0, 1, 1, 3>} : tensor<1x64x4x8xi8> -> tensor<1x4x8x64xi8>

// -----

// CHECK: weights must be [576, 16] (or one such matrix per image, [1, 576, 16]), got [64, 16]
%x = "test.op"() : () -> tensor<1x4x8x64xi8>
%w = "test.op"() : () -> tensor<64x16xi8>
%t = "test.op"() : () -> tensor<16x4xi32>
%c = aipu.conv %x, %w, %t {in_c = 64 : i64, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x4x8x64xi8>, tensor<64x16xi8>, tensor<16x4xi32>) -> tensor<1x4x8x16xi8>

// -----

// Attention heads token-major: images on axis 2 of [1, H, images, C] need a leading 1.
// CHECK: image_axes [2, 1, 0]: images sit on axis 0, on axis 2 of an input or result [1, H, images, C] or on axis 1 of weights [K, images, N]; got [2, 64, 4, 32]
%x = "test.op"() : () -> tensor<2x64x4x32xi8>
%w = "test.op"() : () -> tensor<32x4x64xi8>
%t = "test.op"() : () -> tensor<64x4xi32>
%c = aipu.conv %x, %w, %t {in_c = 32 : i64, image_axes = array<i64: 2, 1, 0>} : (tensor<2x64x4x32xi8>, tensor<32x4x64xi8>, tensor<64x4xi32>) -> tensor<4x64x1x64xi8>

// -----

// The per-image geometry: a head of 64 tokens read token-major is a column of 64 pixels,
// so an output image of one row of 64 pixels does not match it.
// CHECK: output height 1 does not match input height 64 (expected 64)
%x = "test.op"() : () -> tensor<1x64x4x32xi8>
%w = "test.op"() : () -> tensor<32x4x64xi8>
%t = "test.op"() : () -> tensor<64x4xi32>
%c = aipu.conv %x, %w, %t {in_c = 32 : i64, image_axes = array<i64: 2, 1, 0>} : (tensor<1x64x4x32xi8>, tensor<32x4x64xi8>, tensor<64x4xi32>) -> tensor<4x1x64x64xi8>

// -----

// CHECK: global pooling of [1, 4, 8, 64] gives [N, 1, 1, C]
%x = "test.op"() : () -> tensor<1x4x8x64xi8>
%p = aipu.pool global_avg %x : tensor<1x4x8x64xi8> -> tensor<1x1x8x64xi8>

// -----

// CHECK: input [1, 4, 8, 64] does not broadcast to [1, 4, 1, 64]
%x = "test.op"() : () -> tensor<1x4x8x64xi8>
%e = aipu.eltwise(%x) : (tensor<1x4x8x64xi8>) -> tensor<1x4x1x64xi8> {
^bb0(%v: !aipu.vreg):
  aipu.dpu.yield %v
}

// -----

// CHECK: a copy reaches outside the result
%x = "test.op"() : () -> tensor<1x4x8x64xi8>
%m = aipu.move(%x) {copies = array<i64: 0, 1, 0, 1, 2048, 1, 1>} : (tensor<1x4x8x64xi8>) -> tensor<1x4x8x64xi8>

// -----

// CHECK: a reinterpretation keeps the element count
%x = "test.op"() : () -> tensor<1x4x8x64xi8>
%r = aipu.reinterpret %x : tensor<1x4x8x64xi8> -> tensor<4x8x32xi8>

// -----

// Parse errors: memory spaces and units are enums.
// CHECK: Expected `global.ddr`, `global.l2`, or `global.l1`
%x = "test.op"() : () -> !mem.buffer<64xi8, global.l3>

// -----

// CHECK: 'aipu.dpu.add' expects parent op to be one of 'aipu.dpu', 'aipu.eltwise'
aipu.core 0 {
  %a = "test.op"() : () -> !aipu.vreg
  %b = aipu.dpu.add %a, %a
}
