// RUN: xdsl-opt %s -p mem-bufferize --split-input-file | filecheck %s

// Two accelerated segments around a host op. Segment 0: a 3x3 conv (swICR, 2 channels) in
// 4 height tiles of 2 output rows, then a ReLU on the DPU; segment 1: max pooling and a
// strided DMA move with fill. Tensors live in DDR (no home chosen); each layer stages its
// tiles through L1 (buffers are whole PWORDs: 64 bytes at least).
builtin.module {
  mem.pool @ddr global.ddr capacity 1048576
  mem.pool @l2 global.l2 capacity 1048576
  mem.pool @l1_core0 global.l1 core 0 capacity 65536
  func.func @main(%in: tensor<1x2x8x4xi8>) -> tensor<1x2x4x2xi8> {
    %x = aipu.to_device %in {perm = array<i64: 0, 2, 3, 1>} : tensor<1x2x8x4xi8> -> tensor<1x8x4x2xi8>
    %w = aipu.const {value = dense<1> : tensor<18x2xi8>} : tensor<18x2xi8>
    %t = aipu.const {value = dense<[[5, 1073741824, 31, -1], [-5, 1073741824, 31, -1]]> : tensor<2x4xi32>} : tensor<2x4xi32>
    %y = aipu.conv %x, %w, %t {in_c = 2 : i64, swicr = true, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, tiles = array<i64: 4, 1>} : (tensor<1x8x4x2xi8>, tensor<18x2xi8>, tensor<2x4xi32>) -> tensor<1x8x4x2xi8>
    %r = aipu.eltwise(%y) : (tensor<1x8x4x2xi8>) -> tensor<1x8x4x2xi8> {
    ^bb0(%v: !aipu.vreg):
      %c = aipu.dpu.clamp %v, 0, 127
      aipu.dpu.yield %c
    }
    %back = aipu.from_device %r {perm = array<i64: 0, 2, 3, 1>} : tensor<1x8x4x2xi8> -> tensor<1x2x8x4xi8>
    %neg = axq.host "Neg"(%back) {domain = "", opset = 18 : i64, attributes = {}} : (tensor<1x2x8x4xi8>) -> tensor<1x2x8x4xi8>
    %x2 = aipu.to_device %neg {perm = array<i64: 0, 2, 3, 1>} : tensor<1x2x8x4xi8> -> tensor<1x8x4x2xi8>
    %p = aipu.pool max %x2 : tensor<1x8x4x2xi8> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} -> tensor<1x4x2x2xi8>
    %o = aipu.move(%p) {copies = array<i64: 0, 2, 0, 0, 8, 2, 2, 1, 1, 8>, fill = 0 : i64} : (tensor<1x4x2x2xi8>) -> tensor<1x2x4x2xi8>
    %out = aipu.from_device %o {perm = array<i64: 0, 1, 2, 3>} : tensor<1x2x4x2xi8> -> tensor<1x2x4x2xi8>
    func.return %out : tensor<1x2x4x2xi8>
  }
}

// Buffers of segment 0: input, conv result, the constants with their contents, the conv's L1
// staging (4 input rows: a middle tile reads rows 2i+1 .. 2i+4; 2 output rows; the table;
// the 18 x 2 weightset), the ReLU's result and staging, and its DPU program in DDR: 3
// micro-op words (load, clamp, store) of 32 bytes = 96, rounded up to 128.
// CHECK:        %0 = mem.buffer @ddr size 64 align 64 : !mem.buffer<1x8x4x2xi8, global.ddr>
// CHECK-NEXT:   %1 = mem.buffer @ddr size 64 align 64 : !mem.buffer<1x8x4x2xi8, global.ddr>
// CHECK-NEXT:   %2 = mem.buffer @ddr size 64 align 64 init dense<1> : tensor<18x2xi8> : !mem.buffer<18x2xi8, global.ddr>
// CHECK-NEXT:   %3 = mem.buffer @ddr size 64 align 64 init dense<[[5, 1073741824, 31, -1], [-5, 1073741824, 31, -1]]> : tensor<2x4xi32> : !mem.buffer<2x4xi32, global.ddr>
// CHECK-NEXT:   %4 = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<1x4x4x2xi8, global.l1>
// CHECK-NEXT:   %5 = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<1x2x4x2xi8, global.l1>
// CHECK-NEXT:   %6 = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<2x4xi32, global.l1>
// CHECK-NEXT:   %7 = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<18x2xi8, global.l1>
// CHECK-NEXT:   %8 = mem.buffer @ddr size 64 align 64 : !mem.buffer<1x8x4x2xi8, global.ddr>
// CHECK-NEXT:   %9 = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<1x8x4x2xi8, global.l1>
// CHECK-NEXT:   %10 = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<1x8x4x2xi8, global.l1>
// CHECK-NEXT:   %11 = mem.buffer @ddr size 128 align 64 : !mem.buffer<96xi8, global.ddr>

