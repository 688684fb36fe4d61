#include "trainer/training_data.h"

#include "io/archive_set.h"
#include "setup/loader_setup.h"

namespace da::trainer {
namespace {

// A loader delivering stored pixels (data.normalize.on: device) gets a
// normaliser that works where the batch is, after its copy to the device.
std::optional<io::BatchNormalizer> normalizer_for(const io::TileLoader& loader) {
  if (loader.options().normalize) return std::nullopt;
  return io::BatchNormalizer(loader.normalization());
}

}  // namespace

void TrainingData::normalize(io::PairedBatch& pair) {
  if (normalize_source) (*normalize_source)(pair.source);
  if (normalize_target) (*normalize_target)(pair.target);
}

TrainingData make_training_data(const config::DataOptions& data, std::int64_t seed, const dist::WorldInfo& world,
                                c10::Device device, const TrainingDataNeeds& needs) {
  using setup::LoaderRole;
  const auto options = [&](std::int64_t loader_seed, LoaderRole role, bool masks) {
    io::LoaderOptions o = setup::loader_options(data, loader_seed, role, masks, world.rank, world.size);
    o.pin_memory = device.is_cuda();
    if (role == LoaderRole::kTraining) o.normalize = setup::training_loader_normalizes(data, device.is_cuda());
    return o;
  };
  TrainingData out;
  out.train = std::make_unique<io::PairedLoader>(options(seed, LoaderRole::kTraining, true), data.source.train,
                                                 options(seed + 1, LoaderRole::kTraining, needs.target_labels),
                                                 data.target.train, setup::epoch_length(data));
  out.normalize_source = normalizer_for(out.train->source());
  out.normalize_target = normalizer_for(out.train->target());
  if (!data.source.val.empty()) {
    out.source_val = std::make_unique<io::TileLoader>(options(seed, LoaderRole::kValidation, true), data.source.val);
  }
  if (!data.target.val.empty()) {
    // Unlabelled target validation tiles still give the label-free signals.
    const bool labelled = io::ArchiveSet(data.target.val).info().has_masks;
    out.target_val = std::make_unique<io::TileLoader>(options(seed, LoaderRole::kValidation, labelled), data.target.val);
  }
  if (needs.target_bn_batches) {
    out.target_bn_batches = *needs.target_bn_batches;
    out.target_bn = std::make_unique<io::TileLoader>(options(seed, LoaderRole::kValidation, false), data.target.train);
  }
  return out;
}

}  // namespace da::trainer
