// Writer for tile archives (spec/tile-archive.md, version 1): the file grows
// one tile at a time under a temporary name and appears under its final name
// only when close() succeeds, so a crash never leaves a half-written archive
// where a reader would take it for a whole one.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/chunk_encoder.h"
#include "io/hdf5_handle.h"
#include "io/tile_archive.h"

namespace da::io {

// Everything fixed before the first tile: root attributes, tile shape,
// which optional datasets exist, and compression.
struct TileArchiveLayout {
  std::string domain;
  std::vector<std::string> bands;  // C
  PixelType pixel_type = PixelType::kUint8;
  int64_t height = 0;
  int64_t width = 0;
  bool with_masks = false;
  std::vector<std::string> classes;  // K, required with masks
  int64_t ignore_index = 255;
  bool with_origin = false;
  bool with_source_id = false;
  bool with_geotransform = false;
  std::vector<std::string> sources;  // written when not empty
  std::string crs;                   // written when not empty
  int deflate_level = 0;             // 0: uncompressed, 1-9: gzip level
  bool shuffle = false;              // byte shuffle before deflate (helps uint16 and float32)
};

// Per-tile metadata; only the fields the layout enables are written.
struct TileMeta {
  std::array<int64_t, 2> origin{};  // row, column of the top-left pixel
  int32_t source_id = 0;
  std::array<double, 6> geotransform{};
};

class TileArchiveWriter {
 public:
  // Creates `path`'s temporary sibling and writes the root attributes.
  TileArchiveWriter(std::string path, TileArchiveLayout layout);
  TileArchiveWriter(const TileArchiveWriter&) = delete;
  TileArchiveWriter& operator=(const TileArchiveWriter&) = delete;
  // Without close(), the temporary file is removed and `path` is untouched.
  ~TileArchiveWriter();

  // Appends one tile: `image` is [C, H, W] row-major in the layout's pixel
  // type; `mask` is [H, W] and required exactly when the layout has masks.
  // Refuses mask values that are neither a class nor ignore_index, and
  // NaN or infinite float pixels.
  void append(const void* image, const uint8_t* mask = nullptr, const TileMeta& meta = {});
  // Per-band statistics of the raw values, written as band_mean / band_std.
  void set_band_stats(std::vector<double> mean, std::vector<double> std);
  int64_t size() const { return count_; }
  // Finishes the file and renames it to `path`. Refuses an empty archive.
  void close();

 private:
  void check_layout() const;
  void write_attributes();
  void create_datasets();
  void check_tile(const void* image, const uint8_t* mask, const TileMeta& meta) const;
  void close_datasets();

  std::string path_;
  std::string temporary_;
  TileArchiveLayout layout_;
  std::optional<std::vector<double>> band_mean_;
  std::optional<std::vector<double>> band_std_;
  int64_t count_ = 0;
  bool closed_ = false;
  H5Handle file_;
  H5Handle images_;
  H5Handle masks_;
  H5Handle origin_;
  H5Handle source_id_;
  H5Handle geotransform_;
  // Tiles are compressed here, outside HDF5's lock (io/chunk_encoder.h); null: HDF5 filters them.
  std::unique_ptr<ChunkEncoder> image_encoder_;
  std::unique_ptr<ChunkEncoder> mask_encoder_;
};

}  // namespace da::io