// The conv: table and weightset first, then the height tiles. The first tile reads input
// rows 0..2 with its own top padding, the two middle tiles are a loop reading rows
// 2i+1..2i+4 (no padding), the last reads rows 5..7 with bottom padding.
// CHECK-NEXT:   aipu.segment 0 ins(%0 : !mem.buffer<1x8x4x2xi8, global.ddr>) outs(%8 : !mem.buffer<1x8x4x2xi8, global.ddr>) attributes {input_perms = array<i64: 0, 2, 3, 1>, output_perms = array<i64: 0, 2, 3, 1>} {
// CHECK-NEXT:     aipu.core 0 {
// CHECK-NEXT:       %12 = mem.view %3[0, 0] : !mem.buffer<2x4xi32, global.ddr> -> !mem.view<2x4xi32, global.ddr>
// CHECK-NEXT:       %13 = mem.view %6[0, 0] : !mem.buffer<2x4xi32, global.l1> -> !mem.view<2x4xi32, global.l1>
// CHECK-NEXT:       %14 = aipu.dma core ins(%12 : !mem.view<2x4xi32, global.ddr>) outs(%13 : !mem.view<2x4xi32, global.l1>)
// CHECK-NEXT:       %15 = mem.view %7[0, 0] : !mem.buffer<18x2xi8, global.l1> -> !mem.view<18x2xi8, global.l1>
// CHECK-NEXT:       %16 = mem.view %2[0, 0] : !mem.buffer<18x2xi8, global.ddr> -> !mem.view<18x2xi8, global.ddr>
// CHECK-NEXT:       %17 = aipu.dma core ins(%16 : !mem.view<18x2xi8, global.ddr>) outs(%15 : !mem.view<18x2xi8, global.l1>)
// CHECK-NEXT:       %18 = aipu.imc_load ins(%15 : !mem.view<18x2xi8, global.l1>) weightset 0
// CHECK-NEXT:       %19 = mem.view %4[0, 0, 0, 0] : !mem.buffer<1x4x4x2xi8, global.l1> -> !mem.view<1x3x4x2xi8, global.l1>
// CHECK-NEXT:       %20 = mem.view %0[0, 0, 0, 0] : !mem.buffer<1x8x4x2xi8, global.ddr> -> !mem.view<1x3x4x2xi8, global.ddr>
// CHECK-NEXT:       %21 = aipu.dma core ins(%20 : !mem.view<1x3x4x2xi8, global.ddr>) outs(%19 : !mem.view<1x3x4x2xi8, global.l1>)
// CHECK-NEXT:       %22 = mem.view %5[0, 0, 0, 0] : !mem.buffer<1x2x4x2xi8, global.l1> -> !mem.view<1x2x4x2xi8, global.l1>
// CHECK-NEXT:       %23 = mem.view %6[0, 0] : !mem.buffer<2x4xi32, global.l1> -> !mem.view<2x4xi32, global.l1>
// CHECK-NEXT:       %24 = aipu.mvm ins(%19 : !mem.view<1x3x4x2xi8, global.l1>) outs(%22 : !mem.view<1x2x4x2xi8, global.l1>) requant(%23 : !mem.view<2x4xi32, global.l1>) {weightset = 0 : i64, k = 18 : i64, n = 2 : i64, in_c = 2 : i64, swicr = true, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 0, 1>}
// CHECK-NEXT:       %25 = mem.view %1[0, 0, 0, 0] : !mem.buffer<1x8x4x2xi8, global.ddr> -> !mem.view<1x2x4x2xi8, global.ddr>
// CHECK-NEXT:       %26 = aipu.dma core ins(%22 : !mem.view<1x2x4x2xi8, global.l1>) outs(%25 : !mem.view<1x2x4x2xi8, global.ddr>)
// CHECK-NEXT:       aipu.tile_loop %27 = 0 to 2 {
// CHECK-NEXT:         %28 = mem.view %4[0, 0, 0, 0] : !mem.buffer<1x4x4x2xi8, global.l1> -> !mem.view<1x4x4x2xi8, global.l1>
// CHECK-NEXT:         %29 = mem.view %0[0, 2 * %27 + 1, 0, 0] : !mem.buffer<1x8x4x2xi8, global.ddr> -> !mem.view<1x4x4x2xi8, global.ddr>
// CHECK-NEXT:         %30 = aipu.dma core ins(%29 : !mem.view<1x4x4x2xi8, global.ddr>) outs(%28 : !mem.view<1x4x4x2xi8, global.l1>)
// CHECK-NEXT:         %31 = mem.view %5[0, 0, 0, 0] : !mem.buffer<1x2x4x2xi8, global.l1> -> !mem.view<1x2x4x2xi8, global.l1>
// CHECK-NEXT:         %32 = mem.view %6[0, 0] : !mem.buffer<2x4xi32, global.l1> -> !mem.view<2x4xi32, global.l1>
// CHECK-NEXT:         %33 = aipu.mvm ins(%28 : !mem.view<1x4x4x2xi8, global.l1>) outs(%31 : !mem.view<1x2x4x2xi8, global.l1>) requant(%32 : !mem.view<2x4xi32, global.l1>) {weightset = 0 : i64, k = 18 : i64, n = 2 : i64, in_c = 2 : i64, swicr = true, kernel = array<i64: 3, 3>, pads = array<i64: 0, 1, 0, 1>}
// CHECK-NEXT:         %34 = mem.view %1[0, 2 * %27 + 2, 0, 0] : !mem.buffer<1x8x4x2xi8, global.ddr> -> !mem.view<1x2x4x2xi8, global.ddr>
// CHECK-NEXT:         %35 = aipu.dma core ins(%31 : !mem.view<1x2x4x2xi8, global.l1>) outs(%34 : !mem.view<1x2x4x2xi8, global.ddr>)
// CHECK-NEXT:       }
// CHECK-NEXT:       %36 = mem.view %4[0, 0, 0, 0] : !mem.buffer<1x4x4x2xi8, global.l1> -> !mem.view<1x3x4x2xi8, global.l1>
// CHECK-NEXT:       %37 = mem.view %0[0, 5, 0, 0] : !mem.buffer<1x8x4x2xi8, global.ddr> -> !mem.view<1x3x4x2xi8, global.ddr>
// CHECK-NEXT:       %38 = aipu.dma core ins(%37 : !mem.view<1x3x4x2xi8, global.ddr>) outs(%36 : !mem.view<1x3x4x2xi8, global.l1>)
// CHECK-NEXT:       %39 = mem.view %5[0, 0, 0, 0] : !mem.buffer<1x2x4x2xi8, global.l1> -> !mem.view<1x2x4x2xi8, global.l1>
// CHECK-NEXT:       %40 = mem.view %6[0, 0] : !mem.buffer<2x4xi32, global.l1> -> !mem.view<2x4xi32, global.l1>
// CHECK-NEXT:       %41 = aipu.mvm ins(%36 : !mem.view<1x3x4x2xi8, global.l1>) outs(%39 : !mem.view<1x2x4x2xi8, global.l1>) requant(%40 : !mem.view<2x4xi32, global.l1>) {weightset = 0 : i64, k = 18 : i64, n = 2 : i64, in_c = 2 : i64, swicr = true, kernel = array<i64: 3, 3>, pads = array<i64: 0, 1, 1, 1>}
// CHECK-NEXT:       %42 = mem.view %1[0, 6, 0, 0] : !mem.buffer<1x8x4x2xi8, global.ddr> -> !mem.view<1x2x4x2xi8, global.ddr>
// CHECK-NEXT:       %43 = aipu.dma core ins(%39 : !mem.view<1x2x4x2xi8, global.l1>) outs(%42 : !mem.view<1x2x4x2xi8, global.ddr>)

