// RUN: XDSL_ROUNDTRIP
// RUN: XDSL_GENERIC_ROUNDTRIP

// Tasks: one segment's core stream. DMAs, an IMC load and a fill before a height-tiled loop
// (a 1x1 conv in two K chunks with partial sums, a hardware token to the DPU, a DPU program,
// a nested loop with a two-variable strided window), then whole-tensor tasks: a swICR conv,
// a strided dilated conv, every DWPU mode and a strided DMA pattern with offsets.
mem.pool @ddr global.ddr capacity 1048576 page 65536 at 4294967296
mem.pool @l2 global.l2 capacity 1048576 at 134217728
mem.pool @l1_core0 global.l1 core 0 capacity 1048576
%x_ddr = mem.buffer @ddr size 4096 align 64 : !mem.buffer<1x8x8x64xi8, global.ddr>
%out_ddr = mem.buffer @ddr size 4096 align 64 offset 8192 : !mem.buffer<1x8x8x64xi8, global.ddr>
%w_ddr = mem.buffer @ddr size 4096 align 64 offset 4096 : !mem.buffer<64x64xi8, global.ddr>
%rq_ddr = mem.buffer @ddr size 32 align 64 init dense<[[5, 1073741824, 31, -3], [5, 1073741824, 31, -3]]> : tensor<2x4xi32> : !mem.buffer<2x4xi32, global.ddr>
%prog = mem.buffer @ddr size 1024 align 64 : !mem.buffer<1024xi8, global.ddr>
%x_l2 = mem.buffer @l2 size 4096 align 64 : !mem.buffer<1x8x8x64xi8, global.l2>
%w = mem.buffer @l1_core0 size 4096 align 64 offset 0 : !mem.buffer<64x64xi8, global.l1>
%dw = mem.buffer @l1_core0 size 576 align 64 : !mem.buffer<3x3x64xi8, global.l1>
%rq = mem.buffer @l1_core0 size 32 align 256 : !mem.buffer<2x4xi32, global.l1>
%dw_table = mem.buffer @l1_core0 size 1280 align 64 : !mem.buffer<64x5xi32, global.l1>
%avg_table = mem.buffer @l1_core0 size 200 align 64 : !mem.buffer<10x1x5xi32, global.l1>
%global_table = mem.buffer @l1_core0 size 20 align 64 : !mem.buffer<1x5xi32, global.l1>
%x = mem.buffer @l1_core0 size 4160 align 64 : !mem.buffer<1x8x8x64xi8, global.l1>
%y = mem.buffer @l1_core0 size 4096 align 64 : !mem.buffer<1x8x8x64xi8, global.l1>
%sums = mem.buffer @l1_core0 size 512 align 64 : !mem.buffer<1x8x8x2xi32, global.l1>
%narrow = mem.buffer @l1_core0 size 128 align 64 : !mem.buffer<1x8x8x2xi8, global.l1>
%pooled = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<1x1x1x64xi8, global.l1>
%lut = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<256xi8, global.l1>
%flat = mem.reinterpret %out_ddr : !mem.buffer<1x8x8x64xi8, global.ddr> -> !mem.buffer<1x4096xi8, global.ddr>
aipu.segment 0 ins(%x_ddr : !mem.buffer<1x8x8x64xi8, global.ddr>) outs(%flat : !mem.buffer<1x4096xi8, global.ddr>) attributes {input_perms = array<i64: 0, 2, 3, 1>, output_perms = array<i64: 0, 1>} {
  aipu.core 0 {
    %t0 = aipu.dma system ins(%x_ddr : !mem.buffer<1x8x8x64xi8, global.ddr>) outs(%x_l2 : !mem.buffer<1x8x8x64xi8, global.l2>)
    %t1 = aipu.dma core ins(%x_l2 : !mem.buffer<1x8x8x64xi8, global.l2>) outs(%x : !mem.buffer<1x8x8x64xi8, global.l1>) after %t0
    %t2 = aipu.dma core ins(%w_ddr : !mem.buffer<64x64xi8, global.ddr>) outs(%w : !mem.buffer<64x64xi8, global.l1>) {channel = 1 : i64}
    %t3 = aipu.imc_load ins(%w : !mem.buffer<64x64xi8, global.l1>) weightset 2 after %t2
    %t4 = aipu.dma core ins(%rq_ddr : !mem.buffer<2x4xi32, global.ddr>) outs(%rq : !mem.buffer<2x4xi32, global.l1>)
    %t5 = aipu.fill %y : !mem.buffer<1x8x8x64xi8, global.l1> value -3 after %t4
    aipu.tile_loop %i = 0 to 4 {
      %in = mem.view %x[0, 2 * %i, 0, 0] : !mem.buffer<1x8x8x64xi8, global.l1> -> !mem.view<1x2x8x64xi8, global.l1>
      %out = mem.view %y[0, 2 * %i, 0, 0] : !mem.buffer<1x8x8x64xi8, global.l1> -> !mem.view<1x2x8x64xi8, global.l1>
      %part = mem.view %sums[0, 2 * %i, 0, 0] : !mem.buffer<1x8x8x2xi32, global.l1> -> !mem.view<1x2x8x2xi32, global.l1>
      %res = mem.view %narrow[0, 2 * %i, 0, 0] : !mem.buffer<1x8x8x2xi8, global.l1> -> !mem.view<1x2x8x2xi8, global.l1>
      %m0 = aipu.mvm ins(%in : !mem.view<1x2x8x64xi8, global.l1>) outs(%part : !mem.view<1x2x8x2xi32, global.l1>) after %t1, %t3 {weightset = 2 : i64, k = 32 : i64, n = 2 : i64, in_c = 64 : i64, icr = 4 : i64}
      %m1 = aipu.mvm ins(%in : !mem.view<1x2x8x64xi8, global.l1>) outs(%res : !mem.view<1x2x8x2xi8, global.l1>) acc(%part : !mem.view<1x2x8x2xi32, global.l1>) requant(%rq : !mem.buffer<2x4xi32, global.l1>) after %m0 {weightset = 2 : i64, k = 32 : i64, n = 2 : i64, in_c = 64 : i64, k_start = 32 : i64, icr = 4 : i64, in_zp = -3 : i64, w_zp = 1 : i64}
      aipu.token_signal mvm 5 after %m1
      %go = aipu.token_wait dpu 5
      %d = aipu.dpu program(%prog : !mem.buffer<1024xi8, global.ddr>) after %go {
        %a = aipu.dpu.load %in : !mem.view<1x2x8x64xi8, global.l1>
        %b = aipu.dpu.lut %a, %lut : !mem.buffer<256xi8, global.l1>
        aipu.dpu.store %b, %out : !mem.view<1x2x8x64xi8, global.l1>
      }
      aipu.tile_loop %j = 1 to 3 {
        %win = mem.view %x[0, %i + 1, -2 * %j + 6, 16 * %j] strides [1, 2, 1, 1] : !mem.buffer<1x8x8x64xi8, global.l1> -> !mem.view<1x2x2x32xi8, global.l1>
      }
    }
    %quarter = mem.view %narrow[0, 0, 0, 0] : !mem.buffer<1x8x8x2xi8, global.l1> -> !mem.view<1x4x4x2xi8, global.l1>
    %half = mem.view %y[0, 0, 0, 0] : !mem.buffer<1x8x8x64xi8, global.l1> -> !mem.view<1x4x4x64xi8, global.l1>
    %c0 = aipu.mvm ins(%x : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%narrow : !mem.buffer<1x8x8x2xi8, global.l1>) requant(%rq : !mem.buffer<2x4xi32, global.l1>) {weightset = 0 : i64, k = 27 : i64, n = 2 : i64, in_c = 3 : i64, swicr = true, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}
    %c1 = aipu.mvm ins(%x : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%quarter : !mem.view<1x4x4x2xi8, global.l1>) requant(%rq : !mem.buffer<2x4xi32, global.l1>) {weightset = 1 : i64, k = 64 : i64, n = 2 : i64, in_c = 64 : i64, kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, dilation = array<i64: 2, 2>, pads = array<i64: 2, 2, 2, 2>}
    %dc = aipu.dwpu conv ins(%x : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%y : !mem.buffer<1x8x8x64xi8, global.l1>) weights(%dw : !mem.buffer<3x3x64xi8, global.l1>) requant(%dw_table : !mem.buffer<64x5xi32, global.l1>) {kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, per_channel = true}
    %ap = aipu.dwpu avg ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%half : !mem.view<1x4x4x64xi8, global.l1>) requant(%avg_table : !mem.buffer<10x1x5xi32, global.l1>) after %dc {kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, pads = array<i64: 1, 1, 0, 0>, extra = array<i64: 1, 1>, count_include_pad = true}
    %mp = aipu.dwpu max ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%half : !mem.view<1x4x4x64xi8, global.l1>) {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>}
    %ga = aipu.dwpu global_avg ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%pooled : !mem.buffer<1x1x1x64xi8, global.l1>) requant(%global_table : !mem.buffer<1x5xi32, global.l1>)
    %gm = aipu.dwpu global_max ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%pooled : !mem.buffer<1x1x1x64xi8, global.l1>) after %ga
    %tr = aipu.dma core ins(%x_ddr : !mem.buffer<1x8x8x64xi8, global.ddr>) outs(%y : !mem.buffer<1x8x8x64xi8, global.l1>) {sizes = array<i64: 8, 8>, src_strides = array<i64: 512, 64>, dst_strides = array<i64: 64, 512>, offsets = array<i64: 0, 5>}
    %st = aipu.dma core ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%out_ddr : !mem.buffer<1x8x8x64xi8, global.ddr>) after %gm, %tr
  }
}
aipu.core 2 {
  aipu.tile_loop %k = 0 to 2 {
  }
}
aipu.core 3 {
}

