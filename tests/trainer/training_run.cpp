#include "trainer/training_run.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <filesystem>

#include "config/loader.h"
#include "dist/local_communicator.h"
#include "run/run_directory.h"
#include "support/process.h"
#include "trainer/trainer.h"

namespace da::test {

RunResult train(const config::Config& config, const std::string& resume) {
  run::prepare_run_directory(config);
  dist::LocalCommunicator comm;
  trainer::Trainer trainer(config, config::to_yaml(config), comm, dist::WorldInfo{}, run::run_directory(config));
  RunResult result;
  result.status = trainer.fit(resume);
  result.global_step = trainer.global_step();
  torch::NoGradGuard no_grad;
  for (const auto& item : trainer.model()->named_parameters()) result.state["model." + item.key()] = item.value().clone();
  for (const auto& item : trainer.model()->named_buffers()) result.state["model." + item.key()] = item.value().clone();
  for (auto& wm : trainer.methods()) {
    if (auto module = wm.method->module()) {
      for (const auto& item : module->named_parameters()) result.state[wm.method->name() + "." + item.key()] = item.value().clone();
      for (const auto& item : module->named_buffers()) result.state[wm.method->name() + "." + item.key()] = item.value().clone();
    }
  }
  result.metrics = trainer.last_epoch_metrics();
  return result;
}

void expect_identical(const RunResult& a, const RunResult& b) {
  ASSERT_EQ(a.state.size(), b.state.size());
  for (const auto& [name, tensor] : a.state) {
    ASSERT_TRUE(b.state.count(name)) << name;
    EXPECT_TRUE(at::equal(tensor, b.state.at(name))) << name << " differs, max abs diff "
                                                     << (tensor - b.state.at(name)).abs().max().item<double>();
  }
}

void TrainingTest::SetUp() { dir_ = make_temp_dir("da_training"); }

// training_config writes <run_dir>.yaml beside the run: remove dir_'s too.
void TrainingTest::TearDown() {
  std::filesystem::remove_all(dir_);
  std::filesystem::remove(dir_ + ".yaml");
}

}  // namespace da::test
