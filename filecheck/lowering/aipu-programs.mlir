// RUN: xdsl-opt %s -p aipu-programs | filecheck %s
// RUN: xdsl-opt %s -p 'aipu-programs{dpu_instructions_home=l2 dwpu_instructions_home=l2}' | filecheck %s --check-prefix=L2

// The DPU program buffer gets exactly its micro-op words (4 x 32 bytes) in its home; the
// DWPU task gets its program word.

builtin.module {
  mem.pool @ddr global.ddr capacity 1040187392 page 65536 at 4294967296
  mem.pool @l2 global.l2 capacity 31260672 page 65536 at 134217728
  mem.pool @l1_core0 global.l1 core 0 capacity 3670016 at 206175207424
  %x = mem.buffer @l1_core0 size 1024 align 64 : !mem.buffer<1x4x4x64xi8, global.l1>
  %y = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<1x2x2x64xi8, global.l1>
  %z = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<1x2x2x64xi8, global.l1>
  %p = mem.buffer @ddr size 64 align 64 : !mem.buffer<64xi8, global.ddr>
  aipu.segment 0 ins(%x : !mem.buffer<1x4x4x64xi8, global.l1>) outs(%z : !mem.buffer<1x2x2x64xi8, global.l1>) attributes {input_perms = array<i64: 0, 1, 2, 3>, output_perms = array<i64: 0, 1, 2, 3>} {
    aipu.core 0 {
      %d = aipu.dwpu max ins(%x : !mem.buffer<1x4x4x64xi8, global.l1>) outs(%y : !mem.buffer<1x2x2x64xi8, global.l1>) {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>}
      %t = aipu.dpu program(%p : !mem.buffer<64xi8, global.ddr>) {
        %v = aipu.dpu.load %y : !mem.buffer<1x2x2x64xi8, global.l1>
        %a = aipu.dpu.addi %v, 1
        %c = aipu.dpu.clamp %a, -128, 127
        aipu.dpu.store %c, %z : !mem.buffer<1x2x2x64xi8, global.l1>
      }
    }
  }
}

// CHECK:      %[[P:.*]] = mem.buffer @ddr size 128 align 64 : !mem.buffer<128xi8, global.ddr>
// CHECK:      %[[Q:.*]] = mem.buffer @ddr size 64 align 64 : !mem.buffer<32xi8, global.ddr>
// CHECK:      aipu.dwpu max {{.*}} program(%[[Q]] : !mem.buffer<32xi8, global.ddr>) {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>}
// CHECK:      aipu.dpu program(%[[P]] : !mem.buffer<128xi8, global.ddr>)

// L2:         mem.buffer @l2 size 128 align 64 : !mem.buffer<128xi8, global.l2>
// L2:         mem.buffer @l2 size 64 align 64 : !mem.buffer<32xi8, global.l2>
