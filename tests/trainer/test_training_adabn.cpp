// AdaBN in the training loop: alone, the training is source-only's and every
// BatchNorm's statistics are re-estimated on the target before the last
// validation, whose target scores are the final model's; with DANN under
// DSBN, only the target branch is re-estimated.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cstddef>
#include <string>
#include <vector>

#include "config/loader.h"
#include "dist/local_communicator.h"
#include "io/tile_loader.h"
#include "metrics/confusion_matrix.h"
#include "models/domain_batch_norm.h"
#include "run/run_directory.h"
#include "setup/checkpoint.h"
#include "setup/loader_setup.h"
#include "trainer/trainer.h"
#include "trainer/training_fixture.h"
#include "trainer/training_run.h"
#include "trainer/validation.h"

namespace da {
namespace {

using test::kDann;
using test::RunResult;
using test::train;
using test::TrainingTest;

// AdaBN alone: training is exactly source-only's (no loss, no target
// forward); before the last validation every BatchNorm's running statistics
// are replaced by target ones, and the logged target scores are those of the
// model holding them.
TEST_F(TrainingTest, AdaBnReplacesBatchNormStatisticsBeforeTargetValidation) {
  const RunResult plain = train(test::training_config(dir_ + "/a", "{name: source_only}", {"run.max_epochs=1"}));
  ASSERT_EQ(plain.status, 0);
  const auto config = test::training_config(dir_ + "/b", "{name: adabn}", {"run.max_epochs=1"});
  run::prepare_run_directory(config);
  dist::LocalCommunicator comm;
  trainer::Trainer trainer(config, config::to_yaml(config), comm, dist::WorldInfo{}, run::run_directory(config));
  ASSERT_EQ(trainer.fit(), 0);
  const callbacks::Metrics& metrics = trainer.last_epoch_metrics();
  ASSERT_TRUE(metrics.count("adabn/tiles"));
  EXPECT_EQ(metrics.at("adabn/tiles"), 16);  // the synthetic target training set, each tile once
  std::size_t layers = 0;
  for (const auto& m : trainer.model()->modules(/*include_self=*/false)) layers += models::is_batch_norm(*m);
  EXPECT_GT(layers, 10u);
  EXPECT_EQ(metrics.at("adabn/layers"), static_cast<double>(layers));

  std::size_t changed = 0;
  torch::NoGradGuard no_grad;
  for (const auto& item : trainer.model()->named_parameters()) {
    EXPECT_TRUE(at::equal(item.value(), plain.state.at("model." + item.key()))) << item.key();
  }
  for (const auto& item : trainer.model()->named_buffers()) {
    if (item.key().find("running_") == std::string::npos) continue;
    const at::Tensor& before = plain.state.at("model." + item.key());
    changed += (item.value() - before).abs().max().item<double>() > 1e-4;
  }
  EXPECT_EQ(changed, 2 * layers);  // mean and variance of every layer

  // The logged target scores: those of the final model, i.e. computed after the re-estimation.
  io::TileLoader target_val(setup::loader_options(config.data, config.run.seed, setup::LoaderRole::kValidation,
                                                    true, 0, 1),
                            config.data.target.val);
  const at::Tensor counts = trainer::confusion_counts(*trainer.model(), {target_val, models::Domain::kTarget},
                                                      c10::Device(c10::kCPU), 4, config.loss.ignore_index);
  const auto scores = metrics::score_logs(metrics::compute_scores(counts), "target_val", {"a", "b", "c", "d"});
  ASSERT_TRUE(metrics.count("iou/target_val"));
  EXPECT_DOUBLE_EQ(metrics.at("iou/target_val"), scores.at("iou/target_val"));
  EXPECT_DOUBLE_EQ(metrics.at("acc/target_val"), scores.at("acc/target_val"));
  // And they differ from source-only's (the same weights with source statistics).
  EXPECT_NE(metrics.at("acc/target_val"), plain.metrics.at("acc/target_val"));
  // The checkpoint written after validation holds the target statistics.
  const auto saved = setup::read_checkpoint_model(dir_ + "/b/run/checkpoints/last.pt");
  EXPECT_TRUE(at::equal(saved.at("encoder.bn1.running_mean"), trainer.model()->named_buffers()["encoder.bn1.running_mean"]));
}

// With DSBN and another method: the training is that method's alone, the
// source branch keeps its statistics, only the target branch is re-estimated.
TEST_F(TrainingTest, AdaBnWithDannUnderDsbnReplacesOnlyTheTargetBranch) {
  const std::vector<std::string> sets{"run.max_epochs=1", "model.bn_mode=dsbn"};
  const RunResult dann = train(test::training_config(dir_ + "/a", kDann, sets));
  const RunResult both = train(test::training_config(dir_ + "/b", "[" + kDann + ", {name: adabn}]", sets));
  ASSERT_EQ(dann.status, 0);
  ASSERT_EQ(both.status, 0);
  EXPECT_TRUE(both.metrics.count("train/da/dann/domain_loss"));
  EXPECT_EQ(both.metrics.at("adabn/tiles"), 16);
  EXPECT_DOUBLE_EQ(both.metrics.at("train/loss/total"), dann.metrics.at("train/loss/total"));
  std::size_t target_stats = 0;
  for (const auto& [name, tensor] : dann.state) {
    const bool target_running = name.find(".target.running_") != std::string::npos;
    if (!target_running) {
      EXPECT_TRUE(at::equal(tensor, both.state.at(name))) << name;
      continue;
    }
    ++target_stats;
    EXPECT_GT((tensor - both.state.at(name)).abs().max().item<double>(), 1e-4) << name;
  }
  EXPECT_EQ(target_stats, static_cast<std::size_t>(2 * both.metrics.at("adabn/layers")));
  EXPECT_TRUE(both.metrics.count("iou/target_val"));
  EXPECT_DOUBLE_EQ(both.metrics.at("iou/source_val"), dann.metrics.at("iou/source_val"));
}

}  // namespace
}  // namespace da
