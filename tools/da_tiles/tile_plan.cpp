#include "tile_plan.h"

#include <cstdio>
#include <filesystem>

namespace da::tiles {

WindowGrid window_grid(int64_t height, int64_t width, int64_t tile_size, int64_t stride) {
  WindowGrid grid;
  if (height >= tile_size) grid.rows = (height - tile_size) / stride + 1;
  if (width >= tile_size) grid.cols = (width - tile_size) / stride + 1;
  return grid;
}

std::string shard_path(const std::string& out, int64_t index) {
  const std::filesystem::path path(out);
  char number[32];
  std::snprintf(number, sizeof number, "-%05lld", static_cast<long long>(index));
  return (path.parent_path() / (path.stem().string() + number + path.extension().string())).string();
}

std::vector<ShardPlan> plan_shards(const std::vector<WindowGrid>& grids, int64_t shard_tiles, const std::string& out) {
  std::vector<ShardPlan> shards;
  for (size_t raster = 0; raster < grids.size(); ++raster) {
    const int64_t windows = grids[raster].count();
    for (int64_t first = 0; first < windows; first += shard_tiles) {
      const int64_t index = static_cast<int64_t>(shards.size());
      shards.push_back({static_cast<int32_t>(raster), first, std::min(shard_tiles, windows - first),
                        shard_path(out, index)});
    }
  }
  return shards;
}

std::vector<ShardPlan> shards_of_worker(const std::vector<ShardPlan>& shards, int worker, int workers) {
  std::vector<ShardPlan> mine;
  for (size_t i = static_cast<size_t>(worker); i < shards.size(); i += static_cast<size_t>(workers)) {
    mine.push_back(shards[i]);
  }
  return mine;
}

}  // namespace da::tiles
