// RUN: xdsl-opt %s -p 'mem-pools,aipu-tile,mem-promote{enable_buffer_promotion=false}' | filecheck %s --check-prefix=OFF
// RUN: xdsl-opt %s -p 'mem-pools,aipu-tile,mem-promote{enable_buffer_promotion=false io_memory_pool="global.l2" constant_memory_pool="global.l1" workspace_memory_pool="global.l2"}' | filecheck %s --check-prefix=POOLS
// RUN: xdsl-opt %s -p 'mem-pools,aipu-tile,mem-promote' | filecheck %s --check-prefix=ALL
// RUN: xdsl-opt %s -p 'mem-pools{l1_constraint=10240},aipu-tile,mem-promote' | filecheck %s --check-prefix=TIGHT
// RUN: xdsl-opt %s -p 'mem-pools,aipu-tile,mem-promote{promote_to="global.l2"}' | filecheck %s --check-prefix=L2
// RUN: xdsl-opt %s -p 'mem-pools{l1_constraint=10240},aipu-tile,mem-promote{promote_to="global.l2"},mem-promote{promote_to="global.l1"}' | filecheck %s --check-prefix=TIGHT
// RUN: xdsl-opt %s -p 'mem-pools{l1_constraint=10240},aipu-tile,mem-promote{l1_headroom=1024}' | filecheck %s --check-prefix=ROOMY
// RUN: xdsl-opt %s -p 'mem-pools{l1_constraint=10240},aipu-tile,mem-promote{l1_headroom=4096}' | filecheck %s --check-prefix=HEADROOM

// One segment of three layers: conv (step 0), clamp (step 1), max pool (step 2).
// Sizes: x 1024 B, w 2304, t 256, y and z 4096 each, p 1024.
// DMA traffic with every tensor out of L1: x 1024 (read once), w 2304, t 256, y 8192
// (written by the conv, read by the clamp), z 8192, p 1024 (written once); so y and z save
// two bytes of traffic per byte of room, the others one.
builtin.module {
  func.func @main(%in: tensor<1x4x16x16x!axq.q<i8, 0.1:0>>) -> tensor<1x16x8x8x!axq.q<i8, 0.1:0>> {
    %x = aipu.to_device %in {perm = array<i64: 0, 2, 3, 1>} : tensor<1x4x16x16x!axq.q<i8, 0.1:0>> -> tensor<1x16x16x4xi8>
    %w = aipu.const {value = dense<1> : tensor<36x64xi8>} : tensor<36x64xi8>
    %t = aipu.const {value = dense<1> : tensor<16x4xi32>} : tensor<16x4xi32>
    %y = aipu.conv %x, %w, %t {in_c = 4 : i64, icr = 4 : i64, swicr = true, in_zp = 0 : i64, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x16x16x4xi8>, tensor<36x64xi8>, tensor<16x4xi32>) -> tensor<1x16x16x16xi8>
    %z = aipu.eltwise(%y) : (tensor<1x16x16x16xi8>) -> tensor<1x16x16x16xi8> {
    ^bb0(%v: !aipu.vreg):
      %c = aipu.dpu.clamp %v, 0, 127
      aipu.dpu.yield %c
    }
    %p = aipu.pool max %z : tensor<1x16x16x16xi8> {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} -> tensor<1x8x8x16xi8>
    %out = aipu.from_device %p {perm = array<i64: 0, 2, 3, 1>} : tensor<1x8x8x16xi8> -> tensor<1x16x8x8x!axq.q<i8, 0.1:0>>
    func.return %out : tensor<1x16x8x8x!axq.q<i8, 0.1:0>>
  }
}

// Initial homes only: the config's pools (all DDR by default).
// OFF:      %x = aipu.to_device %in {{.*}}home = #mem<space global.ddr>
// OFF-NEXT: %w = aipu.const {{.*}}home = #mem<space global.ddr>
// OFF-NEXT: %t = aipu.const {{.*}}home = #mem<space global.ddr>
// OFF-NEXT: %y = aipu.conv {{.*}}home = #mem<space global.ddr>
// OFF-NEXT: %z = aipu.eltwise{{.*}}home = #mem<space global.ddr>
// OFF:      %p = aipu.pool {{.*}}home = #mem<space global.ddr>
// OFF-NEXT: aipu.from_device %p {perm = array<i64: 0, 2, 3, 1>} :

