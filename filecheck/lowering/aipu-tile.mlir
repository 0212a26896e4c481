// RUN: xdsl-opt %s -p aipu-tile | filecheck %s
// RUN: xdsl-opt %s -p 'aipu-tile{ignore_weight_buffers=false}' | filecheck %s --check-prefix=WEIGHTS
// RUN: xdsl-opt %s -p 'aipu-tile{force_oc_tiling=2}' | filecheck %s --check-prefix=OC
// RUN: xdsl-opt %s -p 'aipu-tile{force_oc_tiling=2}' 2>&1 >/dev/null | filecheck %s --check-prefix=OCWARN
// RUN: xdsl-opt %s -p 'aipu-tile{force_h_tiling=4}' | filecheck %s --check-prefix=H
// RUN: not xdsl-opt %s -p 'aipu-tile{max_tiling_attempts=1}' 2>&1 | filecheck %s --check-prefix=ONE
// RUN: not xdsl-opt %s -p 'aipu-tile{ignore_weight_buffers=false max_tiling_attempts=2}' 2>&1 | filecheck %s --check-prefix=TWO

// Tiles are chosen from the L1 bytes a layer's expansion stages, here against an L1 of 7168
// bytes (buffers are rounded up to 64 bytes). The 1x1 conv [1, 8, 8, 64] -> [1, 8, 8, 64]
// with h height tiles stages input and output rows (4096 / h bytes each), its int32 table
// (64 x 4 x 4 = 1024) and one weightset (64 x 64 = 4096, a weight buffer):
//   h = 1: 4096 + 4096 + 1024 = 9216 (+ 4096 weights = 13312)
//   h = 2: 2048 + 2048 + 1024 = 5120 (+ 4096 = 9216)
//   h = 4: 1024 + 1024 + 1024 = 3072 (+ 4096 = 7168)
// Max pooling 2x2/2 stages 8 input and 4 output rows: 4096 + 1024 = 5120 fits untiled. The
// add stages both inputs and its output: 3 x 4096 / h, so h = 2 (6144). Global pooling
// cannot be height-tiled. The narrow conv with ICR 2 (32 channels x 2 copies) stages
// 4096 / h input, 2048 / h output and a 512-byte table: untiled 6656 (+ 4096 weights).
builtin.module {
  mem.pool @ddr global.ddr capacity 1048576
  mem.pool @l2 global.l2 capacity 1048576
  mem.pool @l1_core0 global.l1 core 0 capacity 7168
  func.func @main(%x: tensor<1x8x8x64xi8>, %w: tensor<64x64xi8>, %t: tensor<64x4xi32>, %tn: tensor<32x4xi32>) -> (tensor<1x8x8x64xi8>, tensor<1x4x4x64xi8>, tensor<1x8x8x64xi8>, tensor<1x1x1x64xi8>, tensor<1x8x8x32xi8>) {
    %conv = aipu.conv %x, %w, %t {in_c = 64 : i64} : (tensor<1x8x8x64xi8>, tensor<64x64xi8>, tensor<64x4xi32>) -> tensor<1x8x8x64xi8>
    %pool = aipu.pool max %x : tensor<1x8x8x64xi8> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} -> tensor<1x4x4x64xi8>
    %sum = aipu.eltwise(%x, %conv) : (tensor<1x8x8x64xi8>, tensor<1x8x8x64xi8>) -> tensor<1x8x8x64xi8> {
    ^bb0(%a: !aipu.vreg, %b: !aipu.vreg):
      %s = aipu.dpu.add %a, %b
      aipu.dpu.yield %s
    }
    %top = aipu.pool global_max %x : tensor<1x8x8x64xi8> -> tensor<1x1x1x64xi8>
    %narrow = aipu.conv %x, %w, %tn {in_c = 64 : i64, icr = 2 : i64} : (tensor<1x8x8x64xi8>, tensor<64x64xi8>, tensor<32x4xi32>) -> tensor<1x8x8x32xi8>
    func.return %conv, %pool, %sum, %top, %narrow : tensor<1x8x8x64xi8>, tensor<1x4x4x64xi8>, tensor<1x8x8x64xi8>, tensor<1x1x1x64xi8>, tensor<1x8x8x32xi8>
  }
}

// Weights are ignored by default: the conv fits with 2 height tiles (5120 bytes).
// CHECK:      %conv = aipu.conv %x, %w, %t {in_c = 64 : i64, tiles = array<i64: 2, 1>}
// CHECK-NEXT: %pool = aipu.pool max %x : tensor<1x8x8x64xi8> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, tiles = array<i64: 1, 1>}
// CHECK-NEXT: %sum = aipu.eltwise(%x, %conv) {tiles = array<i64: 2, 1>}
// CHECK:      %top = aipu.pool global_max %x : tensor<1x8x8x64xi8> {tiles = array<i64: 1, 1>}
// CHECK-NEXT: %narrow = aipu.conv {{.*}} {in_c = 64 : i64, icr = 2 : i64, tiles = array<i64: 1, 1>}

// Counting the weightset: 2 tiles need 9216 bytes, 4 tiles 7168.
// WEIGHTS:    %conv = aipu.conv %x, %w, %t {in_c = 64 : i64, tiles = array<i64: 4, 1>}
// The narrow conv: 2 tiles need 7680 bytes, 4 tiles 6144.
// WEIGHTS:    %narrow = aipu.conv {{.*}} tiles = array<i64: 4, 1>}

// Two output-channel tiles of 32: output rows 2048, table 512, weights 2048 (ignored), so
// one height tile fits: 4096 + 2048 + 512 = 6656. Only MVM layers take channel tiles.
// OC:         %conv = aipu.conv %x, %w, %t {in_c = 64 : i64, tiles = array<i64: 1, 2>}
// OC-NEXT:    %pool = aipu.pool max {{.*}} tiles = array<i64: 1, 1>}
// OC-NEXT:    %sum = aipu.eltwise(%x, %conv) {tiles = array<i64: 2, 1>}
// A layer with ICR keeps one channel tile (its copies share the columns of all 32
// channels), and says so.
// OC:         %narrow = aipu.conv {{.*}} tiles = array<i64: 1, 1>}
// OCWARN:     force_oc_tiling=2 ignored for aipu.conv at loc(unknown): its ICR copies (icr=2) share the MVM columns of all its output channels

// A forced height factor applies to every layer that has that many rows.
// H:          %conv = aipu.conv %x, %w, %t {in_c = 64 : i64, tiles = array<i64: 4, 1>}
// H-NEXT:     %pool = aipu.pool max {{.*}} tiles = array<i64: 4, 1>}
// H-NEXT:     %sum = aipu.eltwise(%x, %conv) {tiles = array<i64: 4, 1>}
// H:          %top = aipu.pool global_max {{.*}} {tiles = array<i64: 1, 1>}
// H-NEXT:     %narrow = aipu.conv {{.*}} tiles = array<i64: 4, 1>}

// ONE: Could not find a tiling factor that fits the memory constraints for aipu.conv at loc(unknown): L1 holds 7168 bytes, tried (height x channel tiles) 1x1: 9216 bytes; raise max_tiling_attempts or l1_constraint, or change force_h_tiling/force_oc_tiling
// TWO: L1 holds 7168 bytes, tried (height x channel tiles) 1x1: 13312 bytes; 2x1: 9216 bytes;
