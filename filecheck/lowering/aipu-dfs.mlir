// RUN: xdsl-opt %s -p 'aipu-dfs{tiling_depth=1}' | filecheck %s --check-prefix=OFF
// RUN: xdsl-opt %s -p 'aipu-dfs{tiling_depth=3}' | filecheck %s --check-prefix=THREE
// RUN: xdsl-opt %s -p 'aipu-dfs{tiling_depth=2}' | filecheck %s --check-prefix=TWO
// RUN: xdsl-opt %s -p 'aipu-dfs{tiling_depth=3 dfs_search_constraint=1}' | filecheck %s --check-prefix=THREE
// RUN: sed -e 's/capacity 3670016/capacity 3000/' %s | xdsl-opt -p 'aipu-dfs{tiling_depth=3}' | filecheck %s --check-prefix=SMALL
// RUN: sed -e 's/capacity 3670016/capacity 3000/' %s | xdsl-opt -p 'aipu-dfs{tiling_depth=3 dfs_search_constraint=1}' | filecheck %s --check-prefix=NONE
// RUN: sed -e 's/force_h_tiling = none/force_h_tiling = 4/' %s | xdsl-opt -p 'aipu-dfs{tiling_depth=3}' | filecheck %s --check-prefix=FORCED
// RUN: xdsl-opt %s -p 'aipu-tile{force_h_tiling=2},aipu-dfs{tiling_depth=3}' | filecheck %s --check-prefix=TILE
// RUN: sed -e 's/capacity 3670016/capacity 4800/' %s | xdsl-opt -p 'aipu-dfs{tiling_depth=3 dfs_search_constraint=1}' | filecheck %s --check-prefix=NONE
// RUN: sed -e 's/capacity 3670016/capacity 4800/; s/ignore_weight_buffers = false/ignore_weight_buffers = true/' %s | xdsl-opt -p 'aipu-dfs{tiling_depth=3 dfs_search_constraint=1}' | filecheck %s --check-prefix=NONE
// RUN: sed -e 's/ attributes {aipu.tiling = .*} {/ {/' %s | not xdsl-opt -p 'aipu-dfs{tiling_depth=3}' 2>&1 | filecheck %s --check-prefix=NORULES

// A chain conv (MVM) -> sigmoid table (DPU) -> 2x2 max pool (DWPU), each result read only
// by the next layer: with tiling_depth >= 3 the three run as one depth-first group. The
// module carries aipu-tile's rules (`aipu.tiling`; here: height tiles searched, weights
// counted).

builtin.module attributes {aipu.tiling = #aipu.tiling<force_h_tiling = none, ignore_weight_buffers = false>} {
  mem.pool @ddr global.ddr capacity 1040187392 at 4294967296
  mem.pool @l2 global.l2 capacity 31260672 at 134217728
  mem.pool @l1_core0 global.l1 core 0 capacity 3670016 at 206175207424
  func.func @main(%x: tensor<1x64x8x8x!axq.q<i8, 0.5:0>> {axq.name = "x"}) -> (tensor<1x2x4x4x!axq.q<i8, 0.5:0>> {axq.name = "y"}) {
    %0 = aipu.to_device %x {perm = array<i64: 0, 2, 3, 1>} : tensor<1x64x8x8x!axq.q<i8, 0.5:0>> -> tensor<1x8x8x64xi8>
    %w = aipu.const {value = dense<1> : tensor<64x2xi8>} : tensor<64x2xi8>
    %t = aipu.const {value = dense<[[0, 1073741824, 31, 0], [0, 1073741824, 31, 0]]> : tensor<2x4xi32>} : tensor<2x4xi32>
    %c = aipu.conv %0, %w, %t {in_c = 64 : i64, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x64xi8>, tensor<64x2xi8>, tensor<2x4xi32>) -> tensor<1x8x8x2xi8>
    %lut = aipu.const {value = dense<0> : tensor<256xi8>} : tensor<256xi8>
    %s = aipu.eltwise(%c) : (tensor<1x8x8x2xi8>) -> tensor<1x8x8x2xi8> {
    ^bb0(%r: !aipu.vreg):
      %v = aipu.dpu.lut %r, %lut : tensor<256xi8>
      aipu.dpu.yield %v
    }
    %p = aipu.pool max %s : tensor<1x8x8x2xi8> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} -> tensor<1x4x4x2xi8>
    %y = aipu.from_device %p {perm = array<i64: 0, 2, 3, 1>} : tensor<1x4x4x2xi8> -> tensor<1x2x4x4x!axq.q<i8, 0.5:0>>
    func.return %y : tensor<1x2x4x4x!axq.q<i8, 0.5:0>>
  }
}

