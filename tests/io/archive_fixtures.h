// Archives with known pixel values for the io tests: the formulas match
// tests/io/make_h5py_archives.py, so C++- and h5py-written archives are
// checked against the same expectations.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/archive_error.h"
#include "io/tile_archive_writer.h"

namespace da::io::test {

inline int image_value(int64_t n, int64_t c, int64_t y, int64_t x) {
  return static_cast<int>((7 * n + 13 * c + 3 * y + x) % 256);
}

inline uint8_t mask_value(int64_t n, int64_t y, int64_t x, int64_t classes) {
  return (y == 0 && x == 0) ? 255 : static_cast<uint8_t>((n + y + x) % classes);
}

// Tile n of an archive with `layout`, as raw bytes of its pixel type;
// `scale` multiplies the formula (h5py archives use 200 for uint16, 1/4 for float32).
inline std::vector<char> expected_image(const TileArchiveLayout& layout, int64_t n, double scale = 1.0) {
  const int64_t c_count = static_cast<int64_t>(layout.bands.size());
  std::vector<char> bytes(c_count * layout.height * layout.width * pixel_size(layout.pixel_type));
  size_t i = 0;
  for (int64_t c = 0; c < c_count; ++c) {
    for (int64_t y = 0; y < layout.height; ++y) {
      for (int64_t x = 0; x < layout.width; ++x, ++i) {
        const double value = image_value(n, c, y, x) * scale;
        switch (layout.pixel_type) {
          case PixelType::kUint8:
            reinterpret_cast<uint8_t*>(bytes.data())[i] = static_cast<uint8_t>(value);
            break;
          case PixelType::kUint16:
            reinterpret_cast<uint16_t*>(bytes.data())[i] = static_cast<uint16_t>(value);
            break;
          case PixelType::kFloat32:
            reinterpret_cast<float*>(bytes.data())[i] = static_cast<float>(value);
            break;
        }
      }
    }
  }
  return bytes;
}

inline std::vector<uint8_t> expected_mask(int64_t height, int64_t width, int64_t n, int64_t classes) {
  std::vector<uint8_t> mask(height * width);
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) mask[y * width + x] = mask_value(n, y, x, classes);
  }
  return mask;
}

inline TileArchiveLayout small_layout(PixelType type = PixelType::kUint8) {
  TileArchiveLayout layout;
  layout.domain = "potsdam";
  layout.bands = {"red", "green", "blue"};
  layout.pixel_type = type;
  layout.height = 5;
  layout.width = 7;
  layout.with_masks = true;
  layout.classes = {"road", "building", "grass", "tree"};
  return layout;
}

// Writes `tiles` tiles of `layout` with the formula values to `path`.
inline void write_archive(const std::string& path, const TileArchiveLayout& layout, int64_t tiles) {
  TileArchiveWriter writer(path, layout);
  for (int64_t n = 0; n < tiles; ++n) {
    const std::vector<char> image = expected_image(layout, n);
    const std::vector<uint8_t> mask =
        layout.with_masks ? expected_mask(layout.height, layout.width, n, static_cast<int64_t>(layout.classes.size()))
                          : std::vector<uint8_t>{};
    TileMeta meta;
    meta.origin = {n * layout.height, 2 * n};
    meta.source_id = static_cast<int32_t>(n % 2);
    for (int i = 0; i < 6; ++i) meta.geotransform[i] = n * 10.0 + i + 0.25;
    writer.append(image.data(), layout.with_masks ? mask.data() : nullptr, meta);
  }
  writer.close();
}

inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The message of the ArchiveError `action` throws, or "no error".
template <class Action>
std::string archive_error_of(Action&& action) {
  try {
    action();
  } catch (const ArchiveError& error) {
    return error.what();
  }
  return "no error";
}

}  // namespace da::io::test
