// Resume is exact: from an epoch checkpoint (DANN, and the methods with state
// beyond their modules: CDAN, MSTN, class-balanced pseudo-labels) and after
// a preemption mid-epoch; run.max_steps and run.limit_train_batches cut runs
// that equal preempted longer ones; resuming with other methods is refused.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/process.h"
#include "trainer/preemption.h"
#include "trainer/training_fixture.h"
#include "trainer/training_run.h"

namespace da {
namespace {

namespace fs = std::filesystem;
using test::expect_identical;
using test::kDann;
using test::RunResult;
using test::train;
using test::TrainingTest;

// DANN beside the test plug-in's method that raises SIGUSR1 at a global step
// (as Slurm's --signal would; never without `step`).
std::string dann_preempted_at(const std::string& step = "") {
  return "[" + kDann + ", {name: test_preempt_at" + (step.empty() ? "" : ", step: " + step) + "}]";
}

// The plug-in, and schedules that do not depend on the run's length, so that
// runs of different lengths train their common steps alike.
std::vector<std::string> constant_schedules() {
  return {"plugins=[" + test::binary_path("tests/trainer/plugin/libda_test_methods_plugin.so") + "]",
          "scheduler.name=constant", "domain_adaptation.lambda_schedule.name=constant"};
}

TEST_F(TrainingTest, FourEpochsEqualTwoThenResumeThenTwo) {
  const RunResult straight = train(test::training_config(dir_ + "/a", kDann));
  ASSERT_EQ(straight.status, 0);
  ASSERT_TRUE(fs::exists(dir_ + "/a/run/checkpoints/epoch-0002.pt"));
  const RunResult resumed =
      train(test::training_config(dir_ + "/b", kDann), dir_ + "/a/run/checkpoints/epoch-0002.pt");
  ASSERT_EQ(resumed.status, 0);
  expect_identical(straight, resumed);
}

// CDAN keeps state beyond its discriminator's parameters (the randomized
// map's matrices, buffers): resume is still exact.
TEST_F(TrainingTest, CdanResumesExactly) {
  const std::string cdan = "{name: cdan, hidden_size: 8, randomized_dim: 16, seed: 5}";
  const RunResult straight = train(test::training_config(dir_ + "/a", cdan));
  ASSERT_EQ(straight.status, 0);
  const RunResult resumed =
      train(test::training_config(dir_ + "/b", cdan), dir_ + "/a/run/checkpoints/epoch-0002.pt");
  ASSERT_EQ(resumed.status, 0);
  expect_identical(straight, resumed);
}

// MSTN's moving centroids and CBST's class-balanced thresholds are method
// state beyond any module: resume from epoch 2 is still exact.
TEST_F(TrainingTest, MstnResumesExactly) {
  const std::string mstn = "{name: mstn, hidden_size: 8}";
  const RunResult straight = train(test::training_config(dir_ + "/a", mstn));
  ASSERT_EQ(straight.status, 0);
  EXPECT_GT(straight.metrics.at("train/da/mstn/centroid_classes"), 0.0);
  const RunResult resumed =
      train(test::training_config(dir_ + "/b", mstn), dir_ + "/a/run/checkpoints/epoch-0002.pt");
  ASSERT_EQ(resumed.status, 0);
  expect_identical(straight, resumed);
}

TEST_F(TrainingTest, ClassBalancedPseudoLabelsResumeExactly) {
  const std::string cbst = "{name: pseudo_label, class_balanced: true, portion: 0.5}";
  const RunResult straight = train(test::training_config(dir_ + "/a", cbst));
  ASSERT_EQ(straight.status, 0);
  // From the second epoch on, the thresholds are the per-class quantiles.
  EXPECT_NE(straight.metrics.at("train/da/pseudo_label/pseudo_label_threshold_mean"), 0.9);
  EXPECT_GT(straight.metrics.at("train/da/pseudo_label/pseudo_label_ratio"), 0.0);
  const RunResult resumed =
      train(test::training_config(dir_ + "/b", cbst), dir_ + "/a/run/checkpoints/epoch-0002.pt");
  ASSERT_EQ(resumed.status, 0);
  expect_identical(straight, resumed);
}

TEST_F(TrainingTest, PreemptionMidEpochWritesLastAndResumesExactly) {
  // test_preempt_at raises SIGUSR1 at a global step (as Slurm's --signal would).
  const std::string plugins = "plugins=[" + test::binary_path("tests/trainer/plugin/libda_test_methods_plugin.so") + "]";
  const RunResult straight =
      train(test::training_config(dir_ + "/a", dann_preempted_at(), {plugins}));
  // Preempted at global step 6: epoch 1, in the middle of its 4 steps.
  const auto config =
      test::training_config(dir_ + "/b", dann_preempted_at("6"), {plugins});
  const RunResult stopped = train(config);
  trainer::set_preemption_requested(false);
  EXPECT_EQ(stopped.status, trainer::kExitResumable);
  ASSERT_TRUE(fs::exists(dir_ + "/b/run/checkpoints/last.pt"));
  const RunResult resumed = train(config, "auto");
  ASSERT_EQ(resumed.status, 0);
  expect_identical(straight, resumed);
}

// run.max_steps ends the run after that many optimizer steps, mid-epoch:
// with constant schedules (so the run's length changes no step) the weights
// are those of a longer run preempted after the same step, the cut epoch
// validates and checkpoints as the last one, and a run preempted before the
// cap resumes to the same weights.
TEST_F(TrainingTest, MaxStepsStopsMidEpochAndResumesExactly) {
  const std::vector<std::string> constant = constant_schedules();
  auto capped = constant;
  capped.push_back("run.max_steps=6");  // 4 steps per epoch: epoch 1 stops after its second
  const RunResult straight = train(test::training_config(dir_ + "/a", dann_preempted_at(), capped));
  ASSERT_EQ(straight.status, 0);
  EXPECT_EQ(straight.global_step, 6);
  EXPECT_TRUE(straight.metrics.count("iou/source_val")) << "the cut epoch is the last: it validates";
  EXPECT_TRUE(fs::exists(dir_ + "/a/run/checkpoints/epoch-0002.pt"));
  EXPECT_FALSE(fs::exists(dir_ + "/a/run/checkpoints/epoch-0003.pt"));

  // A 4-epoch run preempted in its sixth step (global step 5) trained the same six batches.
  const RunResult preempted =
      train(test::training_config(dir_ + "/b", dann_preempted_at("5"), constant));
  trainer::set_preemption_requested(false);
  ASSERT_EQ(preempted.status, trainer::kExitResumable);
  EXPECT_EQ(preempted.global_step, 6);
  expect_identical(straight, preempted);

  // Capped, preempted in epoch 0, resumed: the same run.
  const auto config = test::training_config(dir_ + "/c", dann_preempted_at("2"), capped);
  ASSERT_EQ(train(config).status, trainer::kExitResumable);
  trainer::set_preemption_requested(false);
  const RunResult resumed = train(config, "auto");
  ASSERT_EQ(resumed.status, 0);
  EXPECT_EQ(resumed.global_step, 6);
  expect_identical(straight, resumed);
}

// run.limit_train_batches shortens every epoch: two batches of each epoch's
// order, the first epoch's the same as a whole-epoch run preempted after its
// second step.
TEST_F(TrainingTest, LimitTrainBatchesShortensEveryEpoch) {
  const std::vector<std::string> constant = constant_schedules();
  auto limited = constant;
  limited.insert(limited.end(), {"run.limit_train_batches=2", "run.max_epochs=1"});
  const RunResult one = train(test::training_config(dir_ + "/a", dann_preempted_at(), limited));
  ASSERT_EQ(one.status, 0);
  EXPECT_EQ(one.global_step, 2);
  const RunResult preempted =
      train(test::training_config(dir_ + "/b", dann_preempted_at("1"), constant));
  trainer::set_preemption_requested(false);
  ASSERT_EQ(preempted.status, trainer::kExitResumable);
  expect_identical(one, preempted);

  limited.back() = "run.max_epochs=3";
  const RunResult three = train(test::training_config(dir_ + "/c", kDann, limited));
  ASSERT_EQ(three.status, 0);
  EXPECT_EQ(three.global_step, 6);
  EXPECT_TRUE(fs::exists(dir_ + "/c/run/checkpoints/epoch-0003.pt"));
  EXPECT_TRUE(three.metrics.count("iou/target_val"));
}

TEST_F(TrainingTest, ResumeWithOtherMethodsIsRefused) {
  ASSERT_EQ(train(test::training_config(dir_ + "/a", kDann, {"run.max_epochs=1"})).status, 0);
  try {
    train(test::training_config(dir_ + "/b", "{name: entropy}", {"run.max_epochs=1"}), dir_ + "/a/run/checkpoints/last.pt");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("was trained with methods [dann] but the configuration has [entropy]"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace da
