// How a domain-adaptation run starts: warm-up epochs leave the
// discriminator untouched, a warm start from a source-only checkpoint
// measures the source drop from that model, and a warm start from another
// model is refused.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstddef>
#include <exception>
#include <string>
#include <vector>

#include "config/loader.h"
#include "dist/local_communicator.h"
#include "run/run_directory.h"
#include "trainer/trainer.h"
#include "trainer/training_fixture.h"
#include "trainer/training_run.h"

namespace da {
namespace {

using test::kDann;
using test::RunResult;
using test::train;
using test::TrainingTest;

TEST_F(TrainingTest, WarmupEpochsLeaveTheDiscriminatorUntouched) {
  const auto config = test::training_config(dir_, kDann, {"run.max_epochs=1", "domain_adaptation.warmup_epochs=1"});
  run::prepare_run_directory(config);
  dist::LocalCommunicator comm;
  trainer::Trainer trainer(config, config::to_yaml(config), comm, dist::WorldInfo{}, run::run_directory(config));
  std::vector<at::Tensor> before;
  for (const auto& p : trainer.methods()[0].method->module()->parameters()) before.push_back(p.detach().clone());
  ASSERT_EQ(trainer.fit(), 0);
  std::size_t i = 0;
  for (const auto& p : trainer.methods()[0].method->module()->parameters()) {
    EXPECT_TRUE(at::equal(p, before[i++])) << "discriminator parameter " << i << " changed during warm-up";
  }
  EXPECT_EQ(trainer.last_epoch_metrics().at("train/lambda"), 0.0);
}

TEST_F(TrainingTest, WarmStartFromASourceOnlyCheckpoint) {
  const RunResult source = train(test::training_config(dir_ + "/a", "{name: source_only}", {"run.max_epochs=1"}));
  ASSERT_EQ(source.status, 0);
  const std::string source_model = dir_ + "/a/run/checkpoints/last.pt";
  const RunResult adapted = train(test::training_config(
      dir_ + "/b", kDann, {"run.max_epochs=1", "domain_adaptation.pretrained_checkpoint=" + source_model}));
  ASSERT_EQ(adapted.status, 0);
  // The DA monitor's baseline is the warm-start model's source score (the
  // source-only run's last validation), so the drop is measured from it.
  EXPECT_DOUBLE_EQ(adapted.metrics.at("da_monitor/source_drop"),
                   source.metrics.at("iou/source_val") - adapted.metrics.at("iou/source_val"));
}

TEST_F(TrainingTest, WarmStartStrictRefusesAnotherModel) {
  ASSERT_EQ(train(test::training_config(dir_ + "/a", "{name: source_only}", {"run.max_epochs=1"})).status, 0);
  const auto config = test::training_config(
      dir_ + "/b", kDann,
      {"run.max_epochs=1", "model.encoder=resnet18", "domain_adaptation.pretrained_checkpoint=" + dir_ + "/a/run/checkpoints/last.pt"});
  EXPECT_THROW(train(config), std::exception);
}

}  // namespace
}  // namespace da
