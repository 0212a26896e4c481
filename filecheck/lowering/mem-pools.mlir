// RUN: xdsl-opt %s -p mem-pools | filecheck %s
// RUN: xdsl-opt %s -p 'mem-pools{l1_constraint=1000 resources_used=0.5}' | filecheck %s --check-prefix=SHARE
// RUN: xdsl-opt %s -p 'mem-pools{page_memory=false aipu_cores_used=2 l1_virtual_address=4096 l1_core0_physical_address=8192}' | filecheck %s --check-prefix=CORES
// RUN: xdsl-opt %s -p 'mem-pools{ddr_size_max=536870912 l2_size_used=2097152 l2_size_reserved=0 l2_size_reserved_tasklist=65536}' | filecheck %s --check-prefix=SIZES
// RUN: not xdsl-opt %s -p 'mem-pools{l1_size_reserved=4194304}' 2>&1 | filecheck %s --check-prefix=EMPTY
// RUN: not xdsl-opt %s -p 'mem-pools{l2_constraint=2048}' 2>&1 | filecheck %s --check-prefix=PAGE
// RUN: xdsl-opt %s -p 'mem-pools{l2_constraint=2048 page_memory=false}' | filecheck %s --check-prefix=UNPAGED

// The pools come from the memory-size fields; pools already in the module are replaced.
builtin.module {
  mem.pool @l2 global.l2 capacity 64
  func.func @main() {
    func.return
  }
}

// Defaults: DDR min(1 GiB used, 1 GiB max) - 32 MiB reserved = 1040187392; L2 32 MiB used
// - 1245184 reserved - 1 core x 1 MiB tasklist = 31260672; L1 4 MiB - 512 KiB = 3670016.
// DDR and L2 are paged (64 KiB); each pool has its device address; the tasklist region
// (base, bytes per core) follows L2: 134217728 + 31260672.
// CHECK:      builtin.module attributes {aipu.l1_core0_physical_address = 402653184 : i64, aipu.tasklist_region = array<i64: 165478400, 1048576>} {
// CHECK-NEXT:   mem.pool @ddr global.ddr capacity 1040187392 page 65536 at 4294967296
// CHECK-NEXT:   mem.pool @l2 global.l2 capacity 31260672 page 65536 at 134217728
// CHECK-NEXT:   mem.pool @l1_core0 global.l1 core 0 capacity 3670016 at 206175207424
// CHECK-NEXT:   func.func @main() {
// CHECK-NOT:  mem.pool

// A constraint caps a pool before resources_used scales it: L1 min(3670016, 1000) / 2.
// A paged pool keeps whole pages: L2 31260672 / 2 = 15630336 is 238.5 pages, so 238.
// SHARE:      mem.pool @ddr global.ddr capacity 520093696 page 65536 at 4294967296
// SHARE-NEXT: mem.pool @l2 global.l2 capacity 15597568 page 65536 at 134217728
// SHARE-NEXT: mem.pool @l1_core0 global.l1 core 0 capacity 500 at 206175207424

// Two cores: one L1 pool each, and L2 reserves two tasklists (31260672 - 1048576).
// CORES:      builtin.module attributes {aipu.l1_core0_physical_address = 8192 : i64, aipu.tasklist_region = array<i64: 164429824, 1048576>} {
// CORES-NEXT:   mem.pool @ddr global.ddr capacity 1040187392 at 4294967296
// CORES-NEXT:   mem.pool @l2 global.l2 capacity 30212096 at 134217728
// CORES-NEXT:   mem.pool @l1_core0 global.l1 core 0 capacity 3670016 at 4096
// CORES-NEXT:   mem.pool @l1_core1 global.l1 core 1 capacity 3670016 at 4096

// ddr_size_max caps the used DDR: 512 MiB - 32 MiB; L2: 2 MiB - 64 KiB tasklist.
// SIZES:      mem.pool @ddr global.ddr capacity 503316480 page 65536 at 4294967296
// SIZES-NEXT: mem.pool @l2 global.l2 capacity 2031616 page 65536 at 134217728

// EMPTY: no global.l1 memory is left to the compiler (0 bytes); check the size, reserved and constraint fields and resources_used

// A paged pool holds at least one page.
// PAGE: the global.l2 pool of 2048 bytes is smaller than one page (65536 bytes) of page_memory; raise its size or constraint fields or resources_used, or set page_memory=false
// UNPAGED: mem.pool @l2 global.l2 capacity 2048 at 134217728
