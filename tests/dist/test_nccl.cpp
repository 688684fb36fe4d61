// The NCCL communicator's device selection: a node with fewer GPUs than
// local ranks (or no usable CUDA at all, as on CI machines) is a clear error
// naming the rank and the counts, not a crash inside NCCL.
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
        "rank 3: (cannot use CUDA: .+|this node has [0-9]+ GPU\\(s\\) but 1000 ranks were started on it; start at "
        "most one rank per GPU)");
    EXPECT_TRUE(std::regex_match(msg, expected)) << msg;
  }
}

}  // namespace
}  // namespace da::dist
