#include "io/augmentation.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace da::io {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void check_augmentation(const AugmentationOptions& options, int64_t height, int64_t width) {
  if (options.rot90 && height != width) {
    throw std::invalid_argument("augmentation rot90 needs square tiles, got " + std::to_string(height) + " x " +
                                std::to_string(width));
  }
  if (options.crop_size < 0 || options.crop_size > std::min(height, width)) {
    throw std::invalid_argument("augmentation crop_size " + std::to_string(options.crop_size) + " outside [0, " +
                                std::to_string(std::min(height, width)) + "]");
  }
}

TileTransform draw_transform(const AugmentationOptions& options, uint64_t seed, int64_t epoch, int64_t tile,
                             int64_t height, int64_t width) {
  // Chained hashes so that nearby (epoch, tile) pairs give unrelated streams.
  uint64_t state =
      splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(tile));
  const uint64_t bits = state;
  TileTransform transform;
  transform.hflip = options.hflip && (bits & 1U) != 0;
  transform.vflip = options.vflip && (bits & 2U) != 0;
  transform.rot90 = options.rot90 ? static_cast<int>((bits >> 2) & 3U) : 0;
  if (options.crop_size > 0) {
    transform.crop_size = options.crop_size;
    state = splitmix64(state);
    transform.crop_y = static_cast<int64_t>(state % static_cast<uint64_t>(height - options.crop_size + 1));
    state = splitmix64(state);
    transform.crop_x = static_cast<int64_t>(state % static_cast<uint64_t>(width - options.crop_size + 1));
  }
  return transform;
}

at::Tensor apply_transform(const at::Tensor& tensor, const TileTransform& transform) {
  at::Tensor out = tensor;
  const int64_t rows = tensor.dim() - 2;
  const int64_t cols = tensor.dim() - 1;
  if (transform.hflip) out = at::flip(out, {cols});
  if (transform.vflip) out = at::flip(out, {rows});
  if (transform.rot90 != 0) out = at::rot90(out, transform.rot90, {rows, cols});
  if (transform.crop_size > 0) {
    out = out.narrow(rows, transform.crop_y, transform.crop_size).narrow(cols, transform.crop_x, transform.crop_size);
  }
  return out.contiguous();
}

}  // namespace da::io
