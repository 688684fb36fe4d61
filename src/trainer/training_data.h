// The loaders of a training run on this rank, built from data.*: the paired
// source/target training loader, the validation loaders and AdaBN's target
// loader, with the normalisers of a training loader that delivers stored
// pixels (normalised on the device after the copy).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "config/options.h"
#include "dist/bootstrap.h"
#include "io/batch_normalize.h"
#include "io/paired_loader.h"
#include "io/tile_loader.h"

namespace da::trainer {

struct TrainingDataNeeds {
  bool target_labels = false;                        // a method trains on target masks
  std::optional<std::int64_t> target_bn_batches;     // AdaBN's request (setup::target_batch_norm_batches)
};

struct TrainingData {
  std::unique_ptr<io::PairedLoader> train;
  std::unique_ptr<io::TileLoader> source_val;  // null without data.source.val
  std::unique_ptr<io::TileLoader> target_val;  // null without data.target.val; may be unlabelled
  std::unique_ptr<io::TileLoader> target_bn;   // AdaBN: target training tiles, in order, unaugmented
  std::int64_t target_bn_batches = 0;          // per rank, 0 = all
  // Set when the training loader delivers stored pixels.
  std::optional<io::BatchNormalizer> normalize_source;
  std::optional<io::BatchNormalizer> normalize_target;

  // Stored pixels normalised where the pair is (after the copy to the device).
  void normalize(io::PairedBatch& pair);
};

// Batches land in pinned memory when `device` is a GPU, so that their copies
// are asynchronous.
TrainingData make_training_data(const config::DataOptions& data, std::int64_t seed, const dist::WorldInfo& world,
                                c10::Device device, const TrainingDataNeeds& needs);

}  // namespace da::trainer
