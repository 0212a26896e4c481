// RUN: XDSL_ROUNDTRIP
// RUN: XDSL_GENERIC_ROUNDTRIP

mem.pool @ddr global.ddr capacity 1073741824
mem.pool @l2 global.l2 capacity 33554432
mem.pool @l1_core0 global.l1 core 0 capacity 4194304
%w_ddr = mem.buffer @ddr size 32768 align 64 : !mem.buffer<512x64xi8, global.ddr>
%x_l2 = mem.buffer @l2 size 200704 align 64 : !mem.buffer<1x56x56x64xi8, global.l2>
%x_ddr = mem.buffer @ddr size 200704 align 64 : !mem.buffer<1x56x56x64xi8, global.ddr>
%lut = mem.buffer @l2 size 256 align 64 : !mem.buffer<256xi8, global.l2>
%w = mem.buffer @l1_core0 size 32768 align 64 : !mem.buffer<512x64xi8, global.l1>
%dw = mem.buffer @l1_core0 size 576 align 64 : !mem.buffer<3x3x64xi8, global.l1>
%rq = mem.buffer @l1_core0 size 768 align 64 : !mem.buffer<64x3xi32, global.l1>
%x = mem.buffer @l1_core0 size 200704 align 64 : !mem.buffer<1x56x56x64xi8, global.l1>
%y = mem.buffer @l1_core0 size 200704 align 64 : !mem.buffer<1x56x56x64xi8, global.l1>
%p = mem.buffer @l1_core0 size 802816 align 64 : !mem.buffer<1x56x56x64xi32, global.l1>

// CHECK: %p = mem.buffer @l1_core0 size 802816 align 64 : !mem.buffer<1x56x56x64xi32, global.l1>