// CHECK:      builtin.module {
// CHECK-NEXT:   mem.pool @ddr global.ddr capacity 1048576 page 65536 at 4294967296
// CHECK-NEXT:   mem.pool @l2 global.l2 capacity 1048576 at 134217728
// CHECK-NEXT:   mem.pool @l1_core0 global.l1 core 0 capacity 1048576
// CHECK-NEXT:   %x_ddr = mem.buffer @ddr size 4096 align 64 : !mem.buffer<1x8x8x64xi8, global.ddr>
// CHECK-NEXT:   %out_ddr = mem.buffer @ddr size 4096 align 64 offset 8192 : !mem.buffer<1x8x8x64xi8, global.ddr>
// CHECK-NEXT:   %w_ddr = mem.buffer @ddr size 4096 align 64 offset 4096 : !mem.buffer<64x64xi8, global.ddr>
// CHECK-NEXT:   %rq_ddr = mem.buffer @ddr size 32 align 64 init dense<[[5, 1073741824, 31, -3], [5, 1073741824, 31, -3]]> : tensor<2x4xi32> : !mem.buffer<2x4xi32, global.ddr>
// CHECK-NEXT:   %prog = mem.buffer @ddr size 1024 align 64 : !mem.buffer<1024xi8, global.ddr>
// CHECK-NEXT:   %x_l2 = mem.buffer @l2 size 4096 align 64 : !mem.buffer<1x8x8x64xi8, global.l2>
// CHECK-NEXT:   %w = mem.buffer @l1_core0 size 4096 align 64 offset 0 : !mem.buffer<64x64xi8, global.l1>
// CHECK-NEXT:   %dw = mem.buffer @l1_core0 size 576 align 64 : !mem.buffer<3x3x64xi8, global.l1>
// CHECK-NEXT:   %rq = mem.buffer @l1_core0 size 32 align 256 : !mem.buffer<2x4xi32, global.l1>
// CHECK-NEXT:   %dw_table = mem.buffer @l1_core0 size 1280 align 64 : !mem.buffer<64x5xi32, global.l1>
// CHECK-NEXT:   %avg_table = mem.buffer @l1_core0 size 200 align 64 : !mem.buffer<10x1x5xi32, global.l1>
// CHECK-NEXT:   %global_table = mem.buffer @l1_core0 size 20 align 64 : !mem.buffer<1x5xi32, global.l1>
// CHECK-NEXT:   %x = mem.buffer @l1_core0 size 4160 align 64 : !mem.buffer<1x8x8x64xi8, global.l1>
// CHECK-NEXT:   %y = mem.buffer @l1_core0 size 4096 align 64 : !mem.buffer<1x8x8x64xi8, global.l1>
// CHECK-NEXT:   %sums = mem.buffer @l1_core0 size 512 align 64 : !mem.buffer<1x8x8x2xi32, global.l1>
// CHECK-NEXT:   %narrow = mem.buffer @l1_core0 size 128 align 64 : !mem.buffer<1x8x8x2xi8, global.l1>
// CHECK-NEXT:   %pooled = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<1x1x1x64xi8, global.l1>
// CHECK-NEXT:   %lut = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<256xi8, global.l1>
// CHECK-NEXT:   %flat = mem.reinterpret %out_ddr : !mem.buffer<1x8x8x64xi8, global.ddr> -> !mem.buffer<1x4096xi8, global.ddr>
// CHECK-NEXT:   aipu.segment 0 ins(%x_ddr : !mem.buffer<1x8x8x64xi8, global.ddr>) outs(%flat : !mem.buffer<1x4096xi8, global.ddr>) attributes {input_perms = array<i64: 0, 2, 3, 1>, output_perms = array<i64: 0, 1>} {
// CHECK-NEXT:     aipu.core 0 {
// CHECK-NEXT:       %t0 = aipu.dma system ins(%x_ddr : !mem.buffer<1x8x8x64xi8, global.ddr>) outs(%x_l2 : !mem.buffer<1x8x8x64xi8, global.l2>)
// CHECK-NEXT:       %t1 = aipu.dma core ins(%x_l2 : !mem.buffer<1x8x8x64xi8, global.l2>) outs(%x : !mem.buffer<1x8x8x64xi8, global.l1>) after %t0
// CHECK-NEXT:       %t2 = aipu.dma core ins(%w_ddr : !mem.buffer<64x64xi8, global.ddr>) outs(%w : !mem.buffer<64x64xi8, global.l1>) {channel = 1 : i64}
// CHECK-NEXT:       %t3 = aipu.imc_load ins(%w : !mem.buffer<64x64xi8, global.l1>) weightset 2 after %t2
// CHECK-NEXT:       %t4 = aipu.dma core ins(%rq_ddr : !mem.buffer<2x4xi32, global.ddr>) outs(%rq : !mem.buffer<2x4xi32, global.l1>)
// CHECK-NEXT:       %t5 = aipu.fill %y : !mem.buffer<1x8x8x64xi8, global.l1> value -3 after %t4
// CHECK-NEXT:       aipu.tile_loop %i = 0 to 4 {
// CHECK-NEXT:         %in = mem.view %x[0, 2 * %i, 0, 0] : !mem.buffer<1x8x8x64xi8, global.l1> -> !mem.view<1x2x8x64xi8, global.l1>
// CHECK-NEXT:         %out = mem.view %y[0, 2 * %i, 0, 0] : !mem.buffer<1x8x8x64xi8, global.l1> -> !mem.view<1x2x8x64xi8, global.l1>
// CHECK-NEXT:         %part = mem.view %sums[0, 2 * %i, 0, 0] : !mem.buffer<1x8x8x2xi32, global.l1> -> !mem.view<1x2x8x2xi32, global.l1>
// CHECK-NEXT:         %res = mem.view %narrow[0, 2 * %i, 0, 0] : !mem.buffer<1x8x8x2xi8, global.l1> -> !mem.view<1x2x8x2xi8, global.l1>
// CHECK-NEXT:         %m0 = aipu.mvm ins(%in : !mem.view<1x2x8x64xi8, global.l1>) outs(%part : !mem.view<1x2x8x2xi32, global.l1>) after %t1, %t3 {weightset = 2 : i64, k = 32 : i64, n = 2 : i64, in_c = 64 : i64, icr = 4 : i64}
// CHECK-NEXT:         %m1 = aipu.mvm ins(%in : !mem.view<1x2x8x64xi8, global.l1>) outs(%res : !mem.view<1x2x8x2xi8, global.l1>) acc(%part : !mem.view<1x2x8x2xi32, global.l1>) requant(%rq : !mem.buffer<2x4xi32, global.l1>) after %m0 {weightset = 2 : i64, k = 32 : i64, n = 2 : i64, in_c = 64 : i64, k_start = 32 : i64, icr = 4 : i64, in_zp = -3 : i64, w_zp = 1 : i64}
// CHECK-NEXT:         aipu.token_signal mvm 5 after %m1
// CHECK-NEXT:         %go = aipu.token_wait dpu 5
// CHECK-NEXT:         %d = aipu.dpu program(%prog : !mem.buffer<1024xi8, global.ddr>) after %go {
// CHECK-NEXT:           %a = aipu.dpu.load %in : !mem.view<1x2x8x64xi8, global.l1>
// CHECK-NEXT:           %b = aipu.dpu.lut %a, %lut : !mem.buffer<256xi8, global.l1>
// CHECK-NEXT:           aipu.dpu.store %b, %out : !mem.view<1x2x8x64xi8, global.l1>
// CHECK-NEXT:         }
// CHECK-NEXT:         aipu.tile_loop %j = 1 to 3 {
// CHECK-NEXT:           %win = mem.view %x[0, %i + 1, -2 * %j + 6, 16 * %j] strides [1, 2, 1, 1] : !mem.buffer<1x8x8x64xi8, global.l1> -> !mem.view<1x2x2x32xi8, global.l1>
// CHECK-NEXT:         }
// CHECK-NEXT:       }
// CHECK-NEXT:       %quarter = mem.view %narrow[0, 0, 0, 0] : !mem.buffer<1x8x8x2xi8, global.l1> -> !mem.view<1x4x4x2xi8, global.l1>
// CHECK-NEXT:       %half = mem.view %y[0, 0, 0, 0] : !mem.buffer<1x8x8x64xi8, global.l1> -> !mem.view<1x4x4x64xi8, global.l1>
// CHECK-NEXT:       %c0 = aipu.mvm ins(%x : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%narrow : !mem.buffer<1x8x8x2xi8, global.l1>) requant(%rq : !mem.buffer<2x4xi32, global.l1>) {weightset = 0 : i64, k = 27 : i64, n = 2 : i64, in_c = 3 : i64, swicr = true, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}
// CHECK-NEXT:       %c1 = aipu.mvm ins(%x : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%quarter : !mem.view<1x4x4x2xi8, global.l1>) requant(%rq : !mem.buffer<2x4xi32, global.l1>) {weightset = 1 : i64, k = 64 : i64, n = 2 : i64, in_c = 64 : i64, kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, dilation = array<i64: 2, 2>, pads = array<i64: 2, 2, 2, 2>}
// CHECK-NEXT:       %dc = aipu.dwpu conv ins(%x : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%y : !mem.buffer<1x8x8x64xi8, global.l1>) weights(%dw : !mem.buffer<3x3x64xi8, global.l1>) requant(%dw_table : !mem.buffer<64x5xi32, global.l1>) {kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, per_channel = true}
// CHECK-NEXT:       %ap = aipu.dwpu avg ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%half : !mem.view<1x4x4x64xi8, global.l1>) requant(%avg_table : !mem.buffer<10x1x5xi32, global.l1>) after %dc {kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, pads = array<i64: 1, 1, 0, 0>, extra = array<i64: 1, 1>, count_include_pad = true}
// CHECK-NEXT:       %mp = aipu.dwpu max ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%half : !mem.view<1x4x4x64xi8, global.l1>) {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>}
// CHECK-NEXT:       %ga = aipu.dwpu global_avg ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%pooled : !mem.buffer<1x1x1x64xi8, global.l1>) requant(%global_table : !mem.buffer<1x5xi32, global.l1>)
// CHECK-NEXT:       %gm = aipu.dwpu global_max ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%pooled : !mem.buffer<1x1x1x64xi8, global.l1>) after %ga
// CHECK-NEXT:       %tr = aipu.dma core ins(%x_ddr : !mem.buffer<1x8x8x64xi8, global.ddr>) outs(%y : !mem.buffer<1x8x8x64xi8, global.l1>) {sizes = array<i64: 8, 8>, src_strides = array<i64: 512, 64>, dst_strides = array<i64: 64, 512>, offsets = array<i64: 0, 5>}
// CHECK-NEXT:       %st = aipu.dma core ins(%y : !mem.buffer<1x8x8x64xi8, global.l1>) outs(%out_ddr : !mem.buffer<1x8x8x64xi8, global.ddr>) after %gm, %tr
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT:   aipu.core 2 {
// CHECK-NEXT:     aipu.tile_loop %k = 0 to 2 {
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT:   aipu.core 3 {
// CHECK-NEXT:   }
// CHECK-NEXT: }

// CHECK-GENERIC: "mem.pool"() <{sym_name = "ddr", space = #mem<space global.ddr>, capacity = 1048576 : i64, page_size = 65536 : i64, address = 4294967296 : i64}> : () -> ()
// CHECK-GENERIC: %rq_ddr = "mem.buffer"() <{pool = @ddr, size = 32 : i64, alignment = 64 : i64, init = dense<[[5, 1073741824, 31, -3], [5, 1073741824, 31, -3]]> : tensor<2x4xi32>}> : () -> !mem.buffer<2x4xi32, global.ddr>
// CHECK-GENERIC: %flat = "mem.reinterpret"(%out_ddr) : (!mem.buffer<1x8x8x64xi8, global.ddr>) -> !mem.buffer<1x4096xi8, global.ddr>
// CHECK-GENERIC: "aipu.segment"(%x_ddr, %flat) <{index = 0 : i64, input_perms = array<i64: 0, 2, 3, 1>, output_perms = array<i64: 0, 1>, operandSegmentSizes = array<i32: 1, 1>}> ({
// CHECK-GENERIC: %t5 = "aipu.fill"(%y, %t4) <{value = -3 : i64}> : (!mem.buffer<1x8x8x64xi8, global.l1>, !aipu.token) -> !aipu.token
// CHECK-GENERIC: "aipu.tile_loop"() <{lb = 0 : i64, ub = 4 : i64}> ({
// CHECK-GENERIC: ^bb0(%i: index):
// CHECK-GENERIC: %m1 = "aipu.mvm"(%in, %res, %part, %rq, %m0) <{weightset = 2 : i64, k = 32 : i64, n = 2 : i64, in_c = 64 : i64, k_start = 32 : i64, icr = 4 : i64, in_zp = -3 : i64, w_zp = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>, swicr = false, kernel = array<i64: 1, 1>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>}> : (!mem.view<1x2x8x64xi8, global.l1>, !mem.view<1x2x8x2xi8, global.l1>, !mem.view<1x2x8x2xi32, global.l1>, !mem.buffer<2x4xi32, global.l1>, !aipu.token) -> !aipu.token
// CHECK-GENERIC: %go = "aipu.token_wait"() <{unit = #aipu<unit dpu>, id = 5 : i64}> : () -> !aipu.token
// CHECK-GENERIC: %d = "aipu.dpu"(%prog, %go) <{operandSegmentSizes = array<i32: 1, 1>}> ({
// CHECK-GENERIC: "aipu.yield"() : () -> ()
// CHECK-GENERIC: %c0 = "aipu.mvm"(%x, %narrow, %rq) <{weightset = 0 : i64, k = 27 : i64, n = 2 : i64, in_c = 3 : i64, swicr = true, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0, 1, 0>, k_start = 0 : i64, icr = 1 : i64, in_zp = 0 : i64, w_zp = 0 : i64, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>}> : (!mem.buffer<1x8x8x64xi8, global.l1>, !mem.buffer<1x8x8x2xi8, global.l1>, !mem.buffer<2x4xi32, global.l1>) -> !aipu.token
// CHECK-GENERIC: %ap = "aipu.dwpu"(%y, %half, %avg_table, %dc) <{mode = #aipu<dwpu_mode avg>, kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, pads = array<i64: 1, 1, 0, 0>, extra = array<i64: 1, 1>, count_include_pad = true, operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 1>, dilation = array<i64: 1, 1>, per_channel = false}> : (!mem.buffer<1x8x8x64xi8, global.l1>, !mem.view<1x4x4x64xi8, global.l1>, !mem.buffer<10x1x5xi32, global.l1>, !aipu.token) -> !aipu.token
// CHECK-GENERIC: %gm = "aipu.dwpu"(%y, %pooled, %ga) <{mode = #aipu<dwpu_mode global_max>, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 1>, kernel = array<i64: 1, 1>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, extra = array<i64: 0, 0>, count_include_pad = false, per_channel = false}> : (!mem.buffer<1x8x8x64xi8, global.l1>, !mem.buffer<1x1x1x64xi8, global.l1>, !aipu.token) -> !aipu.token
// CHECK-GENERIC: %tr = "aipu.dma"(%x_ddr, %y) <{engine = #aipu<dma_engine core>, sizes = array<i64: 8, 8>, src_strides = array<i64: 512, 64>, dst_strides = array<i64: 64, 512>, offsets = array<i64: 0, 5>, channel = 0 : i64}> : (!mem.buffer<1x8x8x64xi8, global.ddr>, !mem.buffer<1x8x8x64xi8, global.l1>) -> !aipu.token

// -----

// Every DPU micro-op in one program: integer, fixed-point, table, select, float18 and row ops.
mem.pool @l1_core0 global.l1 core 0 capacity 1048576
%x = mem.buffer @l1_core0 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
%y = mem.buffer @l1_core0 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
%bias = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<1x1x1x64xi32, global.l1>
%table = mem.buffer @l1_core0 size 768 align 64 : !mem.buffer<64x3xi32, global.l1>
%lut = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<256xi8, global.l1>
%exp = mem.buffer @l1_core0 size 1024 align 64 : !mem.buffer<256xi32, global.l1>
aipu.core 0 {
  %d = aipu.dpu {
    %a = aipu.dpu.load %x : !mem.buffer<1x4x8x64xi8, global.l1>
    %b = aipu.dpu.load %bias : !mem.buffer<1x1x1x64xi32, global.l1>
    %c = aipu.dpu.addi %a, -3
    %e = aipu.dpu.shli %c, 4
    %f = aipu.dpu.add %e, %b
    %g = aipu.dpu.sub %f, %a
    %h = aipu.dpu.mul %g, %a
    %k = aipu.dpu.max %h, %a
    %l = aipu.dpu.min %k, %b
    %m = aipu.dpu.rescale %l multiplier 1073741824 shift 31
    %n = aipu.dpu.requant %m multiplier 1073741824 shift 31 zero_point -3
    %o = aipu.dpu.requant_table %n, %table : !mem.buffer<64x3xi32, global.l1>
    %p = aipu.dpu.lut %o, %lut : !mem.buffer<256xi8, global.l1>
    %q = aipu.dpu.clamp %p, -100, 100
    %r = aipu.dpu.select %a, %q, %b
    %s = aipu.dpu.itof %r
    %half = aipu.dpu.fconst 5.000000e-01
    %t = aipu.dpu.fadd %s, %half
    %u = aipu.dpu.fmul %t, %half
    %v = aipu.dpu.fneg %u
    %w0 = aipu.dpu.frecip %v
    %rq = aipu.dpu.frsqrt %w0
    %fv = aipu.dpu.fvec %exp : !mem.buffer<256xi32, global.l1>
    %w = aipu.dpu.fmul %rq, %fv
    %rm = aipu.dpu.rmax %w
    %rs = aipu.dpu.rsum %rm
    %ex = aipu.dpu.explut %rs, %exp : !mem.buffer<256xi32, global.l1>
    %z = aipu.dpu.ftoi %ex zero_point -128
    aipu.dpu.store %z, %y : !mem.buffer<1x4x8x64xi8, global.l1>
  }
}

// CHECK:      builtin.module {
// CHECK-NEXT:   mem.pool @l1_core0 global.l1 core 0 capacity 1048576
// CHECK-NEXT:   %x = mem.buffer @l1_core0 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
// CHECK-NEXT:   %y = mem.buffer @l1_core0 size 2048 align 64 : !mem.buffer<1x4x8x64xi8, global.l1>
// CHECK-NEXT:   %bias = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<1x1x1x64xi32, global.l1>
// CHECK-NEXT:   %table = mem.buffer @l1_core0 size 768 align 64 : !mem.buffer<64x3xi32, global.l1>
// CHECK-NEXT:   %lut = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<256xi8, global.l1>
// CHECK-NEXT:   %exp = mem.buffer @l1_core0 size 1024 align 64 : !mem.buffer<256xi32, global.l1>
// CHECK-NEXT:   aipu.core 0 {
// CHECK-NEXT:     %d = aipu.dpu {
// CHECK-NEXT:       %a = aipu.dpu.load %x : !mem.buffer<1x4x8x64xi8, global.l1>
// CHECK-NEXT:       %b = aipu.dpu.load %bias : !mem.buffer<1x1x1x64xi32, global.l1>
// CHECK-NEXT:       %c = aipu.dpu.addi %a, -3
// CHECK-NEXT:       %e = aipu.dpu.shli %c, 4
// CHECK-NEXT:       %f = aipu.dpu.add %e, %b
// CHECK-NEXT:       %g = aipu.dpu.sub %f, %a
// CHECK-NEXT:       %h = aipu.dpu.mul %g, %a
// CHECK-NEXT:       %k = aipu.dpu.max %h, %a
// CHECK-NEXT:       %l = aipu.dpu.min %k, %b
// CHECK-NEXT:       %m = aipu.dpu.rescale %l multiplier 1073741824 shift 31
// CHECK-NEXT:       %n = aipu.dpu.requant %m multiplier 1073741824 shift 31 zero_point -3
// CHECK-NEXT:       %o = aipu.dpu.requant_table %n, %table : !mem.buffer<64x3xi32, global.l1>
// CHECK-NEXT:       %p = aipu.dpu.lut %o, %lut : !mem.buffer<256xi8, global.l1>
// CHECK-NEXT:       %q = aipu.dpu.clamp %p, -100, 100
// CHECK-NEXT:       %r = aipu.dpu.select %a, %q, %b
// CHECK-NEXT:       %s = aipu.dpu.itof %r
// CHECK-NEXT:       %half = aipu.dpu.fconst 5.000000e-01
// CHECK-NEXT:       %t = aipu.dpu.fadd %s, %half
// CHECK-NEXT:       %u = aipu.dpu.fmul %t, %half
// CHECK-NEXT:       %v = aipu.dpu.fneg %u
// CHECK-NEXT:       %w0 = aipu.dpu.frecip %v
// CHECK-NEXT:       %rq = aipu.dpu.frsqrt %w0
// CHECK-NEXT:       %fv = aipu.dpu.fvec %exp : !mem.buffer<256xi32, global.l1>
// CHECK-NEXT:       %w = aipu.dpu.fmul %rq, %fv
// CHECK-NEXT:       %rm = aipu.dpu.rmax %w
// CHECK-NEXT:       %rs = aipu.dpu.rsum %rm
// CHECK-NEXT:       %ex = aipu.dpu.explut %rs, %exp : !mem.buffer<256xi32, global.l1>
// CHECK-NEXT:       %z = aipu.dpu.ftoi %ex zero_point -128
// CHECK-NEXT:       aipu.dpu.store %z, %y : !mem.buffer<1x4x8x64xi8, global.l1>
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT: }

// CHECK-GENERIC: %a = "aipu.dpu.load"(%x) : (!mem.buffer<1x4x8x64xi8, global.l1>) -> !aipu.vreg
// CHECK-GENERIC: %c = "aipu.dpu.addi"(%a) <{imm = -3 : i64}> : (!aipu.vreg) -> !aipu.vreg
// CHECK-GENERIC: %m = "aipu.dpu.rescale"(%l) <{multiplier = 1073741824 : i64, shift = 31 : i64}> : (!aipu.vreg) -> !aipu.vreg
// CHECK-GENERIC: %n = "aipu.dpu.requant"(%m) <{multiplier = 1073741824 : i64, shift = 31 : i64, zero_point = -3 : i64}> : (!aipu.vreg) -> !aipu.vreg
// CHECK-GENERIC: %o = "aipu.dpu.requant_table"(%n, %table) : (!aipu.vreg, !mem.buffer<64x3xi32, global.l1>) -> !aipu.vreg
// CHECK-GENERIC: %q = "aipu.dpu.clamp"(%p) <{low = -100 : i64, high = 100 : i64}> : (!aipu.vreg) -> !aipu.vreg
// CHECK-GENERIC: %r = "aipu.dpu.select"(%a, %q, %b) : (!aipu.vreg, !aipu.vreg, !aipu.vreg) -> !aipu.vreg
// CHECK-GENERIC: %half = "aipu.dpu.fconst"() <{value = 5.000000e-01 : f32}> : () -> !aipu.vreg
// CHECK-GENERIC: %ex = "aipu.dpu.explut"(%rs, %exp) : (!aipu.vreg, !mem.buffer<256xi32, global.l1>) -> !aipu.vreg
// CHECK-GENERIC: %z = "aipu.dpu.ftoi"(%ex) <{zero_point = -128 : i64}> : (!aipu.vreg) -> !aipu.vreg
// CHECK-GENERIC: "aipu.dpu.store"(%z, %y) : (!aipu.vreg, !mem.buffer<1x4x8x64xi8, global.l1>) -> ()

// -----

// Layers on device tensors: host to device, an MVM conv with its chosen home and tiles,
// every DWPU mode, a DPU program with tables as tensors, a DMA move with fill, a reshape,
// device to host, and the host's launch of segment 0.
%host = "test.op"() : () -> tensor<1x64x8x8xi8>
%dev = aipu.to_device %host {perm = array<i64: 0, 2, 3, 1>} : tensor<1x64x8x8xi8> -> tensor<1x8x8x64xi8>
%w = aipu.const {value = dense<1> : tensor<576x16xi8>} : tensor<576x16xi8>
%tab = aipu.const {value = dense<[[0, 1073741824, 31, 0]]> : tensor<1x4xi32>} : tensor<1x4xi32>
%tab16 = "test.op"() : () -> tensor<16x4xi32>
%conv = aipu.conv %dev, %w, %tab16 {in_c = 64 : i64, k_chunk = 256 : i64, in_zp = -1 : i64, w_zp = 2 : i64, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, home = #mem<space global.l2>, tiles = array<i64: 2, 1>, dfs_group = 0 : i64} : (tensor<1x8x8x64xi8>, tensor<576x16xi8>, tensor<16x4xi32>) -> tensor<1x8x8x16xi8>
%dww = aipu.const {value = dense<1> : tensor<3x3x16xi8>} : tensor<3x3x16xi8>
%dwt = "test.op"() : () -> tensor<16x5xi32>
%dconv = aipu.pool conv %conv : tensor<1x8x8x16xi8> weights %dww : tensor<3x3x16xi8> table %dwt : tensor<16x5xi32> {kernel = array<i64: 3, 3>, dilation = array<i64: 2, 2>, pads = array<i64: 2, 2, 2, 2>, per_channel = true} -> tensor<1x8x8x16xi8>
%peak = aipu.pool max %dconv : tensor<1x8x8x16xi8> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} -> tensor<1x4x4x16xi8>
%avt = "test.op"() : () -> tensor<5x1x5xi32>
%avg = aipu.pool avg %peak : tensor<1x4x4x16xi8> table %avt : tensor<5x1x5xi32> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, extra = array<i64: 1, 1>, count_include_pad = true} -> tensor<1x2x2x16xi8>
%mt = aipu.const {value = dense<[[0, 1073741824, 31, 0, 0]]> : tensor<1x5xi32>} : tensor<1x5xi32>
%mean = aipu.pool global_avg %avg : tensor<1x2x2x16xi8> table %mt : tensor<1x5xi32> -> tensor<1x1x1x16xi8>
%top = aipu.pool global_max %avg : tensor<1x2x2x16xi8> -> tensor<1x1x1x16xi8>
%lut = "test.op"() : () -> tensor<256xi8>
%rows = "test.op"() : () -> tensor<16x3xi32>
%sum = aipu.eltwise(%mean, %top) : (tensor<1x1x1x16xi8>, tensor<1x1x1x16xi8>) -> tensor<1x1x1x16xi8> {
^bb0(%l: !aipu.vreg, %r: !aipu.vreg):
  %s = aipu.dpu.add %l, %r
  %q = aipu.dpu.requant_table %s, %rows : tensor<16x3xi32>
  %v = aipu.dpu.lut %q, %lut : tensor<256xi8>
  aipu.dpu.yield %v
}
%both = aipu.move(%sum, %top) {copies = array<i64: 0, 1, 0, 0, 16, 1, 1, 1, 2, 0, 16, 2, 8, 8, 1, 1, 2>, fill = -128 : i64} : (tensor<1x1x1x16xi8>, tensor<1x1x1x16xi8>) -> tensor<1x1x1x48xi8>
%flat = aipu.reinterpret %both : tensor<1x1x1x48xi8> -> tensor<1x48xi8>
%back = aipu.from_device %flat {perm = array<i64: 0, 1>} : tensor<1x48xi8> -> tensor<1x48xi8>
%res = aipu.launch 0(%host) : (tensor<1x64x8x8xi8>) -> tensor<1x48xi8>

