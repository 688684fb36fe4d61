// Which GPU a rank takes, in both cluster layouts: every rank of a node sees
// all its GPUs (the local rank's one), or each sees only its own (device 0).
#include <gtest/gtest.h>

#include "dist/errors.h"
#include "dist/local_device.h"

namespace da::dist {
namespace {

WorldInfo local(int local_rank, int local_size) {
  WorldInfo world;
  world.rank = 8 + local_rank;  // second node of 8 ranks each
  world.size = 16;
  world.local_rank = local_rank;
  world.local_size = local_size;
  return world;
}

TEST(LocalDevice, AllGpusVisibleTakesTheLocalRanksOne) {
  for (int r = 0; r < 8; ++r) EXPECT_EQ(local_device_index(local(r, 8), 8), r);
  EXPECT_EQ(local_device_index(local(2, 4), 8), 2);  // fewer ranks than GPUs
}

TEST(LocalDevice, OneGpuPerTaskIsDeviceZeroWhateverTheLocalRank) {
  for (int r = 0; r < 8; ++r) EXPECT_EQ(local_device_index(local(r, 8), 1), 0);
}

TEST(LocalDevice, AmbiguousOrMissingGpusAreClearErrors) {
  try {
    local_device_index(local(5, 8), 4);
    FAIL() << "expected DistError";
  } catch (const DistError& e) {
    EXPECT_EQ(std::string(e.what()),
              "rank 13 (local rank 5) sees 4 GPUs shared by 8 local ranks: start at most one rank per GPU, or give "
              "each rank its own (srun --gpus-per-task=1, or one CUDA_VISIBLE_DEVICES id per rank)");
  }
  try {
    local_device_index(local(0, 8), 0);
    FAIL() << "expected DistError";
  } catch (const DistError& e) {
    EXPECT_EQ(std::string(e.what()), "rank 8 (local rank 0): no CUDA device is visible");
  }
}

}  // namespace
}  // namespace da::dist
