// RUN: not xdsl-opt %s -p mem-plan --split-input-file 2>/dev/null | filecheck %s
// RUN: not xdsl-opt %s -p mem-plan --split-input-file 2>&1 >/dev/null | filecheck %s --check-prefix=FULL

// Program steps are the core's top-level ops in order (a tile loop is one step; views count
// too): 0 view p, 1 dma x -> p, 2 view q, 3 view of p's alias, 4 dma p -> q, 5 the loop
// (q -> r), 6 view r, 7 dma r -> y, 8 dma k -> y. So p lives 0..4 (through its alias),
// q 2..5, r 5..7: p and q overlap, r can reuse p's bytes. DDR: the segment input x lives
// 0..1, the output y 7..8 (to the segment's end), the constant k the whole program (0..8).
// Largest first, each at the lowest free aligned offset: p 0, r 0, q 256; x 0, k 64, y 0.
// The peaks equal the lower bounds: p + q = 384 alive at steps 2..4; x + k = 128.
builtin.module {
  mem.pool @ddr global.ddr capacity 1048576
  mem.pool @l2 global.l2 capacity 1048576
  mem.pool @l1_core0 global.l1 core 0 capacity 4096
  %x = mem.buffer @ddr size 64 align 64 : !mem.buffer<64xi8, global.ddr>
  %k = mem.buffer @ddr size 64 align 64 init dense<3> : tensor<64xi8> : !mem.buffer<64xi8, global.ddr>
  %y = mem.buffer @ddr size 64 align 64 : !mem.buffer<64xi8, global.ddr>
  %p = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<256xi8, global.l1>
  %q = mem.buffer @l1_core0 size 128 align 64 : !mem.buffer<128xi8, global.l1>
  %r = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<256xi8, global.l1>
  %p64 = mem.reinterpret %p : !mem.buffer<256xi8, global.l1> -> !mem.buffer<4x64xi8, global.l1>
  aipu.segment 0 ins(%x : !mem.buffer<64xi8, global.ddr>) outs(%y : !mem.buffer<64xi8, global.ddr>) attributes {input_perms = array<i64: 0>, output_perms = array<i64: 0>} {
    aipu.core 0 {
      %pv = mem.view %p[0] : !mem.buffer<256xi8, global.l1> -> !mem.view<64xi8, global.l1>
      %t0 = aipu.dma core ins(%x : !mem.buffer<64xi8, global.ddr>) outs(%pv : !mem.view<64xi8, global.l1>)
      %qv = mem.view %q[0] : !mem.buffer<128xi8, global.l1> -> !mem.view<64xi8, global.l1>
      %pr = mem.view %p64[1, 0] : !mem.buffer<4x64xi8, global.l1> -> !mem.view<1x64xi8, global.l1>
      %t1 = aipu.dma core ins(%pv : !mem.view<64xi8, global.l1>) outs(%qv : !mem.view<64xi8, global.l1>)
      aipu.tile_loop %i = 0 to 2 {
        %rv = mem.view %r[64 * %i] : !mem.buffer<256xi8, global.l1> -> !mem.view<64xi8, global.l1>
        %t2 = aipu.dma core ins(%qv : !mem.view<64xi8, global.l1>) outs(%rv : !mem.view<64xi8, global.l1>)
      }
      %rv0 = mem.view %r[0] : !mem.buffer<256xi8, global.l1> -> !mem.view<64xi8, global.l1>
      %t3 = aipu.dma core ins(%rv0 : !mem.view<64xi8, global.l1>) outs(%y : !mem.buffer<64xi8, global.ddr>)
      %t4 = aipu.dma core ins(%k : !mem.buffer<64xi8, global.ddr>) outs(%y : !mem.buffer<64xi8, global.ddr>)
    }
  }
}

