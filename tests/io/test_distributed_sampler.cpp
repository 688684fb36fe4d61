// Sharding tiles across ranks: every rank the same count, ranks disjoint, all
// ranks together covering the archive, and the order fixed by (seed, epoch).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <stdexcept>

#include "io/distributed_sampler.h"

namespace da::io {
namespace {

std::vector<std::vector<int64_t>> all_ranks(int64_t n, int world, int64_t epoch, Remainder remainder,
                                            bool shuffle = true) {
  std::vector<std::vector<int64_t>> ranks;
  for (int rank = 0; rank < world; ++rank) {
    ShardingOptions options;
    options.rank = rank;
    options.world_size = world;
    options.seed = 42;
    options.shuffle = shuffle;
    options.remainder = remainder;
    ranks.push_back(shard_indices(n, epoch, options));
  }
  return ranks;
}

TEST(DistributedSampler, PermutationIsFixedBySeedAndEpoch) {
  const std::vector<int64_t> first = epoch_permutation(10, 42, 0);
  std::vector<int64_t> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(10);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_EQ(epoch_permutation(10, 42, 0), first);
  EXPECT_NE(epoch_permutation(10, 42, 1), first);
  EXPECT_NE(epoch_permutation(10, 43, 0), first);
  // (seed, epoch) pairs with the same sum still differ (unlike seeding with seed + epoch).
  EXPECT_NE(epoch_permutation(10, 43, 0), epoch_permutation(10, 42, 1));
  // Pinned: the same on every platform and standard library; a change here
  // changes every run's data order.
  EXPECT_EQ(first, (std::vector<int64_t>{0, 6, 5, 1, 3, 9, 7, 8, 4, 2}));
}

TEST(DistributedSampler, TwoRanksDisjointCompleteEqual) {
  for (const Remainder remainder : {Remainder::kWrap, Remainder::kDrop}) {
    const auto ranks = all_ranks(10, 2, 3, remainder);
    ASSERT_EQ(ranks[0].size(), 5u);
    ASSERT_EQ(ranks[1].size(), 5u);
    std::set<int64_t> seen(ranks[0].begin(), ranks[0].end());
    for (const int64_t index : ranks[1]) EXPECT_TRUE(seen.insert(index).second) << "tile " << index << " twice";
    EXPECT_EQ(seen.size(), 10u);
    EXPECT_EQ(*seen.rbegin(), 9);
  }
}

TEST(DistributedSampler, WrapPadsFromTheStart) {
  const auto ranks = all_ranks(11, 2, 0, Remainder::kWrap);
  ASSERT_EQ(ranks[0].size(), 6u);
  ASSERT_EQ(ranks[1].size(), 6u);
  std::set<int64_t> seen(ranks[0].begin(), ranks[0].end());
  seen.insert(ranks[1].begin(), ranks[1].end());
  EXPECT_EQ(seen.size(), 11u);
  // The one padding tile is the permutation's first, which rank 0 also visits first.
  EXPECT_EQ(ranks[1].back(), epoch_permutation(11, 42, 0).front());
  EXPECT_EQ(ranks[0].front(), ranks[1].back());
}

TEST(DistributedSampler, DropLeavesTheRemainderOut) {
  const auto ranks = all_ranks(11, 2, 0, Remainder::kDrop);
  ASSERT_EQ(ranks[0].size(), 5u);
  ASSERT_EQ(ranks[1].size(), 5u);
  std::set<int64_t> seen(ranks[0].begin(), ranks[0].end());
  seen.insert(ranks[1].begin(), ranks[1].end());
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(seen.count(epoch_permutation(11, 42, 0).back()), 0u);
}

TEST(DistributedSampler, WithoutShuffleRanksStrideInIndexOrder) {
  const auto ranks = all_ranks(7, 3, 5, Remainder::kWrap, /*shuffle=*/false);
  EXPECT_EQ(ranks[0], (std::vector<int64_t>{0, 3, 6}));
  EXPECT_EQ(ranks[1], (std::vector<int64_t>{1, 4, 0}));
  EXPECT_EQ(ranks[2], (std::vector<int64_t>{2, 5, 1}));
}

TEST(DistributedSampler, RefusesImpossibleSharding) {
  ShardingOptions options;
  options.world_size = 4;
  options.rank = 4;
  EXPECT_THROW(shard_indices(10, 0, options), std::invalid_argument);
  options.rank = 0;
  options.remainder = Remainder::kDrop;
  EXPECT_THROW(shard_indices(3, 0, options), std::invalid_argument);
  EXPECT_THROW(shard_indices(0, 0, options), std::invalid_argument);
}

}  // namespace
}  // namespace da::io
