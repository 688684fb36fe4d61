// A domain's archive: one or more tile archive files (shards), named by path
// or glob(3) pattern, that agree on everything but their tile counts, read
// through one global tile index.
//
// Every shard is opened and validated once, when the set is made. On the
// first read of a shard, where its tiles' chunks allow (deflate, shuffle +
// deflate or none, one chunk per tile, all written:
// io/direct_chunk_reader.h), their file offsets and sizes are kept (12 bytes
// a tile and dataset, built once and shared by the set's copies) and its
// HDF5 file is closed. Those tiles are then read with pread() and decoded
// here, with only a file descriptor open; the rest through the HDF5 file.
// At most `max_open` of each stay open, the least recently read closed
// first and opened again when read. An open HDF5 file costs about 0.5 MiB
// whatever its size (HDF5 1.10's metadata cache allocates a 64 Ki-entry hash
// table per file), so thousands of shards all open would cost gigabytes per
// reader; a descriptor costs nothing but a slot of the process's limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "io/direct_chunk_reader.h"
#include "io/file_descriptor.h"
#include "io/recently_used.h"
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
  static constexpr size_t kDefaultMaxOpenShards = 64;

  // Opens every shard and checks they agree on domain, bands, classes,
  // ignore_index, pixel type, tile size and whether masks exist.
  // indexed false: every tile through HDF5 (tests, benchmarks).
  explicit ArchiveSet(const std::vector<std::string>& entries, size_t max_open = kDefaultMaxOpenShards,
                      bool indexed = true);
  // The same shards, validated once, with none open: for another thread
  // (each loader thread has its own open files).
  ArchiveSet(const ArchiveSet& other);
  ArchiveSet& operator=(const ArchiveSet&) = delete;
  ArchiveSet(ArchiveSet&&) noexcept = default;
  ArchiveSet& operator=(ArchiveSet&&) noexcept = default;

  int64_t size() const { return offsets_.back(); }
  size_t num_shards() const { return shards_.size(); }
  // What shard i's file said when the set was made (no file access).
  const std::string& shard_path(size_t i) const { return shards_.at(i).path; }
  const ArchiveInfo& shard_info(size_t i) const { return shards_.at(i).info; }
  // Shard i, opened if it is closed. The reference holds until the next
  // call that opens a shard (shard, read_image, read_mask).
  const TileArchive& shard(size_t i) const;
  // The first shard's info; every field but the counts, stats and meta holds for all shards.
  const ArchiveInfo& info() const { return shards_.front().info; }
  // HDF5 files open now (at most max_open), and HDF5 opens of shards so
  // far (each shard once when the set was made, then each reopen).
  size_t open_shards() const { return open_.size(); }
  int64_t opens() const { return opens_; }
  // File descriptors open now for indexed reads (at most max_open), and
  // tiles and masks read through the index so far.
  size_t open_descriptors() const { return descriptors_.size(); }
  int64_t indexed_reads() const { return indexed_reads_; }

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
  // A shard's chunk indices, built by the first reader of the shard.
  struct ShardIndex {
    std::once_flag built;
    std::shared_ptr<const ChunkIndex> images;  // null: read through HDF5
    std::shared_ptr<const ChunkIndex> masks;
  };
  struct Shard {
    std::string path;
    ArchiveInfo info;
    FileIdentity identity;              // the file validated
    std::shared_ptr<ShardIndex> index;  // null: every tile through HDF5; shared by the set's copies
  };
  void check_agreement(const Shard& shard) const;
  // Keeps `archive` (shard i) open, closing the least recently used beyond max_open_.
  TileArchive& keep_open(size_t i, TileArchive archive) const;
  // Shard i's indices (built on the first call for the shard), or null.
  const ShardIndex* index_of(size_t i) const;
  // Row `row` of shard i through `index` into `out`; false when it must go through HDF5.
  bool read_indexed(size_t i, const ChunkIndex& index, int64_t row, void* out) const;

  std::vector<Shard> shards_;
  std::vector<int64_t> offsets_{0};  // offsets_[i]: global index of shard i's first tile; back(): total
  size_t max_open_;
  // This thread's open HDF5 files and descriptors (indexed reads), at most
  // max_open_ of each, and its decode buffers.
  mutable RecentlyUsed<TileArchive> open_;
  mutable RecentlyUsed<FileDescriptor> descriptors_;
  mutable ChunkDecoder decoder_;
  mutable int64_t opens_ = 0;
  mutable int64_t indexed_reads_ = 0;
};

}  // namespace da::io