// CHECK:      builtin.module attributes {mem.plan = {ddr = {capacity = 1048576 : i64, peak = 128 : i64, lower_bound = 128 : i64, live_bytes = 128 : i64, page_size = 0 : i64}, l2 = {capacity = 1048576 : i64, peak = 0 : i64, lower_bound = 0 : i64, live_bytes = 0 : i64, page_size = 0 : i64}, l1_core0 = {capacity = 4096 : i64, peak = 384 : i64, lower_bound = 384 : i64, live_bytes = 384 : i64, page_size = 0 : i64}}} {
// CHECK:      %x = mem.buffer @ddr size 64 align 64 offset 0 : !mem.buffer<64xi8, global.ddr>
// CHECK-NEXT: %k = mem.buffer @ddr size 64 align 64 offset 64 init dense<3> : tensor<64xi8> : !mem.buffer<64xi8, global.ddr>
// CHECK-NEXT: %y = mem.buffer @ddr size 64 align 64 offset 0 : !mem.buffer<64xi8, global.ddr>
// CHECK-NEXT: %p = mem.buffer @l1_core0 size 256 align 64 offset 0 : !mem.buffer<256xi8, global.l1>
// CHECK-NEXT: %q = mem.buffer @l1_core0 size 128 align 64 offset 256 : !mem.buffer<128xi8, global.l1>
// CHECK-NEXT: %r = mem.buffer @l1_core0 size 256 align 64 offset 0 : !mem.buffer<256xi8, global.l1>

// -----

// The same program in an L1 of 300 bytes: no order fits 384 bytes. Alone, mem-plan names
// the pool; in the driver the lowering first runs again from the L1 promotion (see
// mem-promote's l1_headroom), up to max_memplan_attempts times.
builtin.module {
  mem.pool @ddr global.ddr capacity 1048576
  mem.pool @l2 global.l2 capacity 1048576
  mem.pool @l1_core0 global.l1 core 0 capacity 300
  %x = mem.buffer @ddr size 64 align 64 : !mem.buffer<64xi8, global.ddr>
  %k = mem.buffer @ddr size 64 align 64 init dense<3> : tensor<64xi8> : !mem.buffer<64xi8, global.ddr>
  %y = mem.buffer @ddr size 64 align 64 : !mem.buffer<64xi8, global.ddr>
  %p = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<256xi8, global.l1>
  %q = mem.buffer @l1_core0 size 128 align 64 : !mem.buffer<128xi8, global.l1>
  %r = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<256xi8, global.l1>
  %p64 = mem.reinterpret %p : !mem.buffer<256xi8, global.l1> -> !mem.buffer<4x64xi8, global.l1>
  aipu.segment 0 ins(%x : !mem.buffer<64xi8, global.ddr>) outs(%y : !mem.buffer<64xi8, global.ddr>) attributes {input_perms = array<i64: 0>, output_perms = array<i64: 0>} {
    aipu.core 0 {
      %pv = mem.view %p[0] : !mem.buffer<256xi8, global.l1> -> !mem.view<64xi8, global.l1>
      %t0 = aipu.dma core ins(%x : !mem.buffer<64xi8, global.ddr>) outs(%pv : !mem.view<64xi8, global.l1>)
      %qv = mem.view %q[0] : !mem.buffer<128xi8, global.l1> -> !mem.view<64xi8, global.l1>
      %pr = mem.view %p64[1, 0] : !mem.buffer<4x64xi8, global.l1> -> !mem.view<1x64xi8, global.l1>
      %t1 = aipu.dma core ins(%pv : !mem.view<64xi8, global.l1>) outs(%qv : !mem.view<64xi8, global.l1>)
      aipu.tile_loop %i = 0 to 2 {
        %rv = mem.view %r[64 * %i] : !mem.buffer<256xi8, global.l1> -> !mem.view<64xi8, global.l1>
        %t2 = aipu.dma core ins(%qv : !mem.view<64xi8, global.l1>) outs(%rv : !mem.view<64xi8, global.l1>)
      }
      %rv0 = mem.view %r[0] : !mem.buffer<256xi8, global.l1> -> !mem.view<64xi8, global.l1>
      %t3 = aipu.dma core ins(%rv0 : !mem.view<64xi8, global.l1>) outs(%y : !mem.buffer<64xi8, global.ddr>)
      %t4 = aipu.dma core ins(%k : !mem.buffer<64xi8, global.ddr>) outs(%y : !mem.buffer<64xi8, global.ddr>)
    }
  }
}

// FULL: memory plan of pool 'l1_core0' needs 384 bytes (384 alive at once at best) but its capacity is 300 bytes; raise the pool's size or constraint, tile further, or move buffers to a larger pool (tiling counts weights in L1 only with ignore_weight_buffers=false)
