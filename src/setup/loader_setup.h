// From the `data` section of the configuration to the io library's plain
// loader options (io does not know the configuration module).
#pragma once

#include "config/options.h"
#include "io/loader_options.h"
#include "io/paired_loader.h"

namespace da::setup {

enum class LoaderRole {
  kTraining,    // shuffled, augmented, data.batch_size
  kValidation,  // in order, no augmentation, data.val_batch_size (or batch_size)
};

// Options of one domain's loader on rank `rank` of `world_size`. Masks are
// loaded when `load_masks` (source training, validation, or a method that
// requires target labels).
io::LoaderOptions loader_options(const config::DataOptions& data, std::int64_t seed, LoaderRole role,
                                 bool load_masks, int rank, int world_size);

io::EpochLength epoch_length(const config::DataOptions& data);

// Whether the training loaders normalise (data.normalize.on: loader, or auto
// on the CPU) or deliver stored pixels that the trainer normalises on the
// device after the copy (device, or auto on a GPU: for uint8 tiles a quarter
// of the bytes to copy).
bool training_loader_normalizes(const config::DataOptions& data, bool on_gpu);

}  // namespace da::setup
