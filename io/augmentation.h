// Random flips, rotations and crops of a tile, drawn from (seed, epoch, tile
// index) alone, so a tile is transformed the same way whichever thread reads
// it and whenever.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "io/loader_options.h"

namespace da::io {

// The splitmix64 finaliser: a cheap, well-mixed 64-bit hash.
uint64_t splitmix64(uint64_t x);

// One tile's transform; fields of disabled augmentations keep their identity values.
struct TileTransform {
  bool hflip = false;
  bool vflip = false;
  int rot90 = 0;  // counter-clockwise quarter turns
  int64_t crop_y = 0;
  int64_t crop_x = 0;
  int64_t crop_size = 0;  // 0: no crop
};

// Checks `options` against a height x width tile: rot90 needs a square tile,
// crop_size must be in [0, min(height, width)]. Throws std::invalid_argument.
void check_augmentation(const AugmentationOptions& options, int64_t height, int64_t width);

TileTransform draw_transform(const AugmentationOptions& options, uint64_t seed, int64_t epoch, int64_t tile,
                             int64_t height, int64_t width);

// Applies `transform` to the last two dimensions of `tensor` ([C, H, W] image
// or [H, W] mask): flips, then rotation, then crop.
at::Tensor apply_transform(const at::Tensor& tensor, const TileTransform& transform);

}  // namespace da::io
