#include "tile_cutter.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace da::tiles {
namespace {

// Marks nodata pixels of a [bands, pixels] tile in `valid` (0 = nodata) and returns their count.
template <typename T>
int64_t mark_nodata(const T* tile, int64_t pixels, const std::vector<std::optional<double>>& nodata,
                    std::vector<uint8_t>& valid) {
  // A float32 raster's pixels equal its nodata value rounded to float; integer pixels compare exactly.
  std::vector<std::optional<double>> sentinel(nodata.size());
  for (size_t band = 0; band < nodata.size(); ++band) {
    if (!nodata[band]) continue;
    sentinel[band] =
        std::is_floating_point_v<T> ? static_cast<double>(static_cast<float>(*nodata[band])) : *nodata[band];
  }
  int64_t count = 0;
  for (int64_t i = 0; i < pixels; ++i) {
    bool is_nodata = false;
    for (size_t band = 0; band < nodata.size() && !is_nodata; ++band) {
      const double value = static_cast<double>(tile[band * pixels + i]);
      is_nodata = std::isnan(value) || (sentinel[band] && value == *sentinel[band]);
    }
    valid[i] = is_nodata ? 0 : 1;
    count += is_nodata;
  }
  return count;
}

int64_t mark_nodata(const void* tile, io::PixelType type, int64_t pixels,
                    const std::vector<std::optional<double>>& nodata, std::vector<uint8_t>& valid) {
  switch (type) {
    case io::PixelType::kUint8:
      return mark_nodata(static_cast<const uint8_t*>(tile), pixels, nodata, valid);
    case io::PixelType::kUint16:
      return mark_nodata(static_cast<const uint16_t*>(tile), pixels, nodata, valid);
    case io::PixelType::kFloat32:
      return mark_nodata(static_cast<const float*>(tile), pixels, nodata, valid);
  }
  return 0;
}

// NaN pixels (nodata in float rasters) are written as 0: the archive refuses non-finite values.
void zero_non_finite(void* tile, io::PixelType type, int64_t values) {
  if (type != io::PixelType::kFloat32) return;
  float* floats = static_cast<float*>(tile);
  for (int64_t i = 0; i < values; ++i) {
    if (!std::isfinite(floats[i])) floats[i] = 0.0f;
  }
}

// Turns the window's raw labels into its mask (nodata pixels ignored); returns how many pixels are ignored.
int64_t make_mask(const CutSettings& settings, const RasterSource& labels, const int32_t* raw, int64_t stride_pixels,
                  int64_t row, int64_t col, const std::vector<uint8_t>& valid, std::vector<uint8_t>& mask) {
  const int64_t size = settings.tile_size;
  const auto ignore = static_cast<uint8_t>(settings.ignore_index);
  int64_t ignored = 0;
  for (int64_t y = 0; y < size; ++y) {
    for (int64_t x = 0; x < size; ++x) {
      const int32_t value = raw[y * stride_pixels + x];
      if (value != settings.ignore_index && (value < 0 || value >= settings.classes)) {
        throw std::runtime_error(labels.path() + ": label " + std::to_string(value) + " at row " +
                                 std::to_string(row + y) + ", column " + std::to_string(col + x) + " is outside [0, " +
                                 std::to_string(settings.classes) + ") and not ignore_index " +
                                 std::to_string(settings.ignore_index));
      }
      const int64_t i = y * size + x;
      mask[i] = valid[i] ? static_cast<uint8_t>(value) : ignore;
      ignored += mask[i] == ignore;
    }
  }
  return ignored;
}

}  // namespace

TileCounts& TileCounts::operator+=(const TileCounts& other) {
  written += other.written;
  skipped_nodata += other.skipped_nodata;
  skipped_ignore += other.skipped_ignore;
  return *this;
}

TileCounts cut_windows(const CutSettings& settings, const RasterSource& image, const RasterSource* labels,
                       int32_t source_id, int64_t first, int64_t count, io::TileArchiveWriter& writer,
                       BandAccumulator& stats, const std::function<void(int64_t)>& on_read) {
  if (labels != nullptr && (labels->width() != image.width() || labels->height() != image.height())) {
    throw std::runtime_error(labels->path() + ": size " + std::to_string(labels->width()) + "x" +
                             std::to_string(labels->height()) + " differs from " + image.path());
  }
  const io::PixelType type = image.pixel_type();
  const int64_t size = settings.tile_size, stride = settings.stride, bands = image.bands();
  const int64_t pixel_bytes = static_cast<int64_t>(io::pixel_size(type));
  const int64_t pixels = size * size;
  const WindowGrid grid = window_grid(image.height(), image.width(), size, stride);
  // Neighbouring windows of one window row are read together, up to kReadBufferBytes.
  const int64_t column_bytes = bands * size * pixel_bytes;
  const int64_t read_columns = std::max(size, kReadBufferBytes / column_bytes);
  const int64_t windows_per_read = std::max<int64_t>(1, (read_columns - size) / stride + 1);
  const auto nodata = image.nodata();
  const auto transform = image.geotransform();

  std::vector<unsigned char> segment, tile(bands * pixels * pixel_bytes);
  std::vector<int32_t> segment_labels;
  std::vector<uint8_t> valid(pixels), mask(pixels);
  TileCounts counts;
  for (int64_t window = first; window < first + count;) {
    const int64_t window_row = window / grid.cols, window_col = window % grid.cols;
    const int64_t n = std::min({windows_per_read, grid.cols - window_col, first + count - window});
    const int64_t row = window_row * stride, first_col = window_col * stride;
    const int64_t width = (n - 1) * stride + size;
    segment.resize(bands * size * width * pixel_bytes);
    image.read(row, first_col, size, width, type, segment.data());
    if (labels != nullptr) {
      segment_labels.resize(size * width);
      labels->read_labels(row, first_col, size, width, segment_labels.data());
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t x0 = i * stride, col = first_col + x0;
      for (int64_t line = 0; line < bands * size; ++line) {  // band b, row y: line b * size + y
        std::memcpy(tile.data() + line * size * pixel_bytes, segment.data() + (line * width + x0) * pixel_bytes,
                    size * pixel_bytes);
      }
      const int64_t nodata_pixels = mark_nodata(tile.data(), type, pixels, nodata, valid);
      if (static_cast<double>(nodata_pixels) > settings.max_nodata * pixels) {
        ++counts.skipped_nodata;
        continue;
      }
      if (labels != nullptr) {
        const int64_t ignored =
            make_mask(settings, *labels, segment_labels.data() + x0, width, row, col, valid, mask);
        if (static_cast<double>(ignored) > settings.max_ignore * pixels) {
          ++counts.skipped_ignore;
          continue;
        }
      }
      zero_non_finite(tile.data(), type, bands * pixels);
      io::TileMeta meta;
      meta.origin = {row, col};
      meta.source_id = source_id;
      if (transform) {
        const auto& t = *transform;
        meta.geotransform = {t[0] + col * t[1] + row * t[2], t[1], t[2], t[3] + col * t[4] + row * t[5], t[4], t[5]};
      }
      writer.append(tile.data(), labels != nullptr ? mask.data() : nullptr, meta);
      stats.add(tile.data(), type, pixels, valid.data());
      ++counts.written;
    }
    if (on_read) on_read(n);
    window += n;
  }
  return counts;
}

}  // namespace da::tiles