// The ReLU in one tile: input staged into L1, the DPU program (its load, the layer's
// micro-ops, a store) and the result back to DDR.
// CHECK-NEXT:       %44 = mem.view %9[0, 0, 0, 0] : !mem.buffer<1x8x4x2xi8, global.l1> -> !mem.view<1x8x4x2xi8, global.l1>
// CHECK-NEXT:       %45 = mem.view %1[0, 0, 0, 0] : !mem.buffer<1x8x4x2xi8, global.ddr> -> !mem.view<1x8x4x2xi8, global.ddr>
// CHECK-NEXT:       %46 = aipu.dma core ins(%45 : !mem.view<1x8x4x2xi8, global.ddr>) outs(%44 : !mem.view<1x8x4x2xi8, global.l1>)
// CHECK-NEXT:       %47 = mem.view %10[0, 0, 0, 0] : !mem.buffer<1x8x4x2xi8, global.l1> -> !mem.view<1x8x4x2xi8, global.l1>
// CHECK-NEXT:       %48 = aipu.dpu program(%11 : !mem.buffer<96xi8, global.ddr>) {
// CHECK-NEXT:         %49 = aipu.dpu.load %44 : !mem.view<1x8x4x2xi8, global.l1>
// CHECK-NEXT:         %c = aipu.dpu.clamp %49, 0, 127
// CHECK-NEXT:         aipu.dpu.store %c, %47 : !mem.view<1x8x4x2xi8, global.l1>
// CHECK-NEXT:       }
// CHECK-NEXT:       %50 = mem.view %8[0, 0, 0, 0] : !mem.buffer<1x8x4x2xi8, global.ddr> -> !mem.view<1x8x4x2xi8, global.ddr>
// CHECK-NEXT:       %51 = aipu.dma core ins(%47 : !mem.view<1x8x4x2xi8, global.l1>) outs(%50 : !mem.view<1x8x4x2xi8, global.ddr>)
// CHECK-NEXT:     }
// CHECK-NEXT:   }

