// A domain's archive: one or more tile archive files (shards), named by path
// or glob(3) pattern, that agree on everything but their tile counts, read
// through one global tile index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/tile_archive.h"

namespace da::io {

// Plain paths are kept as given (a missing one is reported when opened);
// entries with a glob character (*, ?, [) become their matches in sorted
// order. A pattern matching nothing, an empty list and a file listed twice
// are errors.
std::vector<std::string> expand_archive_paths(const std::vector<std::string>& entries);

struct BandStats {
  std::vector<double> mean;
  std::vector<double> std;
};

class ArchiveSet {
 public:
  // Opens every shard and checks they agree on domain, bands, classes,
  // ignore_index, pixel type, tile size and whether masks exist.
  explicit ArchiveSet(const std::vector<std::string>& entries);

  int64_t size() const { return offsets_.back(); }
  size_t num_shards() const { return shards_.size(); }
  const TileArchive& shard(size_t i) const { return shards_.at(i); }
  // The first shard's info; every field but the counts, stats and meta holds for all shards.
  const ArchiveInfo& info() const { return shards_.front().info(); }

  struct Location {
    size_t shard;
    int64_t index;  // within the shard
  };
  // Shard and local index of global tile `index` in [0, size()).
  Location locate(int64_t index) const;

  // TileArchive::read_image / read_mask of global tile `index`.
  int64_t read_image(int64_t index, void* out, NonFinite policy = NonFinite::kRefuse) const;
  void read_mask(int64_t index, uint8_t* out) const;

  // Per-band statistics of all shards together (each shard weighted by its
  // tile count), or nullopt unless every shard has band_mean and band_std.
  std::optional<BandStats> band_stats() const;

 private:
  void check_agreement(const TileArchive& shard) const;

  std::vector<TileArchive> shards_;
  std::vector<int64_t> offsets_{0};  // offsets_[i]: global index of shard i's first tile; back(): total
};

}  // namespace da::io
