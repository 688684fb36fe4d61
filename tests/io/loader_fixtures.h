// Helpers for the loader tests: raw tiles as tensors, archives with NaN.
#pragma once

#include <ATen/ATen.h>
#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/archive_fixtures.h"
#include "io/batch.h"
#include "io/tile_loader.h"

namespace da::io::test {

// Tile n of a write_archive archive as float32 [C, H, W], not normalised.
inline at::Tensor raw_tile(const TileArchiveLayout& layout, int64_t n) {
  const std::vector<char> bytes = expected_image(layout, n);
  const int64_t count = static_cast<int64_t>(layout.bands.size()) * layout.height * layout.width;
  at::Tensor out = at::empty({static_cast<int64_t>(layout.bands.size()), layout.height, layout.width}, at::kFloat);
  for (int64_t i = 0; i < count; ++i) {
    switch (layout.pixel_type) {
      case PixelType::kUint8:
        out.data_ptr<float>()[i] = reinterpret_cast<const uint8_t*>(bytes.data())[i];
        break;
      case PixelType::kUint16:
        out.data_ptr<float>()[i] = reinterpret_cast<const uint16_t*>(bytes.data())[i];
        break;
      case PixelType::kFloat32:
        out.data_ptr<float>()[i] = reinterpret_cast<const float*>(bytes.data())[i];
        break;
    }
  }
  return out;
}

// Mask of tile n as int64 [H, W].
inline at::Tensor raw_mask(const TileArchiveLayout& layout, int64_t n) {
  const std::vector<uint8_t> mask =
      expected_mask(layout.height, layout.width, n, static_cast<int64_t>(layout.classes.size()));
  return at::tensor(std::vector<int64_t>(mask.begin(), mask.end()), at::kLong).view({layout.height, layout.width});
}

// Overwrites pixel (channel 1, row 2, column 3) of tile `tile` in a float32 archive with NaN.
inline void poke_nan(const std::string& path, int64_t tile) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t images = H5Dopen2(file, "/images", H5P_DEFAULT);
  const hid_t space = H5Dget_space(images);
  const hsize_t start[4] = {static_cast<hsize_t>(tile), 1, 2, 3};
  const hsize_t count[4] = {1, 1, 1, 1};
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
  const hsize_t one = 1;
  const hid_t memory = H5Screate_simple(1, &one, nullptr);
  const float nan = NAN;
  H5Dwrite(images, H5T_NATIVE_FLOAT, memory, space, H5P_DEFAULT, &nan);
  H5Sclose(memory);
  H5Sclose(space);
  H5Dclose(images);
  H5Fclose(file);
}

// Every batch of `epoch`.
inline std::vector<Batch> epoch_batches(TileLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> batches;
  while (std::optional<Batch> batch = loader.next()) batches.push_back(std::move(*batch));
  return batches;
}

}  // namespace da::io::test
