#include "io/distributed_sampler.h"

#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace da::io {
namespace {

// Uniform in [0, bound): draws above the largest multiple of `bound` are
// rejected, so no value is favoured (plain `% bound` would favour small ones).
uint64_t uniform_below(std::mt19937_64& engine, uint64_t bound) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  const uint64_t limit = max - max % bound;
  uint64_t draw = engine();
  while (draw >= limit) draw = engine();
  return draw % bound;
}

}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  const uint64_t e = static_cast<uint64_t>(epoch);
  std::seed_seq seeds{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(e),
                      static_cast<uint32_t>(e >> 32)};
  std::mt19937_64 engine(seeds);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(uniform_below(engine, static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

int64_t tiles_per_rank(int64_t n, int world_size, Remainder remainder) {
  return remainder == Remainder::kWrap ? (n + world_size - 1) / world_size : n / world_size;
}

std::vector<int64_t> shard_indices(int64_t n, int64_t epoch, const ShardingOptions& options) {
  const int world = options.world_size;
  if (world < 1) throw std::invalid_argument("world size " + std::to_string(world) + " is not positive");
  if (options.rank < 0 || options.rank >= world) {
    throw std::invalid_argument("rank " + std::to_string(options.rank) + " outside [0, " + std::to_string(world) + ")");
  }
  if (n <= 0) throw std::invalid_argument("cannot shard " + std::to_string(n) + " tiles");
  const int64_t per_rank = tiles_per_rank(n, world, options.remainder);
  if (per_rank == 0) {
    throw std::invalid_argument(std::to_string(n) + " tiles for " + std::to_string(world) +
                                " ranks with remainder 'drop': no rank gets a tile");
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  if (options.shuffle) {
    order = epoch_permutation(n, options.seed, epoch);
  } else {
    std::iota(order.begin(), order.end(), int64_t{0});
  }
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank));
  for (int64_t k = 0; k < per_rank; ++k) {
    // Positions past n wrap to the start of the permutation (kWrap only).
    const int64_t position = options.rank + k * world;
    mine.push_back(order[static_cast<size_t>(position % n)]);
  }
  return mine;
}

}  // namespace da::io
