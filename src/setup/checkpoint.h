// What a training checkpoint holds and how it is read back: the model's
// parameters and buffers (by name, as a state dict), each method's state (its
// discriminator and more), the optimizer state, where training stands (epoch,
// global step, loader position), the callbacks' and loss scaler's scalars,
// the CPU RNG state and the resolved configuration. Files are written
// atomically (io/checkpoint_file.h).
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/paired_loader.h"
#include "models/weights.h"
#include "setup/method_setup.h"

namespace da::setup {

struct TrainingProgress {
  std::int64_t epoch = 0;        // the epoch the loader position belongs to
  std::int64_t global_step = 0;  // batches trained so far, over all epochs
  io::PairedPosition position;   // the next pair to train on
  std::map<std::string, double> scalars;  // callback and loss-scaler state, by owner-prefixed key
};

// The objects whose state a checkpoint carries.
struct CheckpointParts {
  torch::nn::Module& model;
  std::vector<WeightedMethod>& methods;
  torch::optim::Optimizer* optimizer = nullptr;  // nullptr: left out (saving) or not restored (loading)
};

void save_checkpoint(const std::string& path, const CheckpointParts& parts, const TrainingProgress& progress,
                     const std::string& config_yaml);

// Restores everything `parts` names exactly (strict: the same model, the
// same methods in the same order) and the CPU RNG; returns the progress.
// Throws std::runtime_error naming the file and what does not match.
TrainingProgress load_checkpoint(const std::string& path, const CheckpointParts& parts);

// The model's state dict from a checkpoint (warm starts, predict, evaluate).
models::StateDict read_checkpoint_model(const std::string& path);

// The methods' auxiliary nets (discriminators) as "<method>.<tensor name>".
models::StateDict read_checkpoint_method_tensors(const std::string& path);

// The resolved configuration (YAML text) the checkpoint was trained with.
std::string read_checkpoint_config(const std::string& path);

// The progress scalars alone (TrainingProgress::scalars), without restoring anything.
std::map<std::string, double> read_checkpoint_scalars(const std::string& path);

// Scalars the trainer records in every checkpoint: the rank count and the
// batch per rank that wrote it (setup/elastic_resume.h).
inline constexpr const char* kWorldSizeScalar = "dist/world_size";
inline constexpr const char* kBatchSizeScalar = "dist/batch_size";

}  // namespace da::setup
