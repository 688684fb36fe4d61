// The host allocator setting (run.host_allocator): "retain" serves large
// blocks from the heap and keeps them after free, "system" leaves glibc's
// defaults (own mapping, unmapped on free), measured with glibc's own
// accounting in a child process each.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <malloc.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "setup/host_allocator.h"

namespace da {
namespace {

// glibc's own accounting of where a block came from: bytes in mmapped
// blocks, and the main arena's heap size and free bytes (mallinfo2). Unlike
// page-fault counts, these mean the same on every kernel.
struct HeapUse {
  std::size_t mmapped;
  std::size_t heap;
  std::size_t heap_free;
};

HeapUse heap_use() {
  const struct mallinfo2 m = mallinfo2();
  return {m.hblkhd, m.arena, m.fordblks};
}

constexpr std::size_t k64MiB = 64UL << 20;

// Allocates and touches a 64 MiB tensor (above glibc's largest dynamic mmap
// threshold, 32 MiB), frees it, and reports glibc's accounting before,
// while it lived, and after.
struct BlockHistory {
  HeapUse before, during, after;
};

BlockHistory history_of_64MiB_tensor() {
  BlockHistory h{};
  h.before = heap_use();
  {
    const auto t = at::empty({static_cast<std::int64_t>(k64MiB / sizeof(float))}, at::kFloat).fill_(1.0F);
    h.during = heap_use();
  }
  h.after = heap_use();
  return h;
}

// mallopt is process-wide and cannot be undone, so each mode runs in a child
// process and reports by its exit code. "threadsafe" death tests re-execute
// the binary for the one test, so the child does not inherit a setting that
// an earlier test's Trainer made in this process.
TEST(HostAllocator, RetainServesLargeBlocksFromTheHeapAndKeepsThemAfterFree) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setup::configure_host_allocator("retain");
        const BlockHistory h = history_of_64MiB_tensor();
        std::fprintf(stderr, "retain: mmapped +%zu, heap +%zu, heap free after %zu\n",
                     h.during.mmapped - h.before.mmapped, h.during.heap - h.before.heap, h.after.heap_free);
        const bool from_heap = h.during.mmapped == h.before.mmapped && h.during.heap >= h.before.heap + k64MiB;
        const bool kept = h.after.heap >= h.before.heap + k64MiB && h.after.heap_free >= k64MiB;
        std::exit(from_heap && kept ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "retain: mmapped \\+0, heap \\+[0-9]+");
}

TEST(HostAllocator, SystemMapsLargeBlocksAndReturnsThemOnFree) {
  // The other side of the test above: glibc's defaults give the block its own
  // mapping and unmap it on free (so the test above measures something).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setup::configure_host_allocator("system");
        const BlockHistory h = history_of_64MiB_tensor();
        std::fprintf(stderr, "system: mmapped +%zu, mmapped after %zu (before %zu)\n",
                     h.during.mmapped - h.before.mmapped, h.after.mmapped, h.before.mmapped);
        const bool mapped = h.during.mmapped >= h.before.mmapped + k64MiB;
        const bool returned = h.after.mmapped == h.before.mmapped && h.after.heap < h.before.heap + k64MiB;
        std::exit(mapped && returned ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "system: mmapped \\+[0-9]+");
  EXPECT_THROW(setup::configure_host_allocator("jemalloc"), std::invalid_argument);
}

}  // namespace
}  // namespace da
