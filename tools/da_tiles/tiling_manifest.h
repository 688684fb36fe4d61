// The options a sharded `da_tiles make` ran with, kept next to its shards
// (<dir>/<stem>.tiling.json): a rerun resumes only with the same options and
// unchanged rasters, since otherwise the shards already there would not be
// what this run would write. Written atomically; every rank writes the same.
#pragma once

#include <string>

#include "make_tiles.h"

namespace da::tiles {

// "dir/train.h5" -> "dir/train.tiling.json".
std::string manifest_path(const std::string& out);

// Writes the manifest of `options` (resolved) unless one exists; if one does,
// throws std::runtime_error naming the first option or raster that differs.
void write_or_match_manifest(const MakeOptions& options);

}  // namespace da::tiles