// tiling_depth=1: no group.
// OFF-NOT: dfs_group

// tiling_depth=3: one group of the three layers; the whole chain fits L1 in one tile.
// THREE:      aipu.conv {{.*}}dfs_group = 0 : i64, tiles = array<i64: 1, 1>
// THREE:      aipu.eltwise
// THREE-SAME: dfs_group = 0 : i64, tiles = array<i64: 1, 1>
// THREE:      aipu.pool max {{.*}}dfs_group = 0 : i64, tiles = array<i64: 1, 1>

// tiling_depth=2: the first two layers form a group; the pool is left alone.
// TWO:      aipu.conv {{.*}}dfs_group = 0 : i64
// TWO:      aipu.eltwise
// TWO-SAME: dfs_group = 0 : i64
// TWO:      aipu.pool max
// TWO-NOT:  dfs_group

// An L1 of 3000 bytes. L1 staging (each buffer rounded up to 64 bytes): one tile needs the
// 8x8x64 input (4096) + two 8x8x2 intermediates (128 each) + the 4x4x2 output (64) + weights
// (128) + table (64) + LUT (256) = 4864 > 3000; two tiles of 2 pooled rows read 4 input rows:
// 2048 + 64 + 64 + 64 + 128 + 64 + 256 = 2688 <= 3000.
// SMALL:      aipu.conv {{.*}}dfs_group = 0 : i64, tiles = array<i64: 2, 1>
// SMALL:      aipu.pool max {{.*}}dfs_group = 0 : i64, tiles = array<i64: 2, 1>

// With dfs_search_constraint=1 only the first candidate at each start layer is tried: at
// the conv, the three layers in one tile (4864 bytes) do not fit, so the conv stays alone;
// at the sigmoid, the table and the pool in one tile (128 + 128 + 64 + 256 bytes) fit.
// NONE:      aipu.conv
// NONE-NOT:  dfs_group
// NONE-SAME: -> tensor<1x8x8x2xi8>
// NONE:      aipu.eltwise
// NONE-SAME: dfs_group = 0 : i64, tiles = array<i64: 1, 1>
// NONE:      aipu.pool max {{.*}}dfs_group = 0 : i64, tiles = array<i64: 1, 1>

// force_h_tiling=4 (as aipu-tile records it): the group's one candidate is 4 tiles of the
// pool's 4 rows, so each member runs 4 tiles (the conv and table computing 2 rows each).
// FORCED:      aipu.conv {{.*}}dfs_group = 0 : i64, tiles = array<i64: 4, 1>
// FORCED:      aipu.eltwise
// FORCED-SAME: dfs_group = 0 : i64, tiles = array<i64: 4, 1>
// FORCED:      aipu.pool max {{.*}}dfs_group = 0 : i64, tiles = array<i64: 4, 1>

// Through aipu-tile: it records force_h_tiling=2 on the module, and the group keeps 2 tiles.
// TILE:       builtin.module attributes {aipu.tiling = #aipu.tiling<force_h_tiling = 2, ignore_weight_buffers = true>}
// TILE:       aipu.conv {{.*}}tiles = array<i64: 2, 1>, dfs_group = 0 : i64
// TILE:       aipu.pool max {{.*}}tiles = array<i64: 2, 1>, dfs_group = 0 : i64

// A group keeps its weights in L1 for its whole run, so they count whatever
// ignore_weight_buffers says. An L1 of 4800 bytes and one candidate per start layer: the
// three layers in one tile stage 4864 bytes, 128 of them the conv's weights; they do not
// fit, and only the table and the pool form a group (NONE above), with the field true too.

// Without aipu-tile's rules, aipu-dfs refuses to guess them.
// NORULES: the module has no aipu.tiling attribute: run aipu-tile first
