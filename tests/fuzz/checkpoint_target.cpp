// Fuzz target: checkpoint files, read as `--resume` (everything restored
// into a model, its optimizer and the CPU RNG), as predict and warm starts
// (the model's tensors, the stored config) and as elastic resume (the
// scalars). Seeds are checkpoints this model writes (write_checkpoint_seed).
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>

#include <fstream>
#include <vector>

#include "fuzz_seeds.h"
#include "fuzz_targets.h"
#include "setup/checkpoint.h"
#include "setup/elastic_resume.h"

namespace da::fuzz {
namespace {

struct Parts {
  torch::nn::Linear model{3, 2};
  torch::optim::SGD optimizer{model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)};
  std::vector<setup::WeightedMethod> methods;
  setup::CheckpointParts parts() { return setup::CheckpointParts{*model, methods, &optimizer}; }
};

}  // namespace

void write_checkpoint_seed(const std::string& path) {
  Parts saved;
  saved.model(torch::ones({4, 3})).sum().backward();
  saved.optimizer.step();  // momentum buffers: optimizer state to restore
  setup::TrainingProgress progress;
  progress.epoch = 1;
  progress.global_step = 12;
  progress.position = {1, 2, 1, 2};
  progress.scalars = {{setup::kWorldSizeScalar, 2}, {setup::kBatchSizeScalar, 4}, {"checkpoint/best", 0.25}};
  setup::save_checkpoint(path, saved.parts(), progress, "run:\n  name: seed\n");
}

FuzzOutcome fuzz_checkpoint(const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/checkpoint.pt";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    setup::read_checkpoint_geometry(path);
    setup::read_checkpoint_config(path);
    setup::read_checkpoint_model(path);
    setup::read_checkpoint_method_tensors(path);
    Parts parts;
    setup::load_checkpoint(path, parts.parts());
    return FuzzOutcome{};
  } catch (const std::runtime_error& error) {
    return refusal(error, path);
  }
}

}  // namespace da::fuzz