// CHECK:      builtin.module {
// CHECK-NEXT:   %host = "test.op"() : () -> tensor<1x64x8x8xi8>
// CHECK-NEXT:   %dev = aipu.to_device %host {perm = array<i64: 0, 2, 3, 1>} : tensor<1x64x8x8xi8> -> tensor<1x8x8x64xi8>
// CHECK-NEXT:   %w = aipu.const {value = dense<1> : tensor<576x16xi8>} : tensor<576x16xi8>
// CHECK-NEXT:   %tab = aipu.const {value = dense<[[0, 1073741824, 31, 0]]> : tensor<1x4xi32>} : tensor<1x4xi32>
// CHECK-NEXT:   %tab16 = "test.op"() : () -> tensor<16x4xi32>
// CHECK-NEXT:   %conv = aipu.conv %dev, %w, %tab16 {in_c = 64 : i64, k_chunk = 256 : i64, in_zp = -1 : i64, w_zp = 2 : i64, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, home = #mem<space global.l2>, tiles = array<i64: 2, 1>, dfs_group = 0 : i64} : (tensor<1x8x8x64xi8>, tensor<576x16xi8>, tensor<16x4xi32>) -> tensor<1x8x8x16xi8>
// CHECK-NEXT:   %dww = aipu.const {value = dense<1> : tensor<3x3x16xi8>} : tensor<3x3x16xi8>
// CHECK-NEXT:   %dwt = "test.op"() : () -> tensor<16x5xi32>
// CHECK-NEXT:   %dconv = aipu.pool conv %conv : tensor<1x8x8x16xi8> weights %dww : tensor<3x3x16xi8> table %dwt : tensor<16x5xi32> {kernel = array<i64: 3, 3>, dilation = array<i64: 2, 2>, pads = array<i64: 2, 2, 2, 2>, per_channel = true} -> tensor<1x8x8x16xi8>
// CHECK-NEXT:   %peak = aipu.pool max %dconv : tensor<1x8x8x16xi8> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} -> tensor<1x4x4x16xi8>
// CHECK-NEXT:   %avt = "test.op"() : () -> tensor<5x1x5xi32>
// CHECK-NEXT:   %avg = aipu.pool avg %peak : tensor<1x4x4x16xi8> table %avt : tensor<5x1x5xi32> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, extra = array<i64: 1, 1>, count_include_pad = true} -> tensor<1x2x2x16xi8>
// CHECK-NEXT:   %mt = aipu.const {value = dense<[[0, 1073741824, 31, 0, 0]]> : tensor<1x5xi32>} : tensor<1x5xi32>
// CHECK-NEXT:   %mean = aipu.pool global_avg %avg : tensor<1x2x2x16xi8> table %mt : tensor<1x5xi32> -> tensor<1x1x1x16xi8>
// CHECK-NEXT:   %top = aipu.pool global_max %avg : tensor<1x2x2x16xi8> -> tensor<1x1x1x16xi8>
// CHECK-NEXT:   %lut = "test.op"() : () -> tensor<256xi8>
// CHECK-NEXT:   %rows = "test.op"() : () -> tensor<16x3xi32>
// CHECK-NEXT:   %sum = aipu.eltwise(%mean, %top) : (tensor<1x1x1x16xi8>, tensor<1x1x1x16xi8>) -> tensor<1x1x1x16xi8> {
// CHECK-NEXT:   ^bb0(%l: !aipu.vreg, %r: !aipu.vreg):
// CHECK-NEXT:     %s = aipu.dpu.add %l, %r
// CHECK-NEXT:     %q = aipu.dpu.requant_table %s, %rows : tensor<16x3xi32>
// CHECK-NEXT:     %v = aipu.dpu.lut %q, %lut : tensor<256xi8>
// CHECK-NEXT:     aipu.dpu.yield %v
// CHECK-NEXT:   }
// CHECK-NEXT:   %both = aipu.move(%sum, %top) {copies = array<i64: 0, 1, 0, 0, 16, 1, 1, 1, 2, 0, 16, 2, 8, 8, 1, 1, 2>, fill = -128 : i64} : (tensor<1x1x1x16xi8>, tensor<1x1x1x16xi8>) -> tensor<1x1x1x48xi8>
// CHECK-NEXT:   %flat = aipu.reinterpret %both : tensor<1x1x1x48xi8> -> tensor<1x48xi8>
// CHECK-NEXT:   %back = aipu.from_device %flat {perm = array<i64: 0, 1>} : tensor<1x48xi8> -> tensor<1x48xi8>
// CHECK-NEXT:   %res = aipu.launch 0(%host) : (tensor<1x64x8x8xi8>) -> tensor<1x48xi8>
// CHECK-NEXT: }

