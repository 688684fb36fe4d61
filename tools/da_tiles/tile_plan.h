// Which tiles `da_tiles make` cuts and which file each goes to. A raster's
// windows are tile_size x tile_size every `stride` pixels from the top-left
// corner, numbered row-major; windows that would cross the right or bottom
// edge are not cut (no padding). With shards, each raster's windows are
// split into runs of at most shard_tiles consecutive windows, one shard file
// per run, numbered over the rasters in order: the same options always give
// the same shards, which is what lets an interrupted run resume.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace da::tiles {

// The windows of one raster: `rows` x `cols` of them.
struct WindowGrid {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t count() const { return rows * cols; }
};

WindowGrid window_grid(int64_t height, int64_t width, int64_t tile_size, int64_t stride);

// One output file: windows [first_window, first_window + windows) of raster `raster`.
struct ShardPlan {
  int32_t raster = 0;
  int64_t first_window = 0;
  int64_t windows = 0;
  std::string path;
};

// "dir/train.h5", 7 -> "dir/train-00007.h5" (more digits past 99,999).
std::string shard_path(const std::string& out, int64_t index);

// Every shard of the rasters with these grids, at most `shard_tiles` windows each.
std::vector<ShardPlan> plan_shards(const std::vector<WindowGrid>& grids, int64_t shard_tiles, const std::string& out);

// The shards worker `worker` of `workers` writes: every workers-th one.
std::vector<ShardPlan> shards_of_worker(const std::vector<ShardPlan>& shards, int worker, int workers);

}  // namespace da::tiles
