// Which tiles each rank visits in an epoch, like PyTorch's
// DistributedSampler: one permutation shared by all ranks, each rank taking a
// disjoint strided slice of it with the same count on every rank (so every
// rank runs the same number of steps and collectives never wait on a rank
// that ran out of data).
//
// The permutation is reproducible across compilers and standard libraries:
// std::mt19937_64 (fully specified by the standard) seeded through
// std::seed_seq (likewise) with (seed, epoch), then an explicit Fisher-Yates
// shuffle with rejection sampling. std::shuffle and
// std::uniform_int_distribution are avoided: their algorithms are
// implementation-defined.
#pragma once

#include <cstdint>
#include <vector>

namespace da::io {

// What to do with the n % world_size tiles that do not divide evenly.
enum class Remainder {
  kWrap,  // pad with tiles from the start of the permutation: every tile is visited, a few twice
  kDrop,  // leave the last tiles of the permutation out this epoch
};

struct ShardingOptions {
  int rank = 0;
  int world_size = 1;
  uint64_t seed = 0;
  bool shuffle = true;  // false: tiles in index order
  Remainder remainder = Remainder::kWrap;
};

// A permutation of [0, n) determined by (seed, epoch) alone.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

// Tiles per rank per epoch: ceil(n / world_size) with kWrap, floor with kDrop.
int64_t tiles_per_rank(int64_t n, int world_size, Remainder remainder);

// The tile indices, in visiting order, that `options.rank` reads in `epoch`:
// positions rank, rank + world_size, ... of the (padded or truncated)
// permutation. Throws std::invalid_argument for a bad rank or world size,
// n <= 0, or kDrop with fewer tiles than ranks.
std::vector<int64_t> shard_indices(int64_t n, int64_t epoch, const ShardingOptions& options);

}  // namespace da::io
