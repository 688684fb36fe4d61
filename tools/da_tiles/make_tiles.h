// `da_tiles make`: cuts rasters (any GDAL format) into a tile archive, or
// into shards (--shard-tiles) written by several threads and, under mpirun
// or srun, several processes, each its own shards; a sharded run that is
// interrupted resumes where it stopped (complete shards are verified and
// kept). Memory per process: the GDAL block cache (GDAL_CACHEMAX, 256 MiB
// when unset) plus, per thread, one read of at most 64 MiB of neighbouring
// windows (and their labels as int32) and one tile.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace da::tiles {

struct MakeOptions {
  std::vector<std::string> images;
  std::vector<std::string> labels;  // empty, or one per image
  std::string out;
  int64_t tile_size = 0;
  int64_t stride = 0;  // 0: the tile size
  double max_nodata = 0.0;
  double max_ignore = 1.0;
  int deflate = 4;
  std::string domain;                // empty: the output file's stem
  std::vector<std::string> classes;  // --classes a,b,c
  std::vector<std::string> bands;    // empty: from the raster
  int64_t ignore_index = 255;
  int64_t shard_tiles = 0;  // 0: one archive at --out
  int threads = 0;          // 0: this host's cores over its processes (sharded runs only)
};

// Declares the subcommand and its options (stored in `options`) on `app`.
CLI::App* add_make_command(CLI::App& app, MakeOptions& options);

// Writes the archive; returns the exit status.
int run_make(MakeOptions options);

}  // namespace da::tiles
