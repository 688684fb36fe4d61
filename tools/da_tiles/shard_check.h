// Resuming `da_tiles make`: whether a shard left by an earlier run is the
// complete output of its plan, so that it is kept rather than rewritten.
#pragma once

#include <string>

#include "io/tile_archive_writer.h"
#include "tile_plan.h"

namespace da::tiles {

struct ShardCheck {
  std::string problem;  // "" when the shard is complete
  int64_t tiles = 0;    // its tiles, when complete
};

// Complete when the file at shard.path opens (every format check), has `layout`
// and band statistics, holds only windows of the shard's run, in order
// (source id, origins on the grid of `stride`), and every tile reads back
// (decodes; mask values in range). Otherwise `problem` says what is wrong.
ShardCheck check_shard(const ShardPlan& shard, const io::TileArchiveLayout& layout, const WindowGrid& grid,
                        int64_t stride);

}  // namespace da::tiles
