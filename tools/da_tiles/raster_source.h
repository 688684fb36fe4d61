// A raster opened read-only with GDAL (any format GDAL reads), with the
// facts tiling needs and windowed reads. GDAL failures become
// std::runtime_error naming the file.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/pixel_type.h"

typedef void* GDALDatasetH;

namespace da::tiles {

// Caps GDAL's block cache (shared by all datasets) at `bytes`, unless the
// user set GDAL_CACHEMAX; GDAL's own default is 5 % of the machine's memory.
void limit_gdal_cache(int64_t bytes);

// The most one block of a raster (all its bands) may take: GDAL reads whole
// blocks. Real rasters' tiles and strips are kilobytes to megabytes.
inline constexpr int64_t kMaxBlockBytes = int64_t{1} << 30;

class RasterSource {
 public:
  // Throws for a raster GDAL cannot open, one without bands, or one whose
  // blocks are over kMaxBlockBytes.
  explicit RasterSource(const std::string& path);
  RasterSource(const RasterSource&) = delete;
  RasterSource& operator=(const RasterSource&) = delete;
  ~RasterSource();

  const std::string& path() const { return path_; }
  int64_t width() const { return width_; }
  int64_t height() const { return height_; }
  int64_t bands() const { return bands_; }
  // The archive pixel type of band 1; throws for types an archive cannot hold.
  io::PixelType pixel_type() const;
  // Band names from GDAL's colour interpretation ("red", ...) or "bandN".
  std::vector<std::string> band_names() const;
  // Nodata value of each band, when set.
  std::vector<std::optional<double>> nodata() const;
  // The geotransform, when the raster has one.
  std::optional<std::array<double, 6>> geotransform() const;
  // The coordinate system as WKT, "" when none.
  std::string crs_wkt() const;

  // Reads a window of every band into `out`, [bands, rows, cols] in `type`.
  void read(int64_t row, int64_t col, int64_t rows, int64_t cols, io::PixelType type, void* out) const;
  // Reads a window of band 1 as int32 (for label rasters).
  void read_labels(int64_t row, int64_t col, int64_t rows, int64_t cols, int32_t* out) const;

 private:
  std::string path_;
  GDALDatasetH dataset_ = nullptr;
  int64_t width_ = 0;
  int64_t height_ = 0;
  int64_t bands_ = 0;
};

}  // namespace da::tiles