// Segment 1 starts after the host op: max pooling, then the move as a fill and one strided
// DMA. @main launches each segment on its IO tensors.
// CHECK-NEXT:   %52 = mem.buffer @ddr size 64 align 64 : !mem.buffer<1x8x4x2xi8, global.ddr>
// CHECK-NEXT:   %53 = mem.buffer @ddr size 64 align 64 : !mem.buffer<1x4x2x2xi8, global.ddr>
// CHECK-NEXT:   %54 = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<1x8x4x2xi8, global.l1>
// CHECK-NEXT:   %55 = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<1x4x2x2xi8, global.l1>
// CHECK-NEXT:   %56 = mem.buffer @ddr size 64 align 64 : !mem.buffer<1x2x4x2xi8, global.ddr>
// CHECK-NEXT:   aipu.segment 1 ins(%52 : !mem.buffer<1x8x4x2xi8, global.ddr>) outs(%56 : !mem.buffer<1x2x4x2xi8, global.ddr>) attributes {input_perms = array<i64: 0, 2, 3, 1>, output_perms = array<i64: 0, 1, 2, 3>} {
// CHECK-NEXT:     aipu.core 0 {
// CHECK-NEXT:       %57 = mem.view %54[0, 0, 0, 0] : !mem.buffer<1x8x4x2xi8, global.l1> -> !mem.view<1x8x4x2xi8, global.l1>
// CHECK-NEXT:       %58 = mem.view %52[0, 0, 0, 0] : !mem.buffer<1x8x4x2xi8, global.ddr> -> !mem.view<1x8x4x2xi8, global.ddr>
// CHECK-NEXT:       %59 = aipu.dma core ins(%58 : !mem.view<1x8x4x2xi8, global.ddr>) outs(%57 : !mem.view<1x8x4x2xi8, global.l1>)
// CHECK-NEXT:       %60 = mem.view %55[0, 0, 0, 0] : !mem.buffer<1x4x2x2xi8, global.l1> -> !mem.view<1x4x2x2xi8, global.l1>
// CHECK-NEXT:       %61 = aipu.dwpu max ins(%57 : !mem.view<1x8x4x2xi8, global.l1>) outs(%60 : !mem.view<1x4x2x2xi8, global.l1>) {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>}
// CHECK-NEXT:       %62 = mem.view %53[0, 0, 0, 0] : !mem.buffer<1x4x2x2xi8, global.ddr> -> !mem.view<1x4x2x2xi8, global.ddr>
// CHECK-NEXT:       %63 = aipu.dma core ins(%60 : !mem.view<1x4x2x2xi8, global.l1>) outs(%62 : !mem.view<1x4x2x2xi8, global.ddr>)
// CHECK-NEXT:       %64 = aipu.fill %56 : !mem.buffer<1x2x4x2xi8, global.ddr> value 0
// CHECK-NEXT:       %65 = aipu.dma core ins(%53 : !mem.buffer<1x4x2x2xi8, global.ddr>) outs(%56 : !mem.buffer<1x2x4x2xi8, global.ddr>) {sizes = array<i64: 8, 2>, src_strides = array<i64: 2, 1>, dst_strides = array<i64: 1, 8>}
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT:   func.func @main(%in: tensor<1x2x8x4xi8>) -> tensor<1x2x4x2xi8> {
// CHECK-NEXT:     %back = aipu.launch 0(%in) : (tensor<1x2x8x4xi8>) -> tensor<1x2x8x4xi8>
// CHECK-NEXT:     %neg = axq.host "Neg"(%back) {domain = "", opset = 18 : i64, attributes = {}} : (tensor<1x2x8x4xi8>) -> tensor<1x2x8x4xi8>
// CHECK-NEXT:     %out = aipu.launch 1(%neg) : (tensor<1x2x8x4xi8>) -> tensor<1x2x4x2xi8>
// CHECK-NEXT:     func.return %out : tensor<1x2x4x2xi8>
// CHECK-NEXT:   }
// CHECK-NEXT: }

// -----

// Homes chosen by promotion: the input in L2 (staged into L1 from there), the weights in L2,
// the conv result in L1 (written in place: no staging buffer, no DMA out). 3 x 3 x 64 = 576
// weight rows are two K chunks of one group: weightsets 0 (rows 0..511) and 1 (512..575);
// the first MVM task writes int32 partial sums, the second accumulates and requantizes. A
// layer of one tile stages its input into L1 once, before the N chunks.
builtin.module {
  mem.pool @ddr global.ddr capacity 1048576
  mem.pool @l2 global.l2 capacity 1048576
  mem.pool @l1_core0 global.l1 core 0 capacity 65536
  func.func @main(%in: tensor<1x64x2x2xi8>) -> tensor<1x2x2x64xi8> {
    %x = aipu.to_device %in {perm = array<i64: 0, 2, 3, 1>, home = #mem<space global.l2>} : tensor<1x64x2x2xi8> -> tensor<1x2x2x64xi8>
    %w = aipu.const {value = dense<2> : tensor<576x64xi8>, home = #mem<space global.l2>} : tensor<576x64xi8>
    %tab = aipu.const {value = dense<0> : tensor<64x4xi32>} : tensor<64x4xi32>
    %y = aipu.conv %x, %w, %tab {in_c = 64 : i64, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, home = #mem<space global.l1>} : (tensor<1x2x2x64xi8>, tensor<576x64xi8>, tensor<64x4xi32>) -> tensor<1x2x2x64xi8>
    %flat = aipu.reinterpret %y : tensor<1x2x2x64xi8> -> tensor<1x4x64xi8>
    %out = aipu.from_device %flat {perm = array<i64: 0, 1, 2>} : tensor<1x4x64xi8> -> tensor<1x4x64xi8>
    %o = "test.op"(%out) : (tensor<1x4x64xi8>) -> tensor<1x2x2x64xi8>
    func.return %o : tensor<1x2x2x64xi8>
  }
}

// CHECK:        %0 = mem.buffer @l2 size 256 align 64 : !mem.buffer<1x2x2x64xi8, global.l2>
// CHECK-NEXT:   %1 = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<1x2x2x64xi8, global.l1>
// CHECK-NEXT:   %2 = mem.buffer @l2 size 36864 align 64 init dense<2> : tensor<576x64xi8> : !mem.buffer<576x64xi8, global.l2>
// CHECK-NEXT:   %3 = mem.buffer @ddr size 1024 align 64 init dense<0> : tensor<64x4xi32> : !mem.buffer<64x4xi32, global.ddr>
// CHECK-NEXT:   %4 = mem.buffer @l1_core0 size 256 align 64 : !mem.buffer<1x2x2x64xi8, global.l1>
// CHECK-NEXT:   %5 = mem.buffer @l1_core0 size 1024 align 64 : !mem.buffer<64x4xi32, global.l1>
// CHECK-NEXT:   %6 = mem.buffer @l1_core0 size 32768 align 64 : !mem.buffer<512x64xi8, global.l1>
// CHECK-NEXT:   %7 = mem.buffer @l1_core0 size 4096 align 64 : !mem.buffer<64x64xi8, global.l1>
// CHECK-NEXT:   %8 = mem.buffer @l1_core0 size 1024 align 64 : !mem.buffer<1x2x2x64xi32, global.l1>
// CHECK-NEXT:   %9 = mem.reinterpret %1 : !mem.buffer<1x2x2x64xi8, global.l1> -> !mem.buffer<1x4x64xi8, global.l1>
// CHECK-NEXT:   aipu.segment 0 ins(%0 : !mem.buffer<1x2x2x64xi8, global.l2>) outs(%9 : !mem.buffer<1x4x64xi8, global.l1>) attributes {input_perms = array<i64: 0, 2, 3, 1>, output_perms = array<i64: 0, 1, 2>} {
// CHECK-NEXT:     aipu.core 0 {
// CHECK-NEXT:     %10 = mem.view %0[0, 0, 0, 0] : !mem.buffer<1x2x2x64xi8, global.l2> -> !mem.view<1x2x2x64xi8, global.l2>
// CHECK-NEXT:     %11 = aipu.dma core ins(%10 : !mem.view<1x2x2x64xi8, global.l2>) outs(%4 : !mem.buffer<1x2x2x64xi8, global.l1>)
// CHECK-NEXT:     %12 = mem.view %3[0, 0] : !mem.buffer<64x4xi32, global.ddr> -> !mem.view<64x4xi32, global.ddr>
// CHECK-NEXT:     %13 = mem.view %5[0, 0] : !mem.buffer<64x4xi32, global.l1> -> !mem.view<64x4xi32, global.l1>
// CHECK-NEXT:     %14 = aipu.dma core ins(%12 : !mem.view<64x4xi32, global.ddr>) outs(%13 : !mem.view<64x4xi32, global.l1>)
// CHECK-NEXT:     %15 = mem.view %6[0, 0] : !mem.buffer<512x64xi8, global.l1> -> !mem.view<512x64xi8, global.l1>
// CHECK-NEXT:     %16 = mem.view %2[0, 0] : !mem.buffer<576x64xi8, global.l2> -> !mem.view<512x64xi8, global.l2>
// CHECK-NEXT:     %17 = aipu.dma core ins(%16 : !mem.view<512x64xi8, global.l2>) outs(%15 : !mem.view<512x64xi8, global.l1>)
// CHECK-NEXT:     %18 = aipu.imc_load ins(%15 : !mem.view<512x64xi8, global.l1>) weightset 0
// CHECK-NEXT:     %19 = mem.view %7[0, 0] : !mem.buffer<64x64xi8, global.l1> -> !mem.view<64x64xi8, global.l1>
// CHECK-NEXT:     %20 = mem.view %2[512, 0] : !mem.buffer<576x64xi8, global.l2> -> !mem.view<64x64xi8, global.l2>
// CHECK-NEXT:     %21 = aipu.dma core ins(%20 : !mem.view<64x64xi8, global.l2>) outs(%19 : !mem.view<64x64xi8, global.l1>)
// CHECK-NEXT:     %22 = aipu.imc_load ins(%19 : !mem.view<64x64xi8, global.l1>) weightset 1
// CHECK-NEXT:     %23 = mem.view %4[0, 0, 0, 0] : !mem.buffer<1x2x2x64xi8, global.l1> -> !mem.view<1x2x2x64xi8, global.l1>
// CHECK-NEXT:     %24 = mem.view %1[0, 0, 0, 0] : !mem.buffer<1x2x2x64xi8, global.l1> -> !mem.view<1x2x2x64xi8, global.l1>
// CHECK-NEXT:     %25 = mem.view %8[0, 0, 0, 0] : !mem.buffer<1x2x2x64xi32, global.l1> -> !mem.view<1x2x2x64xi32, global.l1>
// CHECK-NEXT:     %26 = mem.view %5[0, 0] : !mem.buffer<64x4xi32, global.l1> -> !mem.view<64x4xi32, global.l1>
// CHECK-NEXT:     %27 = aipu.mvm ins(%23 : !mem.view<1x2x2x64xi8, global.l1>) outs(%25 : !mem.view<1x2x2x64xi32, global.l1>) {weightset = 0 : i64, k = 512 : i64, n = 64 : i64, in_c = 64 : i64, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}
// CHECK-NEXT:     %28 = aipu.mvm ins(%23 : !mem.view<1x2x2x64xi8, global.l1>) outs(%24 : !mem.view<1x2x2x64xi8, global.l1>) acc(%25 : !mem.view<1x2x2x64xi32, global.l1>) requant(%26 : !mem.view<64x4xi32, global.l1>) {weightset = 1 : i64, k = 64 : i64, n = 64 : i64, in_c = 64 : i64, k_start = 512 : i64, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT:   func.func @main(%in: tensor<1x64x2x2xi8>) -> tensor<1x2x2x64xi8> {
// CHECK-NEXT:     %out = aipu.launch 0(%in) : (tensor<1x64x2x2xi8>) -> tensor<1x4x64xi8>
// CHECK-NEXT:     %o = "test.op"(%out) : (tensor<1x4x64xi8>) -> tensor<1x2x2x64xi8>
// CHECK-NEXT:     func.return %o : tensor<1x2x2x64xi8>
// CHECK-NEXT:   }
// CHECK-NEXT: }

// -----

// Everything in L1 (promotion put the constants there too): nothing is staged. The weights
// of the two N chunks are stored chunk-major ([2 x 64, 64]); each chunk's IMC load and
// requantization table are views of the constants' own L1 buffers, with no DMA at all.
builtin.module {
  mem.pool @ddr global.ddr capacity 1048576
  mem.pool @l2 global.l2 capacity 1048576
  mem.pool @l1_core0 global.l1 core 0 capacity 65536
  func.func @main(%in: tensor<1x64x1x2xi8>) -> tensor<1x1x2x128xi8> {
    %x = aipu.to_device %in {perm = array<i64: 0, 2, 3, 1>, home = #mem<space global.l1>} : tensor<1x64x1x2xi8> -> tensor<1x1x2x64xi8>
    %w = aipu.const {value = dense<2> : tensor<64x128xi8>, home = #mem<space global.l1>} : tensor<64x128xi8>
    %tab = aipu.const {value = dense<0> : tensor<128x4xi32>, home = #mem<space global.l1>} : tensor<128x4xi32>
    %y = aipu.conv %x, %w, %tab {in_c = 64 : i64, home = #mem<space global.l1>} : (tensor<1x1x2x64xi8>, tensor<64x128xi8>, tensor<128x4xi32>) -> tensor<1x1x2x128xi8>
    %out = aipu.from_device %y {perm = array<i64: 0, 1, 2, 3>} : tensor<1x1x2x128xi8> -> tensor<1x1x2x128xi8>
    func.return %out : tensor<1x1x2x128xi8>
  }
}

// CHECK:        %2 = mem.buffer @l1_core0 size 8192 align 64 init dense<2> : tensor<128x64xi8> : !mem.buffer<128x64xi8, global.l1>
// CHECK-NEXT:   %3 = mem.buffer @l1_core0 size 2048 align 64 init dense<0> : tensor<128x4xi32> : !mem.buffer<128x4xi32, global.l1>
// CHECK-NEXT:   aipu.segment 0
// CHECK-NEXT:     aipu.core 0 {
// CHECK-NEXT:       aipu.tile_loop %4 = 0 to 2 {
// CHECK-NEXT:         %5 = mem.view %2[64 * %4, 0] : !mem.buffer<128x64xi8, global.l1> -> !mem.view<64x64xi8, global.l1>
// CHECK-NEXT:         %6 = aipu.imc_load ins(%5 : !mem.view<64x64xi8, global.l1>) weightset 0
// CHECK-NEXT:         %7 = mem.view %0[0, 0, 0, 0] : !mem.buffer<1x1x2x64xi8, global.l1> -> !mem.view<1x1x2x64xi8, global.l1>
// CHECK-NEXT:         %8 = mem.view %1[0, 0, 0, 64 * %4] : !mem.buffer<1x1x2x128xi8, global.l1> -> !mem.view<1x1x2x64xi8, global.l1>
// CHECK-NEXT:         %9 = mem.view %3[64 * %4, 0] : !mem.buffer<128x4xi32, global.l1> -> !mem.view<64x4xi32, global.l1>
// CHECK-NEXT:         %10 = aipu.mvm ins(%7 : !mem.view<1x1x2x64xi8, global.l1>) outs(%8 : !mem.view<1x1x2x64xi8, global.l1>) requant(%9 : !mem.view<64x4xi32, global.l1>)
// CHECK-NEXT:       }
// CHECK-NEXT:     }
// CHECK-NEXT:   }

// -----

// A depth-first group (as aipu-dfs marks it): a 1x1 conv whose 64-lane pixels hold 8 input
// channels (`channels`; the rest is zero-point padding), then 2x2 max pooling, in 2 tiles of
// one pooled row. Weights and table are staged in L1 once; per tile the input rows come in,
// the MVM writes the conv rows into the group's L1 tile, the pool reads them there and one
// pooled row goes home. The group's MVM carries `channels` as a layer's own expansion does.
builtin.module {
  mem.pool @ddr global.ddr capacity 1048576
  mem.pool @l2 global.l2 capacity 1048576
  mem.pool @l1_core0 global.l1 core 0 capacity 65536
  func.func @main(%in: tensor<1x64x4x4xi8>) -> tensor<1x16x2x2xi8> {
    %x = aipu.to_device %in {perm = array<i64: 0, 2, 3, 1>} : tensor<1x64x4x4xi8> -> tensor<1x4x4x64xi8>
    %w = aipu.const {value = dense<1> : tensor<64x16xi8>} : tensor<64x16xi8>
    %t = aipu.const {value = dense<1073741824> : tensor<16x4xi32>} : tensor<16x4xi32>
    %y = aipu.conv %x, %w, %t {in_c = 64 : i64, channels = 8 : i64, dfs_group = 0 : i64, tiles = array<i64: 2, 1>} : (tensor<1x4x4x64xi8>, tensor<64x16xi8>, tensor<16x4xi32>) -> tensor<1x4x4x16xi8>
    %p = aipu.pool max %y : tensor<1x4x4x16xi8> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, dfs_group = 0 : i64, tiles = array<i64: 2, 1>} -> tensor<1x2x2x16xi8>
    %out = aipu.from_device %p {perm = array<i64: 0, 2, 3, 1>} : tensor<1x2x2x16xi8> -> tensor<1x16x2x2xi8>
    func.return %out : tensor<1x16x2x2xi8>
  }
}

// CHECK:      aipu.tile_loop %[[T:.*]] = 0 to 2 {
// CHECK-NEXT:   mem.view %{{.*}}[0, 2 * %[[T]], 0, 0] : !mem.buffer<1x4x4x64xi8, global.ddr> -> !mem.view<1x2x4x64xi8, global.ddr>
// CHECK:        aipu.imc_load ins(%{{.*}} : !mem.view<64x16xi8, global.l1>) weightset 0
// CHECK-NEXT:   aipu.mvm ins(%{{.*}} : !mem.view<1x2x4x64xi8, global.l1>) outs(%{{.*}} : !mem.view<1x2x4x16xi8, global.l1>) requant(%{{.*}} : !mem.view<16x4xi32, global.l1>) {weightset = 0 : i64, k = 64 : i64, n = 16 : i64, in_c = 64 : i64, channels = 8 : i64}
// CHECK:        aipu.dwpu max ins(%{{.*}} : !mem.view<1x2x4x16xi8, global.l1>) outs(%{{.*}} : !mem.view<1x1x2x16xi8, global.l1>)
// CHECK:        aipu.dma core ins(%{{.*}} : !mem.view<1x1x2x16xi8, global.l1>) outs(%{{.*}} : !mem.view<1x1x2x16xi8, global.ddr>)

// -----

// A byte swap's conv (swap_on_mvm): 4 blocks of 5 rows, a 4 x 1 kernel with dilation 5, in
// 2 height tiles (3 + 2 output rows). Each tile stages only its rows of every block, block
// after block 3 rows apart in L1 (not the 18 rows its dilated window spans), so its MVM
// reads the taps with dilation 3; the last tile's 2 rows per block leave an 11-row view.
builtin.module {
  mem.pool @ddr global.ddr capacity 1048576
  mem.pool @l2 global.l2 capacity 1048576
  mem.pool @l1_core0 global.l1 core 0 capacity 65536
  func.func @main(%in: tensor<1x4x10xi8>) -> tensor<1x10x4xi8> {
    %x = aipu.to_device %in {perm = array<i64: 0, 1, 2>} : tensor<1x4x10xi8> -> tensor<1x4x10xi8>
    %img = aipu.reinterpret %x : tensor<1x4x10xi8> -> tensor<1x20x2x1xi8>
    %w = aipu.const {value = dense<[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]> : tensor<4x4xi8>} : tensor<4x4xi8>
    %t = aipu.const {value = dense<[[0, 1073741824, 30, 0], [0, 1073741824, 30, 0], [0, 1073741824, 30, 0], [0, 1073741824, 30, 0]]> : tensor<4x4xi32>} : tensor<4x4xi32>
    %y = aipu.conv %img, %w, %t {in_c = 1 : i64, swicr = true, kernel = array<i64: 4, 1>, dilation = array<i64: 5, 1>, tiles = array<i64: 2, 1>} : (tensor<1x20x2x1xi8>, tensor<4x4xi8>, tensor<4x4xi32>) -> tensor<1x5x2x4xi8>
    %r = aipu.reinterpret %y : tensor<1x5x2x4xi8> -> tensor<1x10x4xi8>
    %out = aipu.from_device %r {perm = array<i64: 0, 1, 2>} : tensor<1x10x4xi8> -> tensor<1x10x4xi8>
    func.return %out : tensor<1x10x4xi8>
  }
}

// CHECK:        %5 = mem.buffer @l1_core0 size 64 align 64 : !mem.buffer<1x12x2x1xi8, global.l1>
// CHECK-NEXT:   %6 = mem.reinterpret %1 : !mem.buffer<1x20x2x1xi8, global.ddr> -> !mem.buffer<1x4x5x2x1xi8, global.ddr>
// CHECK-NEXT:   %7 = mem.reinterpret %5 : !mem.buffer<1x12x2x1xi8, global.l1> -> !mem.buffer<1x4x3x2x1xi8, global.l1>
// CHECK:        %19 = mem.view %6[0, 0, 0, 0, 0] : !mem.buffer<1x4x5x2x1xi8, global.ddr> -> !mem.view<1x4x3x2x1xi8, global.ddr>
// CHECK-NEXT:   %20 = mem.view %7[0, 0, 0, 0, 0] : !mem.buffer<1x4x3x2x1xi8, global.l1> -> !mem.view<1x4x3x2x1xi8, global.l1>
// CHECK-NEXT:   %21 = aipu.dma core ins(%19 : !mem.view<1x4x3x2x1xi8, global.ddr>) outs(%20 : !mem.view<1x4x3x2x1xi8, global.l1>)
// CHECK-NEXT:   %22 = mem.view %5[0, 0, 0, 0] : !mem.buffer<1x12x2x1xi8, global.l1> -> !mem.view<1x12x2x1xi8, global.l1>
// CHECK:        aipu.mvm ins(%22 : !mem.view<1x12x2x1xi8, global.l1>) outs(%{{.*}} : !mem.view<1x3x2x4xi8, global.l1>) {{.*}} kernel = array<i64: 4, 1>, dilation = array<i64: 3, 1>}
// CHECK:        %28 = mem.view %6[0, 0, 3, 0, 0] : !mem.buffer<1x4x5x2x1xi8, global.ddr> -> !mem.view<1x4x2x2x1xi8, global.ddr>
// CHECK-NEXT:   %29 = mem.view %7[0, 0, 0, 0, 0] : !mem.buffer<1x4x3x2x1xi8, global.l1> -> !mem.view<1x4x2x2x1xi8, global.l1>
// CHECK-NEXT:   %30 = aipu.dma core ins(%28 : !mem.view<1x4x2x2x1xi8, global.ddr>) outs(%29 : !mem.view<1x4x2x2x1xi8, global.l1>)
// CHECK-NEXT:   %31 = mem.view %5[0, 0, 0, 0] : !mem.buffer<1x12x2x1xi8, global.l1> -> !mem.view<1x11x2x1xi8, global.l1>
// CHECK:        aipu.mvm ins(%31 : !mem.view<1x11x2x1xi8, global.l1>) outs(%{{.*}} : !mem.view<1x2x2x4xi8, global.l1>) {{.*}} kernel = array<i64: 4, 1>, dilation = array<i64: 3, 1>}
// CHECK:        %35 = mem.view %2[0, 3, 0, 0] : !mem.buffer<1x5x2x4xi8, global.ddr> -> !mem.view<1x2x2x4xi8, global.ddr>
