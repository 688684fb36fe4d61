// Reader for one tile archive file (format: spec/tile-archive.md, version 1).
// Everything the format promises is checked when the file is opened; tile
// reads check the tile's own values (mask labels, finite floats).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/archive_error.h"
#include "io/direct_chunk_reader.h"
#include "io/hdf5_handle.h"
#include "io/pixel_type.h"

namespace da::io {

// The newest format version this reader understands.
inline constexpr int64_t kTileArchiveVersion = 1;

// The largest tile (C x H x W x pixel size) a reader accepts: 1 GiB, far
// above real tiles (4096^2 x 16 bands of float32), so that a damaged shape
// is an error rather than an allocation that takes the machine's memory.
inline constexpr int64_t kMaxTileBytes = int64_t{1} << 30;

// What the root attributes and dataset shapes say about an archive.
struct ArchiveInfo {
  int64_t version = kTileArchiveVersion;
  std::string domain;
  std::vector<std::string> bands;    // C names, channel order
  std::vector<std::string> classes;  // K names; empty without /masks
  int64_t ignore_index = 255;
  std::optional<std::vector<double>> band_mean;  // C values when present
  std::optional<std::vector<double>> band_std;
  PixelType pixel_type = PixelType::kUint8;
  int64_t num_tiles = 0;
  int64_t height = 0;
  int64_t width = 0;
  bool has_masks = false;
  bool has_origin = false;
  bool has_source_id = false;
  bool has_geotransform = false;
  std::string crs;                   // "" when absent
  std::vector<std::string> sources;  // raster names /meta/source_id points into

  int64_t channels() const { return static_cast<int64_t>(bands.size()); }
};

// What read_image does with NaN or infinite values in a float32 tile.
enum class NonFinite {
  kRefuse,  // throw ArchiveError
  kReport,  // return their count; the caller skips the tile, counts and logs it
};

// The checks read_image and read_mask make of a tile in `out` (tile `index`
// of the archive at `path` described by `info`), for readers that fetched
// it themselves: the non-finite count (throwing under kRefuse), and mask
// values that are neither a class nor ignore_index (throwing).
int64_t check_image_values(const ArchiveInfo& info, const std::string& path, int64_t index, const void* out,
                           NonFinite policy);
void check_mask_values(const ArchiveInfo& info, const std::string& path, int64_t index, const uint8_t* out);

// One open archive file. Opened read-only; never writes. Not for concurrent
// use from several threads (HDF5 serialises or, without thread safety, breaks).
class TileArchive {
 public:
  // Opens and validates `path`; throws ArchiveError naming what is wrong.
  explicit TileArchive(const std::string& path);
  TileArchive(TileArchive&&) noexcept = default;
  TileArchive& operator=(TileArchive&&) noexcept = default;

  const std::string& path() const { return path_; }
  const ArchiveInfo& info() const { return info_; }
  int64_t size() const { return info_.num_tiles; }
  // Bytes of one tile's image (C * H * W * pixel size) and mask (H * W).
  size_t image_bytes() const;
  size_t mask_bytes() const;

  // Copies tile `index` of /images, [C, H, W] row-major in the archive's own
  // pixel type, into `out` (image_bytes() bytes). Returns the number of NaN
  // or infinite values (0 for integer types); with NonFinite::kRefuse a
  // non-zero count throws instead.
  int64_t read_image(int64_t index, void* out, NonFinite policy = NonFinite::kRefuse) const;
  // Copies tile `index` of /masks, [H, W], into `out` (mask_bytes() bytes),
  // checking every value is a class index or ignore_index.
  void read_mask(int64_t index, uint8_t* out) const;

  // Tiles of deflate(+shuffle) /images and /masks are read with H5Dread_chunk
  // and inflated outside HDF5's global lock (io/direct_chunk_reader.h), so
  // threads with their own TileArchive decode in parallel; anything else goes
  // through H5Dread. Off: every read uses H5Dread (for tests and benchmarks).
  void set_direct_chunk_reads(bool on) { direct_chunk_reads_ = on; }
  // Whether /images could be read directly (deflate(+shuffle), no conversion).
  bool direct_chunk_reads_possible() const { return direct_images_.enabled(); }
  // Reads of /images and /masks so far, by path taken.
  struct ReadCounts {
    int64_t direct = 0;
    int64_t h5dread = 0;
  };
  ReadCounts read_counts() const { return read_counts_; }
  // Where every tile of /images and /masks is stored, for reads with no
  // HDF5 file open (ArchiveSet's); null where a tile needs H5Dread (see
  // DirectChunkReader::index_all_rows) or direct reads are off.
  std::shared_ptr<const ChunkIndex> image_index() const;
  std::shared_ptr<const ChunkIndex> mask_index() const;

  // Per-tile metadata; each throws when its dataset is absent.
  std::array<int64_t, 2> read_origin(int64_t index) const;  // row, column
  int32_t read_source_id(int64_t index) const;              // index into info().sources
  std::array<double, 6> read_geotransform(int64_t index) const;

 private:
  void read_attributes();
  void open_images();
  void open_masks();
  void open_meta();
  // Opens dataset `name`, checking its shape is `expected` and its type class `type_class`.
  H5Handle open_dataset(const char* name, const std::vector<hsize_t>& expected, const char* layout,
                        H5T_class_t type_class) const;
  // Reads entry `index` along the first axis of `dataset` into `out`, converted to `memory_type`.
  // `direct`, when given and enabled, is tried first (see set_direct_chunk_reads).
  void read_row(const H5Handle& dataset, const char* name, int64_t index, hid_t memory_type, void* out,
                DirectChunkReader* direct = nullptr) const;
  void check_index(const char* name, int64_t index) const;

  std::string path_;
  ArchiveInfo info_;
  H5Handle file_;
  H5Handle images_;
  H5Handle masks_;
  H5Handle origin_;
  H5Handle source_id_;
  H5Handle geotransform_;
  bool direct_chunk_reads_ = true;
  // Per-archive decode buffers; TileArchive is single-threaded by contract.
  mutable DirectChunkReader direct_images_;
  mutable DirectChunkReader direct_masks_;
  mutable ReadCounts read_counts_;
};

}  // namespace da::io
