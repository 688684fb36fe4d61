// Checkpoint files: a missing or corrupt file is named in the error, and a
// checkpoint saved on a GPU loads on a CPU-only machine onto the device of
// the model it is restored into, optimizer state included.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "setup/checkpoint.h"
#include "support/process.h"

namespace da {
namespace {

namespace fs = std::filesystem;

TEST(Checkpoint, MissingAndCorruptFilesAreNamed) {
  const std::string dir = test::make_temp_dir("da_ckpt_err");
  try {
    setup::read_checkpoint_model(dir + "/none.pt");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "checkpoint " + dir + "/none.pt: no such file");
  }
  test::write_text(dir + "/bad.pt", "not a checkpoint");
  try {
    setup::read_checkpoint_model(dir + "/bad.pt");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("checkpoint " + dir + "/bad.pt is not a readable da_dist checkpoint", 0), 0u)
        << e.what();
  }
  fs::remove_all(dir);
}

// A checkpoint saved on a GPU loads on a CPU-only machine and onto the
// device of the model it is restored into. The "GPU" checkpoint is a CPU one
// whose recorded storage locations are rewritten to cuda:0
// (tests/support/relocate_checkpoint.py): Torch refuses it here without a map
// location, as it refuses a real one.
TEST(Checkpoint, GpuSavedCheckpointLoadsOntoTheModelsDevice) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "needs a machine without CUDA (the cuda tests cover GPU loads)";
  const std::string dir = test::make_temp_dir("da_ckpt_device");
  torch::nn::Linear saved_model(3, 2);
  torch::optim::SGD saved_optimizer(saved_model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  saved_model(at::ones({4, 3})).sum().backward();
  saved_optimizer.step();  // momentum buffers: optimizer state to restore
  std::vector<setup::WeightedMethod> methods;
  setup::TrainingProgress progress;
  progress.global_step = 7;
  setup::save_checkpoint(dir + "/cpu.pt", setup::CheckpointParts{*saved_model, methods, &saved_optimizer},
                           progress, "run: {}\n");
  const auto relocated = test::run_process(
      test::python_path(),
      {test::source_path("tests/support/relocate_checkpoint.py"), dir + "/cpu.pt", dir + "/gpu.pt", "cuda:0"});
  ASSERT_EQ(relocated.exit_code, 0) << relocated.err;
  ASSERT_GT(std::stoi(relocated.out), 0);
  torch::serialize::InputArchive unmapped;
  EXPECT_ANY_THROW(unmapped.load_from(dir + "/gpu.pt"));  // what a load without a map location does

  const models::StateDict state = setup::read_checkpoint_model(dir + "/gpu.pt");
  EXPECT_TRUE(state.at("weight").device().is_cpu());
  EXPECT_TRUE(at::equal(state.at("weight"), saved_model->weight.detach()));

  torch::nn::Linear model(3, 2);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const setup::TrainingProgress loaded =
      setup::load_checkpoint(dir + "/gpu.pt", setup::CheckpointParts{*model, methods, &optimizer});
  EXPECT_EQ(loaded.global_step, 7);
  EXPECT_TRUE(at::equal(model->weight, saved_model->weight));
  EXPECT_TRUE(at::equal(model->bias, saved_model->bias));
  const auto& buffer = static_cast<const torch::optim::SGDParamState&>(
      *optimizer.state().at(model->weight.unsafeGetTensorImpl()));
  const auto& saved_buffer = static_cast<const torch::optim::SGDParamState&>(
      *saved_optimizer.state().at(saved_model->weight.unsafeGetTensorImpl()));
  EXPECT_TRUE(buffer.momentum_buffer().device().is_cpu());
  EXPECT_TRUE(at::equal(buffer.momentum_buffer(), saved_buffer.momentum_buffer()));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace da
