// RUN: XDSL_ROUNDTRIP
// RUN: XDSL_GENERIC_ROUNDTRIP

// Pools: DDR and L2 are shared, L1 belongs to one core; a page size when paged.
// Once the pools are set, each has its device address (`at`).
mem.pool @ddr global.ddr capacity 1073741824 page 65536 at 4294967296
mem.pool @l2 global.l2 capacity 33554432 at 134217728
mem.pool @l1_core0 global.l1 core 0 capacity 4194304

// CHECK:      mem.pool @ddr global.ddr capacity 1073741824 page 65536 at 4294967296
// CHECK-NEXT: mem.pool @l2 global.l2 capacity 33554432 at 134217728
// CHECK-NEXT: mem.pool @l1_core0 global.l1 core 0 capacity 4194304

// CHECK-GENERIC: "mem.pool"() <{sym_name = "ddr", space = #mem<space global.ddr>, capacity = 1073741824 : i64, page_size = 65536 : i64, address = 4294967296 : i64}> : () -> ()
// CHECK-GENERIC: "mem.pool"() <{sym_name = "l1_core0", space = #mem<space global.l1>, core = 0 : i64, capacity = 4194304 : i64}> : () -> ()

// Buffers: the offset appears once the memory planner has placed the buffer.
%x = mem.buffer @l1_core0 size 200704 align 64 offset 0 : !mem.buffer<1x56x56x64xi8, global.l1>
%acc = mem.buffer @l1_core0 size 802816 align 64 : !mem.buffer<1x56x56x64xi32, global.l1>
%w = mem.buffer @ddr size 32768 align 4096 offset 8192 : !mem.buffer<512x64xi8, global.ddr>
// Constants carry their contents (`init`), which the loader places before the stream runs.
%table = mem.buffer @ddr size 32 align 64 offset 0 init dense<[[7, 1073741824, 31, -3], [-7, 1073741824, 30, 5]]> : tensor<2x4xi32> : !mem.buffer<2x4xi32, global.ddr>
// An alias with another shape: a reshape that moves no bytes.
%flat = mem.reinterpret %x : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.buffer<3136x64xi8, global.l1>

// CHECK-NEXT: %x = mem.buffer @l1_core0 size 200704 align 64 offset 0 : !mem.buffer<1x56x56x64xi8, global.l1>
// CHECK-NEXT: %acc = mem.buffer @l1_core0 size 802816 align 64 : !mem.buffer<1x56x56x64xi32, global.l1>
// CHECK-NEXT: %w = mem.buffer @ddr size 32768 align 4096 offset 8192 : !mem.buffer<512x64xi8, global.ddr>
// CHECK-NEXT: %table = mem.buffer @ddr size 32 align 64 offset 0 init dense<[[7, 1073741824, 31, -3], [-7, 1073741824, 30, 5]]> : tensor<2x4xi32> : !mem.buffer<2x4xi32, global.ddr>
// CHECK-NEXT: %flat = mem.reinterpret %x : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.buffer<3136x64xi8, global.l1>

// CHECK-GENERIC: %x = "mem.buffer"() <{pool = @l1_core0, size = 200704 : i64, alignment = 64 : i64, offset = 0 : i64}> : () -> !mem.buffer<1x56x56x64xi8, global.l1>
// CHECK-GENERIC: %table = "mem.buffer"() <{pool = @ddr, size = 32 : i64, alignment = 64 : i64, offset = 0 : i64, init = dense<[[7, 1073741824, 31, -3], [-7, 1073741824, 30, 5]]> : tensor<2x4xi32>}> : () -> !mem.buffer<2x4xi32, global.ddr>
// CHECK-GENERIC: %flat = "mem.reinterpret"(%x) : (!mem.buffer<1x56x56x64xi8, global.l1>) -> !mem.buffer<3136x64xi8, global.l1>

// Static views: offsets in elements, optional strides.
%v0 = mem.view %x[0, 52, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
%v1 = mem.view %x[0, 0, 1, 0] strides [1, 2, 2, 1] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x28x27x64xi8, global.l1>

// CHECK-NEXT: %v0 = mem.view %x[0, 52, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
// CHECK-NEXT: %v1 = mem.view %x[0, 0, 1, 0] strides [1, 2, 2, 1] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x28x27x64xi8, global.l1>

// CHECK-GENERIC: %v1 = "mem.view"(%x) <{static_offsets = array<i64: 0, 0, 1, 0>, coefficients = array<i64>, strides = array<i64: 1, 2, 2, 1>}> : (!mem.buffer<1x56x56x64xi8, global.l1>) -> !mem.view<1x28x27x64xi8, global.l1>

// Affine views: the offsets move with the induction variables of tile loops. They print in
// a canonical form (variables first, unit coefficients dropped).
aipu.core 0 {
  aipu.tile_loop %h = 0 to 14 {
    aipu.tile_loop %c = 0 to 1 {
      %t = mem.view %x[0, 4 * %h, 0, 64 * %c] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
      %u = mem.view %x[0, 1 * %h + 2 + %h * 3, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x2x56x64xi8, global.l1>
      %r = mem.view %x[0, -4 * %h + 52, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
    }
  }
}

// CHECK-NEXT: aipu.core 0 {
// CHECK-NEXT:   aipu.tile_loop %h = 0 to 14 {
// CHECK-NEXT:     aipu.tile_loop %c = 0 to 1 {
// CHECK-NEXT:       %t = mem.view %x[0, 4 * %h, 0, 64 * %c] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
// CHECK-NEXT:       %u = mem.view %x[0, 4 * %h + 2, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x2x56x64xi8, global.l1>
// CHECK-NEXT:       %r = mem.view %x[0, -4 * %h + 52, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT: }

// CHECK-GENERIC: %t = "mem.view"(%x, %h, %c) <{static_offsets = array<i64: 0, 0, 0, 0>, coefficients = array<i64: 0, 4, 0, 0, 0, 0, 0, 64>, strides = array<i64: 1, 1, 1, 1>}> : (!mem.buffer<1x56x56x64xi8, global.l1>, index, index) -> !mem.view<1x4x56x64xi8, global.l1>