// One core's stream: DMA and weight load before a height-tiled loop. Every task returns a
// token and waits for the tokens after `after`.
aipu.core 0 {
  %t0 = aipu.dma system ins(%x_ddr : !mem.buffer<1x56x56x64xi8, global.ddr>) outs(%x_l2 : !mem.buffer<1x56x56x64xi8, global.l2>)
  %t1 = aipu.dma core ins(%x_l2 : !mem.buffer<1x56x56x64xi8, global.l2>) outs(%x : !mem.buffer<1x56x56x64xi8, global.l1>) after %t0
  %t2 = aipu.dma core ins(%w_ddr : !mem.buffer<512x64xi8, global.ddr>) outs(%w : !mem.buffer<512x64xi8, global.l1>) channel 1
  %t3 = aipu.imc_load ins(%w : !mem.buffer<512x64xi8, global.l1>) weightset 2 after %t2

  // CHECK-NEXT: aipu.core 0 {
  // CHECK-NEXT:   %t0 = aipu.dma system ins(%x_ddr : !mem.buffer<1x56x56x64xi8, global.ddr>) outs(%x_l2 : !mem.buffer<1x56x56x64xi8, global.l2>)
  // CHECK-NEXT:   %t1 = aipu.dma core ins(%x_l2 : !mem.buffer<1x56x56x64xi8, global.l2>) outs(%x : !mem.buffer<1x56x56x64xi8, global.l1>) after %t0
  // CHECK-NEXT:   %t2 = aipu.dma core ins(%w_ddr : !mem.buffer<512x64xi8, global.ddr>) outs(%w : !mem.buffer<512x64xi8, global.l1>) channel 1
  // CHECK-NEXT:   %t3 = aipu.imc_load ins(%w : !mem.buffer<512x64xi8, global.l1>) weightset 2 after %t2

  // CHECK-GENERIC: %t2 = "aipu.dma"(%w_ddr, %w) <{engine = #aipu<dma_engine core>, channel = 1 : i64}> : (!mem.buffer<512x64xi8, global.ddr>, !mem.buffer<512x64xi8, global.l1>) -> !aipu.token
  // CHECK-GENERIC: %t3 = "aipu.imc_load"(%w, %t2) <{weightset = 2 : i64}> : (!mem.buffer<512x64xi8, global.l1>, !aipu.token) -> !aipu.token

  aipu.tile_loop %i = 0 to 14 {
    %in = mem.view %x[0, 4 * %i, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
    %out = mem.view %y[0, 4 * %i, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
    %part = mem.view %p[0, 4 * %i, 0, 0] : !mem.buffer<1x56x56x64xi32, global.l1> -> !mem.view<1x4x56x64xi32, global.l1>
    // A 1x1 conv, K chunked in two: partial sums in int32, then accumulate and requantize.
    %m0 = aipu.mvm ins(%in : !mem.view<1x4x56x64xi8, global.l1>) outs(%part : !mem.view<1x4x56x64xi32, global.l1>) weightset 2 k 32 n 64 after %t1, %t3
    %m1 = aipu.mvm ins(%in : !mem.view<1x4x56x64xi8, global.l1>) outs(%out : !mem.view<1x4x56x64xi8, global.l1>) acc(%part : !mem.view<1x4x56x64xi32, global.l1>) requant(%rq : !mem.buffer<64x3xi32, global.l1>) weightset 3 k 32 n 64 after %m0
    // Hand the MVM result to the DPU through hardware token 5.
    aipu.token_signal mvm 5 after %m1
    %go = aipu.token_wait dpu 5
    %d = aipu.dpu after %go {
      %a = aipu.dpu.load %out : !mem.view<1x4x56x64xi8, global.l1>
      %b = aipu.dpu.mul %a, %a
      %c = aipu.dpu.add %b, %a
      %e = aipu.dpu.lut %c, %lut : !mem.buffer<256xi8, global.l2>
      %q = aipu.dpu.requant %e scale 2.500000e-01 zero_point -3
      aipu.dpu.store %q, %out : !mem.view<1x4x56x64xi8, global.l1>
    }
  }

  // CHECK-NEXT:   aipu.tile_loop %i = 0 to 14 {
  // CHECK-NEXT:     %in = mem.view %x[0, 4 * %i, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
  // CHECK-NEXT:     %out = mem.view %y[0, 4 * %i, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
  // CHECK-NEXT:     %part = mem.view %p[0, 4 * %i, 0, 0] : !mem.buffer<1x56x56x64xi32, global.l1> -> !mem.view<1x4x56x64xi32, global.l1>
  // CHECK-NEXT:     %m0 = aipu.mvm ins(%in : !mem.view<1x4x56x64xi8, global.l1>) outs(%part : !mem.view<1x4x56x64xi32, global.l1>) weightset 2 k 32 n 64 after %t1, %t3
  // CHECK-NEXT:     %m1 = aipu.mvm ins(%in : !mem.view<1x4x56x64xi8, global.l1>) outs(%out : !mem.view<1x4x56x64xi8, global.l1>) acc(%part : !mem.view<1x4x56x64xi32, global.l1>) requant(%rq : !mem.buffer<64x3xi32, global.l1>) weightset 3 k 32 n 64 after %m0
  // CHECK-NEXT:     aipu.token_signal mvm 5 after %m1
  // CHECK-NEXT:     %go = aipu.token_wait dpu 5
  // CHECK-NEXT:     %d = aipu.dpu after %go {
  // CHECK-NEXT:       %a = aipu.dpu.load %out : !mem.view<1x4x56x64xi8, global.l1>
  // CHECK-NEXT:       %b = aipu.dpu.mul %a, %a
  // CHECK-NEXT:       %c = aipu.dpu.add %b, %a
  // CHECK-NEXT:       %e = aipu.dpu.lut %c, %lut : !mem.buffer<256xi8, global.l2>
  // CHECK-NEXT:       %q = aipu.dpu.requant %e scale 2.500000e-01 zero_point -3
  // CHECK-NEXT:       aipu.dpu.store %q, %out : !mem.view<1x4x56x64xi8, global.l1>
  // CHECK-NEXT:     }
  // CHECK-NEXT:   }

  // CHECK-GENERIC: "aipu.tile_loop"() <{lb = 0 : i64, ub = 14 : i64}> ({
  // CHECK-GENERIC-NEXT: ^bb0(%i: index):
  // CHECK-GENERIC: %m1 = "aipu.mvm"(%in, %out, %part, %rq, %m0) <{weightset = 3 : i64, k = 32 : i64, n = 64 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>, icr = 1 : i64, kernel = array<i64: 1, 1>, stride = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>}> : (!mem.view<1x4x56x64xi8, global.l1>, !mem.view<1x4x56x64xi8, global.l1>, !mem.view<1x4x56x64xi32, global.l1>, !mem.buffer<64x3xi32, global.l1>, !aipu.token) -> !aipu.token
  // CHECK-GENERIC: "aipu.token_signal"(%m1) <{unit = #aipu<unit mvm>, id = 5 : i64}> : (!aipu.token) -> ()
  // CHECK-GENERIC: %d = "aipu.dpu"(%go) ({
  // CHECK-GENERIC-NEXT: %a = "aipu.dpu.load"(%out) : (!mem.view<1x4x56x64xi8, global.l1>) -> !aipu.vreg
  // CHECK-GENERIC: "aipu.yield"() : () -> ()

  // A 3x3 conv on a halo tile (ICR 2 for 32 output channels), depthwise conv, max pooling.
  %halo = mem.view %x[0, 0, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x6x56x64xi8, global.l1>
  %o32 = mem.view %y[0, 0, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x32xi8, global.l1>
  %o64 = mem.view %y[0, 0, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x4x56x64xi8, global.l1>
  %pool = mem.view %y[0, 0, 0, 0] : !mem.buffer<1x56x56x64xi8, global.l1> -> !mem.view<1x2x28x64xi8, global.l1>
  %c3 = aipu.mvm ins(%halo : !mem.view<1x6x56x64xi8, global.l1>) outs(%o32 : !mem.view<1x4x56x32xi8, global.l1>) requant(%rq : !mem.buffer<64x3xi32, global.l1>) weightset 0 k 512 n 32 icr 2 kernel [3, 3] pads [0, 1, 0, 1]
  %dc = aipu.dwpu conv ins(%halo : !mem.view<1x6x56x64xi8, global.l1>) outs(%o64 : !mem.view<1x4x56x64xi8, global.l1>) weights(%dw : !mem.buffer<3x3x64xi8, global.l1>) requant(%rq : !mem.buffer<64x3xi32, global.l1>) kernel [3, 3] pads [0, 1, 0, 1]
  %mp = aipu.dwpu max ins(%o64 : !mem.view<1x4x56x64xi8, global.l1>) outs(%pool : !mem.view<1x2x28x64xi8, global.l1>) kernel [2, 2] stride [2, 2] after %dc
}

// CHECK:      %c3 = aipu.mvm ins(%halo : !mem.view<1x6x56x64xi8, global.l1>) outs(%o32 : !mem.view<1x4x56x32xi8, global.l1>) requant(%rq : !mem.buffer<64x3xi32, global.l1>) weightset 0 k 512 n 32 icr 2 kernel [3, 3] pads [0, 1, 0, 1]
// CHECK-NEXT: %dc = aipu.dwpu conv ins(%halo : !mem.view<1x6x56x64xi8, global.l1>) outs(%o64 : !mem.view<1x4x56x64xi8, global.l1>) weights(%dw : !mem.buffer<3x3x64xi8, global.l1>) requant(%rq : !mem.buffer<64x3xi32, global.l1>) kernel [3, 3] pads [0, 1, 0, 1]
// CHECK-NEXT: %mp = aipu.dwpu max ins(%o64 : !mem.view<1x4x56x64xi8, global.l1>) outs(%pool : !mem.view<1x2x28x64xi8, global.l1>) kernel [2, 2] stride [2, 2] after %dc
// CHECK-NEXT: }

// CHECK-GENERIC: %mp = "aipu.dwpu"(%o64, %pool, %dc) <{mode = #aipu<dwpu_mode max>, kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 1>, pads = array<i64: 0, 0, 0, 0>}>

// Attributes print in their opaque form when not inside an op's format.
"test.op"() {unit = #aipu<unit dwpu>, space = #mem<space global.l2>, mode = #aipu<dwpu_mode avg>, engine = #aipu<dma_engine system>} : () -> ()

// CHECK-NEXT: "test.op"() {unit = #aipu<unit dwpu>, space = #mem<space global.l2>, mode = #aipu<dwpu_mode avg>, engine = #aipu<dma_engine system>} : () -> ()
