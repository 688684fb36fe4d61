#include "setup/loader_setup.h"

namespace da::setup {
namespace {

io::NormalizationMode normalization_mode(const std::string& mode) {
  if (mode == "archive") return io::NormalizationMode::kArchive;
  if (mode == "config") return io::NormalizationMode::kConfig;
  return io::NormalizationMode::kDtype;  // the config accepts dtype, archive, config only
}

}  // namespace

io::LoaderOptions loader_options(const config::DataOptions& data, std::int64_t seed, LoaderRole role,
                                 bool load_masks, int rank, int world_size) {
  const bool training = role == LoaderRole::kTraining;
  io::LoaderOptions o;
  o.batch_size = training || data.val_batch_size == 0 ? data.batch_size : data.val_batch_size;
  o.workers = static_cast<int>(data.workers);
  o.prefetch = static_cast<int>(data.prefetch);
  o.max_open_shards = static_cast<size_t>(data.max_open_shards);
  o.seed = static_cast<std::uint64_t>(seed);
  o.shuffle = training;
  // Validation visits every tile once per rank set: wrap pads the last round
  // (a few tiles counted twice) — it is the only policy that never drops a tile.
  o.remainder = training && data.remainder == "drop" ? io::Remainder::kDrop : io::Remainder::kWrap;
  o.rank = rank;
  o.world_size = world_size;
  o.load_masks = load_masks;
  if (training) {
    o.augmentation.hflip = data.augmentation.hflip;
    o.augmentation.vflip = data.augmentation.vflip;
    o.augmentation.rot90 = data.augmentation.rot90;
    o.augmentation.crop_size = data.augmentation.crop_size;
  }
  o.normalization.mode = normalization_mode(data.normalize.mode);
  o.normalization.mean = data.normalize.mean;
  o.normalization.std = data.normalize.std;
  o.skip_non_finite = data.bad_values == "skip";
  return o;
}

bool training_loader_normalizes(const config::DataOptions& data, bool on_gpu) {
  return data.normalize.on == "loader" || (data.normalize.on == "auto" && !on_gpu);
}

io::EpochLength epoch_length(const config::DataOptions& data) {
  if (data.epoch_length == "target") return io::EpochLength::kTarget;
  if (data.epoch_length == "max") return io::EpochLength::kMax;
  if (data.epoch_length == "min") return io::EpochLength::kMin;
  return io::EpochLength::kSource;
}

}  // namespace da::setup