// CHECK-GENERIC: %dev = "aipu.to_device"(%host) <{perm = array<i64: 0, 2, 3, 1>}> : (tensor<1x64x8x8xi8>) -> tensor<1x8x8x64xi8>
// CHECK-GENERIC: %w = "aipu.const"() <{value = dense<1> : tensor<576x16xi8>}> : () -> tensor<576x16xi8>
// CHECK-GENERIC: %conv = "aipu.conv"(%dev, %w, %tab16) <{in_c = 64 : i64, k_chunk = 256 : i64, in_zp = -1 : i64, w_zp = 2 : i64, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, home = #mem<space global.l2>, tiles = array<i64: 2, 1>, dfs_group = 0 : i64, icr = 1 : i64, swicr = false, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, image_axes = array<i64: 0, 0, 0>}> : (tensor<1x8x8x64xi8>, tensor<576x16xi8>, tensor<16x4xi32>) -> tensor<1x8x8x16xi8>
// CHECK-GENERIC: %dconv = "aipu.pool"(%conv, %dww, %dwt) <{mode = #aipu<dwpu_mode conv>, kernel = array<i64: 3, 3>, dilation = array<i64: 2, 2>, pads = array<i64: 2, 2, 2, 2>, per_channel = true, operandSegmentSizes = array<i32: 1, 1, 1>, stride = array<i64: 1, 1>, extra = array<i64: 0, 0>, count_include_pad = false}> : (tensor<1x8x8x16xi8>, tensor<3x3x16xi8>, tensor<16x5xi32>) -> tensor<1x8x8x16xi8>
// CHECK-GENERIC: %avg = "aipu.pool"(%peak, %avt) <{mode = #aipu<dwpu_mode avg>, kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, extra = array<i64: 1, 1>, count_include_pad = true, operandSegmentSizes = array<i32: 1, 0, 1>, dilation = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, per_channel = false}> : (tensor<1x4x4x16xi8>, tensor<5x1x5xi32>) -> tensor<1x2x2x16xi8>
// CHECK-GENERIC: %top = "aipu.pool"(%avg) <{mode = #aipu<dwpu_mode global_max>, operandSegmentSizes = array<i32: 1, 0, 0>, kernel = array<i64: 1, 1>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, extra = array<i64: 0, 0>, count_include_pad = false, per_channel = false}> : (tensor<1x2x2x16xi8>) -> tensor<1x1x1x16xi8>
// CHECK-GENERIC: %sum = "aipu.eltwise"(%mean, %top) ({
// CHECK-GENERIC: "aipu.dpu.yield"(%v) : (!aipu.vreg) -> ()
// CHECK-GENERIC: %both = "aipu.move"(%sum, %top) <{copies = array<i64: 0, 1, 0, 0, 16, 1, 1, 1, 2, 0, 16, 2, 8, 8, 1, 1, 2>, fill = -128 : i64}> : (tensor<1x1x1x16xi8>, tensor<1x1x1x16xi8>) -> tensor<1x1x1x48xi8>
// CHECK-GENERIC: %flat = "aipu.reinterpret"(%both) : (tensor<1x1x1x48xi8>) -> tensor<1x48xi8>
// CHECK-GENERIC: %back = "aipu.from_device"(%flat) <{perm = array<i64: 0, 1>}> : (tensor<1x48xi8>) -> tensor<1x48xi8>
// CHECK-GENERIC: %res = "aipu.launch"(%host) <{index = 0 : i64}> : (tensor<1x64x8x8xi8>) -> tensor<1x48xi8>

// -----

// Attributes print in their opaque form when not inside an op's format.
"test.op"() {unit = #aipu<unit dwpu>, space = #mem<space global.l2>, mode = #aipu<dwpu_mode global_avg>, engine = #aipu<dma_engine system>, token = !aipu.token, reg = !aipu.vreg} : () -> ()

// CHECK:      builtin.module {
// CHECK-NEXT:   "test.op"() {unit = #aipu<unit dwpu>, space = #mem<space global.l2>, mode = #aipu<dwpu_mode global_avg>, engine = #aipu<dma_engine system>, token = !aipu.token, reg = !aipu.vreg} : () -> ()
// CHECK-NEXT: }
