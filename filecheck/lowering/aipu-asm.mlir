// RUN: xdsl-opt %s -p 'aipu-dpu-regalloc,aipu-programs,mem-plan' -t aipu-asm | filecheck %s

// A planned one-segment module as assembly: the tasklist's records with their unit and
// every non-zero field (addresses in hex), then the DPU program decoded from its words.

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


// CHECK:      segment 0 core 0
// CHECK-NEXT:   ; segment0.in0 at 0x3001000000: int8[4, 64]
// CHECK-NEXT:   ; segment0.out0 at 0x3001000100: int8[4, 64]
// CHECK-NEXT:   0000 dpu      dpu       program=0x100000000 operand_addr=[0x3001000000, 0x3001000100, 0x0, 0x0] operand_strides=[0, 0, 64, 1, 0, 0, 64, 1, 0, 0, 0, 0, 0, 0, 0, 0] shape=[1, 1, 4, 64] micro_ops=8 operand_bytes=[1, 1, 0, 0]
// CHECK-NEXT: dpu program 0x100000000: 8 micro-ops
// CHECK-NEXT:   0 load          r0 <- slot=0
// CHECK-NEXT:   1 addi          r1 <- r0
// CHECK-NEXT:   2 addi          r2 <- r0 imm0=1
// CHECK-NEXT:   3 addi          r0 <- r0 imm0=2
// CHECK-NEXT:   4 add           r1 <- r1, r2
// CHECK-NEXT:   5 add           r0 <- r1, r0
// CHECK-NEXT:   6 clamp         r0 <- r0 imm0=-128 imm1=127
// CHECK-NEXT:   7 store         r0 slot=1
