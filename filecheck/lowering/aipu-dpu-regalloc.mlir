// RUN: xdsl-opt %s --split-input-file -p 'aipu-dpu-regalloc{dpu_allocation_algorithm=try_all}' | filecheck %s
// RUN: xdsl-opt %s --split-input-file -p 'aipu-dpu-regalloc{dpu_allocation_algorithm=graph}' | filecheck %s --check-prefix=GRAPH

// try_all: lazy first, then backjump_recursive, then graph (which spills).
// Three values live at once: lazy takes the lowest free register at each definition, and a
// result may take the register of an operand it reads last.

builtin.module attributes {aipu.l1_core0_physical_address = 402653184 : i64, aipu.tasklist_region = array<i64: 165478400, 1048576>} {
  mem.pool @ddr global.ddr capacity 1040187392 page 65536 at 4294967296
  mem.pool @l2 global.l2 capacity 31260672 page 65536 at 134217728
  mem.pool @l1_core0 global.l1 core 0 capacity 3670016 at 206175207424
  %x = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<4x64xi8, global.l1>
  %y = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<4x64xi8, global.l1>
  %p = mem.buffer @ddr size 64 align 64 : !mem.buffer<64xi8, global.ddr>
  aipu.segment 0 ins(%x : !mem.buffer<4x64xi8, global.l1>) outs(%y : !mem.buffer<4x64xi8, global.l1>) attributes {input_perms = array<i64: 0, 1>, output_perms = array<i64: 0, 1>} {
    aipu.core 0 {
      %t = aipu.dpu program(%p : !mem.buffer<64xi8, global.ddr>) {
        %v = aipu.dpu.load %x : !mem.buffer<4x64xi8, global.l1>
        %a0 = aipu.dpu.addi %v, 0
        %a1 = aipu.dpu.addi %v, 1
        %a2 = aipu.dpu.addi %v, 2
        %s1 = aipu.dpu.add %a0, %a1
        %s2 = aipu.dpu.add %s1, %a2
        %c = aipu.dpu.clamp %s2, -128, 127
        aipu.dpu.store %c, %y : !mem.buffer<4x64xi8, global.l1>
      }
    }
  }
}

// CHECK:      aipu.dpu program(%p : !mem.buffer<64xi8, global.ddr>) attributes {regalloc = "lazy", spills = 0 : i64} {
// CHECK-NEXT: %v = aipu.dpu.load %x {reg = 0 : i64}
// CHECK-NEXT: %a0 = aipu.dpu.addi %v, 0 {reg = 1 : i64}
// CHECK-NEXT: %a1 = aipu.dpu.addi %v, 1 {reg = 2 : i64}
// CHECK-NEXT: %a2 = aipu.dpu.addi %v, 2 {reg = 0 : i64}
// CHECK-NEXT: %s1 = aipu.dpu.add %a0, %a1 {reg = 1 : i64}
// CHECK-NEXT: %s2 = aipu.dpu.add %s1, %a2 {reg = 0 : i64}
// CHECK-NEXT: %c = aipu.dpu.clamp %s2, -128, 127 {reg = 0 : i64}
// CHECK:      regalloc = "graph", spills = 1 : i64

// GRAPH:      regalloc = "graph", spills = 0 : i64

// -----

// Seventeen values live at once on sixteen registers: graph spills one to a slot of an L1
// buffer (a whole int32 tile per slot) and reloads it where it is read.

builtin.module attributes {aipu.l1_core0_physical_address = 402653184 : i64, aipu.tasklist_region = array<i64: 165478400, 1048576>} {
  mem.pool @ddr global.ddr capacity 1040187392 page 65536 at 4294967296
  mem.pool @l2 global.l2 capacity 31260672 page 65536 at 134217728
  mem.pool @l1_core0 global.l1 core 0 capacity 3670016 at 206175207424
  %x = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<4x64xi8, global.l1>
  %y = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<4x64xi8, global.l1>
  %p = mem.buffer @ddr size 64 align 64 : !mem.buffer<64xi8, global.ddr>
  aipu.segment 0 ins(%x : !mem.buffer<4x64xi8, global.l1>) outs(%y : !mem.buffer<4x64xi8, global.l1>) attributes {input_perms = array<i64: 0, 1>, output_perms = array<i64: 0, 1>} {
    aipu.core 0 {
      %t = aipu.dpu program(%p : !mem.buffer<64xi8, global.ddr>) {
        %v = aipu.dpu.load %x : !mem.buffer<4x64xi8, global.l1>
        %a0 = aipu.dpu.addi %v, 0
        %a1 = aipu.dpu.addi %v, 1
        %a2 = aipu.dpu.addi %v, 2
        %a3 = aipu.dpu.addi %v, 3
        %a4 = aipu.dpu.addi %v, 4
        %a5 = aipu.dpu.addi %v, 5
        %a6 = aipu.dpu.addi %v, 6
        %a7 = aipu.dpu.addi %v, 7
        %a8 = aipu.dpu.addi %v, 8
        %a9 = aipu.dpu.addi %v, 9
        %a10 = aipu.dpu.addi %v, 10
        %a11 = aipu.dpu.addi %v, 11
        %a12 = aipu.dpu.addi %v, 12
        %a13 = aipu.dpu.addi %v, 13
        %a14 = aipu.dpu.addi %v, 14
        %a15 = aipu.dpu.addi %v, 15
        %a16 = aipu.dpu.addi %v, 16
        %s1 = aipu.dpu.add %a0, %a1
        %s2 = aipu.dpu.add %s1, %a2
        %s3 = aipu.dpu.add %s2, %a3
        %s4 = aipu.dpu.add %s3, %a4
        %s5 = aipu.dpu.add %s4, %a5
        %s6 = aipu.dpu.add %s5, %a6
        %s7 = aipu.dpu.add %s6, %a7
        %s8 = aipu.dpu.add %s7, %a8
        %s9 = aipu.dpu.add %s8, %a9
        %s10 = aipu.dpu.add %s9, %a10
        %s11 = aipu.dpu.add %s10, %a11
        %s12 = aipu.dpu.add %s11, %a12
        %s13 = aipu.dpu.add %s12, %a13
        %s14 = aipu.dpu.add %s13, %a14
        %s15 = aipu.dpu.add %s14, %a15
        %s16 = aipu.dpu.add %s15, %a16
        %c = aipu.dpu.clamp %s16, -128, 127
        aipu.dpu.store %c, %y : !mem.buffer<4x64xi8, global.l1>
      }
    }
  }
}

// GRAPH:      %{{.*}} = mem.buffer @l1_core0 size 1024 align 64 : !mem.buffer<1x1024xi8, global.l1>
// GRAPH:      regalloc = "graph", spills = 1 : i64
// GRAPH:      aipu.dpu.spill %[[SPILLED:.*]] to %{{.*}} slot 0 : !mem.buffer<1x1024xi8, global.l1>
// GRAPH:      %[[RELOADED:.*]] = aipu.dpu.reload %{{.*}} slot 0 {reg = {{[0-9]+}} : i64} : !mem.buffer<1x1024xi8, global.l1>
// GRAPH-NEXT: aipu.dpu.add {{.*}}%[[RELOADED]]