// Segment input and output (x, p) from io_memory_pool, constants from constant_memory_pool,
// the rest from workspace_memory_pool.
// POOLS:      %x = aipu.to_device %in {{.*}}home = #mem<space global.l2>
// POOLS-NEXT: %w = aipu.const {{.*}}home = #mem<space global.l1>
// POOLS-NEXT: %t = aipu.const {{.*}}home = #mem<space global.l1>
// POOLS-NEXT: %y = aipu.conv {{.*}}home = #mem<space global.l2>
// POOLS-NEXT: %z = aipu.eltwise{{.*}}home = #mem<space global.l2>
// POOLS:      %p = aipu.pool {{.*}}home = #mem<space global.l2>

// Everything fits in L1.
// ALL:      %x = aipu.to_device %in {{.*}}home = #mem<space global.l1>
// ALL-NEXT: %w = aipu.const {{.*}}home = #mem<space global.l1>
// ALL-NEXT: %t = aipu.const {{.*}}home = #mem<space global.l1>
// ALL-NEXT: %y = aipu.conv {{.*}}home = #mem<space global.l1>
// ALL-NEXT: %z = aipu.eltwise{{.*}}home = #mem<space global.l1>
// ALL:      %p = aipu.pool {{.*}}home = #mem<space global.l1>

// L1 of 10240 bytes. L1 staging per step with nothing in L1: conv 7680 (x 1024, y 4096,
// t 256, w 2304), clamp 8192, pool 5120. Best first: y (steps 0-1; the conv then stages
// 3584 and the clamp 4096: 7680 and 8192 bytes), z (steps 1-2: 8192, 5120), then w: it
// lives throughout and step 1 would need 4096 + 4096 + 2304 > 10240, so w stays in L2;
// x, p and t fit.
// TIGHT:      %x = aipu.to_device %in {{.*}}home = #mem<space global.l1>
// TIGHT-NEXT: %w = aipu.const {{.*}}home = #mem<space global.l2>
// TIGHT-NEXT: %t = aipu.const {{.*}}home = #mem<space global.l1>
// TIGHT-NEXT: %y = aipu.conv {{.*}}home = #mem<space global.l1>
// TIGHT-NEXT: %z = aipu.eltwise{{.*}}home = #mem<space global.l1>
// TIGHT:      %p = aipu.pool {{.*}}home = #mem<space global.l1>

// Promotion to L2 only (the first of the two passes of split_buffer_promotion).
// L2:      %x = aipu.to_device %in {{.*}}home = #mem<space global.l2>
// L2-NEXT: %w = aipu.const {{.*}}home = #mem<space global.l2>
// L2-NEXT: %t = aipu.const {{.*}}home = #mem<space global.l2>
// L2-NEXT: %y = aipu.conv {{.*}}home = #mem<space global.l2>
// L2-NEXT: %z = aipu.eltwise{{.*}}home = #mem<space global.l2>
// L2:      %p = aipu.pool {{.*}}home = #mem<space global.l2>

// L1 headroom (after a failed L1 plan): the TIGHT promotion needs, homes plus staging,
// 7680 bytes at step 0 (x, y, t; w staged), 8448 at step 1 (t, y, z), 5376 at step 2
// (t, z, p). A headroom of 1024 bytes leaves 9216: every step fits, nothing goes back.
// ROOMY:     builtin.module attributes {{.*}}mem.promotion = {l1_headroom = 1024 : i64, demoted = 0 : i64, demoted_bytes = 0 : i64}
// ROOMY:     %t = aipu.const {{.*}}home = #mem<space global.l1>
// A headroom of 4096 leaves 6144, so steps 0 and 1 are crowded. Least valuable per byte
// first: t goes back (the conv then stages it: step 0 still needs 7680, step 1 only
// 8192); p lives at step 2 only, which is not crowded; x, z and y stay, as the layers
// touching them would stage as many bytes of them as they take (one tile each here).
// HEADROOM:      builtin.module attributes {{.*}}mem.promotion = {l1_headroom = 4096 : i64, demoted = 1 : i64, demoted_bytes = 256 : i64}
// HEADROOM:      %x = aipu.to_device %in {{.*}}home = #mem<space global.l1>
// HEADROOM-NEXT: %w = aipu.const {{.*}}home = #mem<space global.l2>
// HEADROOM-NEXT: %t = aipu.const {{.*}}home = #mem<space global.l2>
// HEADROOM-NEXT: %y = aipu.conv {{.*}}home = #mem<space global.l1>
// HEADROOM-NEXT: %z = aipu.eltwise{{.*}}home = #mem<space global.l1>
// HEADROOM:      %p = aipu.pool {{.*}}home = #mem<space global.l1>
