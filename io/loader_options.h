// Everything a tile loader needs to know, as plain values: the io library
// does not know the configuration module, the trainer fills these in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/distributed_sampler.h"

namespace da::io {

// Random transforms, applied identically to a tile's image and mask.
struct AugmentationOptions {
  bool hflip = false;     // mirror left-right with probability 1/2
  bool vflip = false;     // mirror top-bottom with probability 1/2
  bool rot90 = false;     // rotate by k * 90 degrees, k uniform in 0..3 (square tiles only)
  int64_t crop_size = 0;  // > 0: random crop_size x crop_size window; 0: whole tile
};

enum class NormalizationMode {
  kDtype,    // uint8 / 255, uint16 / 65535, float32 unchanged
  kArchive,  // the archives' band_mean / band_std attributes
  kConfig,   // NormalizationOptions::mean / std
};

// Per band: (value - mean) / std.
struct NormalizationOptions {
  NormalizationMode mode = NormalizationMode::kDtype;
  std::vector<double> mean;  // kConfig only: one value per band
  std::vector<double> std;
};

struct LoaderOptions {
  int64_t batch_size = 1;
  int workers = 0;   // background threads; 0: tiles are read on the thread calling next()
  int prefetch = 2;  // ready batches queued ahead of the consumer (with workers > 0)
  size_t max_open_shards = 64;  // archive files each reader keeps open (io/archive_set.h)
  uint64_t seed = 0;
  bool shuffle = true;
  Remainder remainder = Remainder::kWrap;
  int rank = 0;
  int world_size = 1;
  bool load_masks = true;  // false: Batch::mask stays undefined (e.g. target domain without supervision)
  AugmentationOptions augmentation;
  NormalizationOptions normalization;
  // false: a NaN or infinite value in a float32 tile is an error;
  // true: the tile is left out of its batch and counted.
  bool skip_non_finite = false;
  // true (the default): Batch::image is float32, normalised. false: the
  // loader only reads and augments, and Batch::image keeps the pixels as
  // stored (uint8; uint16 as its bits in int16, Torch 1.13 having no uint16;
  // float32),
  // Batch::mask is uint8: io::BatchNormalizer (io/batch_normalize.h) then
  // makes the same float batch where the model runs, e.g. after the copy to
  // the GPU, which then moves a quarter of the bytes for uint8 tiles.
  bool normalize = true;
  // Batches in page-locked host memory, so that copies to the GPU can be
  // asynchronous (the trainer sets it when it trains on CUDA). Needs CUDA.
  bool pin_memory = false;
};

}  // namespace da::io
