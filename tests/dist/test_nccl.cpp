// The NCCL communicator's device selection: a node with several GPUs but
// fewer than its local ranks (or no usable CUDA at all, as on CI machines) is
// a clear error naming the rank and the counts, not a crash inside NCCL.
#include <gtest/gtest.h>

#include <regex>

#include "dist/errors.h"
#include "dist/nccl_communicator.h"

namespace da::dist {
namespace {

TEST(NcclDevice, MoreLocalRanksThanGpusIsAClearError) {
  WorldInfo world;
  world.rank = 3;
  world.size = 1000;
  world.local_rank = 3;
  world.local_size = 1000;
  try {
    select_device(world);
    FAIL() << "expected DistError";
  } catch (const DistError& e) {
    const std::string msg = e.what();
    const std::regex expected(
        "rank 3(: cannot use CUDA: .+| \\(local rank 3\\): no CUDA device is visible| \\(local rank 3\\) sees [0-9]+ "
        "GPUs shared by 1000 local ranks: .+)");
    EXPECT_TRUE(std::regex_match(msg, expected)) << msg;
  }
}

}  // namespace
}  // namespace da::dist
