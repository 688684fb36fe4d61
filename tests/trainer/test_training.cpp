// The training loop end to end on a tiny synthetic data set: the loss falls,
// validation metrics are logged, resume is exact (from an epoch checkpoint
// and after a preemption mid-epoch), warm-up leaves the DA branch untouched,
// and how the two domains pass BatchNorm.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "config/loader.h"
#include "dist/local_communicator.h"
#include "io/tile_archive.h"
#include "io/tile_archive_writer.h"
#include "metrics/confusion_matrix.h"
#include "models/domain_batch_norm.h"
#include "run/run_directory.h"
#include "setup/checkpoint.h"
#include "setup/loader_setup.h"
#include "support/process.h"
#include "trainer/preemption.h"
#include "trainer/trainer.h"
#include "trainer/training_fixture.h"
#include "trainer/validation.h"

namespace da {
namespace {

namespace fs = std::filesystem;


struct RunResult {
  int status;
  std::int64_t global_step = 0;
  std::map<std::string, at::Tensor> state;  // model and method parameters by name
  callbacks::Metrics metrics;
};

RunResult train(const config::Config& config, const std::string& resume = "") {
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

const std::string kDann = "{name: dann, hidden_size: 8}";

class TrainingTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("da_training"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TrainingTest, SourceOnlyLossFallsAndValidationIsLogged) {
  const auto config = test::training_config(dir_, "{name: source_only}", {"run.max_epochs=5"});
  const RunResult run = train(config);
  ASSERT_EQ(run.status, 0);
  // metrics.jsonl: one epoch line per epoch with the mean training loss.
  std::ifstream jsonl(dir_ + "/run/metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(jsonl, line);) {
    if (line.find("\"kind\": \"epoch\"") == std::string::npos) continue;
    const auto at = line.find("\"train/loss/seg\": ");
    ASSERT_NE(at, std::string::npos) << line;
    losses.push_back(std::stod(line.substr(at + 18)));
  }
  ASSERT_EQ(losses.size(), 5u);
  EXPECT_LT(losses.back(), 0.7 * losses.front()) << "the segmentation loss did not fall";
  for (const char* key : {"iou/source_val", "iou/target_val", "acc/source_val", "f1/target_val"}) {
    ASSERT_TRUE(run.metrics.count(key)) << key;
    EXPECT_GE(run.metrics.at(key), 0.0);
    EXPECT_LE(run.metrics.at(key), 1.0);
  }
  // source_only never forwards the target batch and logs no DA loss.
  EXPECT_EQ(run.metrics.at("train/loss/da"), 0.0);
  EXPECT_TRUE(fs::exists(dir_ + "/run/checkpoints/last.pt"));
  EXPECT_TRUE(fs::exists(dir_ + "/run/checkpoints/best.pt"));
}

TEST_F(TrainingTest, DannLogsItsKeysAndTheDaMonitor) {
  const RunResult run = train(test::training_config(dir_, kDann, {"run.max_epochs=2"}));
  ASSERT_EQ(run.status, 0);
  for (const char* key : {"train/da/dann/domain_loss", "train/da/dann/domain_acc", "train/lambda",
                          "da_monitor/gap", "da_monitor/source_drop"}) {
    EXPECT_TRUE(run.metrics.count(key)) << key;
  }
  EXPECT_GT(run.metrics.at("train/lambda"), 0.0);
  EXPECT_DOUBLE_EQ(run.metrics.at("da_monitor/gap"),
                   run.metrics.at("iou/source_val") - run.metrics.at("iou/target_val"));
}

// A copy of archive `from` without its masks, as a user's unlabelled target
// validation tiles are.
void copy_without_masks(const std::string& from, const std::string& to) {
  const io::TileArchive archive(from);
  const io::ArchiveInfo& info = archive.info();
  io::TileArchiveLayout layout;
  layout.domain = info.domain;
  layout.bands = info.bands;
  layout.pixel_type = info.pixel_type;
  layout.height = info.height;
  layout.width = info.width;
  io::TileArchiveWriter writer(to, layout);
  std::vector<std::uint8_t> image(archive.image_bytes());
  for (std::int64_t i = 0; i < archive.size(); ++i) {
    archive.read_image(i, image.data());
    writer.append(image.data());
  }
  if (info.band_mean && info.band_std) writer.set_band_stats(*info.band_mean, *info.band_std);
  writer.close();
}

// Target validation tiles without labels: no target IoU, but the label-free
// signals, the same as with the labels (they never read them), and one of
// them picks best.pt.
TEST_F(TrainingTest, UnlabelledTargetValidationGivesTheLabelFreeSignals) {
  const std::string unlabelled = dir_ + "/target_val_unlabelled.h5";
  copy_without_masks(test::synth_data_dir() + "/target_val.h5", unlabelled);
  const RunResult labelled = train(test::training_config(dir_ + "/labelled", kDann, {"run.max_epochs=2"}));
  const RunResult run = train(test::training_config(
      dir_ + "/unlabelled", kDann,
      {"run.max_epochs=2", "data.target.val=[" + unlabelled + "]", "callbacks.checkpoint.monitor=unsup/snd",
       "callbacks.checkpoint.mode=max"}));
  ASSERT_EQ(labelled.status, 0);
  ASSERT_EQ(run.status, 0);
  EXPECT_EQ(run.metrics.count("iou/target_val"), 0U);
  EXPECT_EQ(labelled.metrics.count("iou/target_val"), 1U);
  for (const char* key : {"unsup/target_entropy", "unsup/class_prior_gap", "unsup/snd"}) {
    ASSERT_TRUE(run.metrics.count(key)) << key;
    EXPECT_EQ(run.metrics.at(key), labelled.metrics.at(key)) << key;
  }
  EXPECT_GT(run.metrics.at("unsup/target_entropy"), 0.0);
  EXPECT_LE(run.metrics.at("unsup/target_entropy"), 1.0);
  EXPECT_LE(run.metrics.at("unsup/class_prior_gap"), 1.0);
  EXPECT_GT(run.metrics.at("unsup/snd"), 0.0);
  EXPECT_TRUE(fs::exists(dir_ + "/unlabelled/run/checkpoints/best.pt"));
}

// Every epoch line carries where the step time went (CPU) and the peak RSS;
// the parts are per-step means that cannot add up to more than the step.
TEST_F(TrainingTest, EpochLinesSplitTheStepTime) {
  const RunResult run = train(test::training_config(dir_, kDann, {"run.max_epochs=2"}));
  ASSERT_EQ(run.status, 0);
  const std::vector<std::string> parts{"time/data_wait_s", "time/forward_backward_s", "time/comm_wait_s",
                                       "time/optimizer_s"};
  std::ifstream jsonl(dir_ + "/run/metrics.jsonl");
  int epochs = 0;
  for (std::string line; std::getline(jsonl, line);) {
    if (line.find("\"kind\": \"epoch\"") == std::string::npos) continue;
    ++epochs;
    auto value = [&](const std::string& key) {
      const auto at = line.find("\"" + key + "\": ");
      EXPECT_NE(at, std::string::npos) << key << " missing in " << line;
      return at == std::string::npos ? -1.0 : std::stod(line.substr(at + key.size() + 4));
    };
    double sum = 0;
    for (const auto& key : parts) {
      const double v = value(key);
      EXPECT_GE(v, 0.0) << key;
      sum += v;
    }
    EXPECT_GT(value("time/forward_backward_s"), 0.0);
    EXPECT_LE(sum, value("time/step_s")) << line;
    EXPECT_GT(value("time/peak_rss_mb"), 1.0) << "a libtorch process holds more than 1 MiB";
  }
  EXPECT_EQ(epochs, 2);
  // The trainer's last-epoch metrics carry them too.
  for (const auto& key : parts) EXPECT_TRUE(run.metrics.count(key)) << key;
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

// data.normalize.on: device makes the loaders deliver the stored pixels,
// normalised in the training step after the copy to the device: the same
// values as the loader's own normalisation, so the same training, bit for bit.
TEST_F(TrainingTest, NormalisingOnTheDeviceTrainsLikeNormalisingInTheLoader) {
  config::Config in_loader = test::training_config(dir_ + "/a", kDann);
  in_loader.data.normalize.on = "loader";
  config::Config on_device = test::training_config(dir_ + "/b", kDann);
  on_device.data.normalize.on = "device";
  const RunResult a = train(in_loader);
  const RunResult b = train(on_device);
  ASSERT_EQ(a.status, 0);
  ASSERT_EQ(b.status, 0);
  expect_identical(a, b);
  EXPECT_EQ(a.metrics.at("train/loss/seg"), b.metrics.at("train/loss/seg"));
}

// run.memory_format channels_last (the CUDA default): weights and batches
// NHWC in memory. The same training as contiguous up to the summation order
// of the convolution kernels. With SGD: AdamW's first steps would magnify
// that rounding in near-zero gradients into full-size updates.
TEST_F(TrainingTest, ChannelsLastTrainsLikeContiguous) {
  config::Config contiguous = test::training_config(dir_ + "/a", kDann);
  contiguous.run.max_epochs = 2;
  contiguous.run.memory_format = "contiguous";
  contiguous.optimizer.name = "sgd";
  config::Config channels_last = contiguous;
  channels_last.run.output_dir = dir_ + "/b";
  channels_last.run.memory_format = "channels_last";
  {
    config::Config probe = channels_last;
    probe.run.output_dir = dir_ + "/probe";
    run::prepare_run_directory(probe);
    dist::LocalCommunicator comm;
    trainer::Trainer trainer(probe, config::to_yaml(probe), comm, dist::WorldInfo{}, run::run_directory(probe));
    const at::Tensor conv = trainer.model()->named_parameters()["encoder.conv1.weight"];
    EXPECT_TRUE(conv.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_FALSE(conv.is_contiguous());
  }
  const RunResult a = train(contiguous);
  const RunResult b = train(channels_last);
  ASSERT_EQ(a.status, 0);
  ASSERT_EQ(b.status, 0);
  ASSERT_EQ(a.state.size(), b.state.size());
  for (const auto& [name, tensor] : a.state) {
    const at::Tensor other = b.state.at(name);
    if (tensor.dim() == 4) {
      EXPECT_TRUE(other.is_contiguous(at::MemoryFormat::ChannelsLast)) << name;
    }
    if (tensor.is_floating_point()) {
      EXPECT_TRUE(at::allclose(tensor, other, 1e-3, 1e-4)) << name << " max abs diff "
                                                          << (tensor - other).abs().max().item<double>();
    } else {
      EXPECT_TRUE(at::equal(tensor, other)) << name;
    }
  }
  for (const char* key : {"train/loss/seg", "train/loss/da"}) {
    EXPECT_NEAR(a.metrics.at(key), b.metrics.at(key), 1e-4 * std::abs(a.metrics.at(key))) << key;
  }
}

// Every built-in method trains the tiny U-Net for an epoch: its loss is
// finite, logged under da/<method>/, and takes part in the total.
TEST_F(TrainingTest, EveryMethodTrainsAndLogsItsLoss) {
  const std::vector<std::pair<std::string, std::string>> methods{
      {"{name: cdan, hidden_size: 8, entropy_conditioning: true, randomized_dim: 16}", "train/da/cdan/domain_loss"},
      {"{name: dann, layers: [encoder.layer3, encoder.layer4], hidden_size: 8}", "train/da/dann/domain_loss/encoder.layer3"},
      {"{name: advent_adversarial, ndf: 4}", "train/da/advent_adversarial/domain_loss"},
      {"{name: mcc, pixels_per_image: 64}", "train/da/mcc/mcc_loss"},
      {"[{name: dann, hidden_size: 8}, {name: bsp, loss_weight: 0.01}]", "train/da/bsp/bsp_loss"},
      {"{name: mmd}", "train/da/mmd/mmd_loss"},
      {"{name: coral}", "train/da/coral/coral_loss"},
      {"{name: fda, beta: 0.05, entropy_weight: 0.1}", "train/da/fda/entropy_loss"},
      {"{name: mstn, hidden_size: 8}", "train/da/mstn/centroid_loss"},
      {"{name: pseudo_label, class_balanced: true, threshold: 0}", "train/da/pseudo_label/pseudo_label_threshold_mean"},
      // adabn adds no loss (dann's makes loss/da positive); it logs what it re-estimated on.
      {"[{name: dann, hidden_size: 8}, {name: adabn, batches: 1}]", "adabn/tiles"},
  };
  for (const auto& [method, key] : methods) {
    const std::string dir = dir_ + "/" + std::to_string(&method - &methods.front().first);
    const RunResult run = train(test::training_config(dir, method, {"run.max_epochs=1"}));
    ASSERT_EQ(run.status, 0) << method;
    ASSERT_TRUE(run.metrics.count(key)) << method << ": no " << key;
    EXPECT_TRUE(std::isfinite(run.metrics.at(key))) << method;
    EXPECT_GT(run.metrics.at("train/loss/da"), 0.0) << method;
  }
}

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
      train(test::training_config(dir_ + "/a", "[" + kDann + ", {name: test_preempt_at}]", {plugins}));
  // Preempted at global step 6: epoch 1, in the middle of its 4 steps.
  const auto config =
      test::training_config(dir_ + "/b", "[" + kDann + ", {name: test_preempt_at, step: 6}]", {plugins});
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
  const std::string plugins = "plugins=[" + test::binary_path("tests/trainer/plugin/libda_test_methods_plugin.so") + "]";
  const std::vector<std::string> constant{plugins, "scheduler.name=constant",
                                          "domain_adaptation.lambda_schedule.name=constant"};
  auto capped = constant;
  capped.push_back("run.max_steps=6");  // 4 steps per epoch: epoch 1 stops after its second
  const RunResult straight = train(test::training_config(dir_ + "/a", "[" + kDann + ", {name: test_preempt_at}]", capped));
  ASSERT_EQ(straight.status, 0);
  EXPECT_EQ(straight.global_step, 6);
  EXPECT_TRUE(straight.metrics.count("iou/source_val")) << "the cut epoch is the last: it validates";
  EXPECT_TRUE(fs::exists(dir_ + "/a/run/checkpoints/epoch-0002.pt"));
  EXPECT_FALSE(fs::exists(dir_ + "/a/run/checkpoints/epoch-0003.pt"));

  // A 4-epoch run preempted in its sixth step (global step 5) trained the same six batches.
  const RunResult preempted =
      train(test::training_config(dir_ + "/b", "[" + kDann + ", {name: test_preempt_at, step: 5}]", constant));
  trainer::set_preemption_requested(false);
  ASSERT_EQ(preempted.status, trainer::kExitResumable);
  EXPECT_EQ(preempted.global_step, 6);
  expect_identical(straight, preempted);

  // Capped, preempted in epoch 0, resumed: the same run.
  const auto config = test::training_config(dir_ + "/c", "[" + kDann + ", {name: test_preempt_at, step: 2}]", capped);
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
  const std::string plugins = "plugins=[" + test::binary_path("tests/trainer/plugin/libda_test_methods_plugin.so") + "]";
  const std::vector<std::string> constant{plugins, "scheduler.name=constant",
                                          "domain_adaptation.lambda_schedule.name=constant"};
  auto limited = constant;
  limited.insert(limited.end(), {"run.limit_train_batches=2", "run.max_epochs=1"});
  const RunResult one = train(test::training_config(dir_ + "/a", "[" + kDann + ", {name: test_preempt_at}]", limited));
  ASSERT_EQ(one.status, 0);
  EXPECT_EQ(one.global_step, 2);
  const RunResult preempted =
      train(test::training_config(dir_ + "/b", "[" + kDann + ", {name: test_preempt_at, step: 1}]", constant));
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

TEST_F(TrainingTest, AccumulatingTwoHalfBatchesEqualsOneFullBatch) {
  // Same tiles per optimizer step (the shuffled order cut in 2s or 4s), loss
  // divided by k; constant lambda so the batch-counted schedule cannot differ;
  // frozen BatchNorm so batch statistics of 2 and 4 tiles cannot differ.
  const std::vector<std::string> common{"run.max_epochs=2", "model.freeze_bn=true", "optimizer.name=sgd",
                                        "domain_adaptation.lambda_schedule.name=constant"};
  auto full = common;
  full.push_back("data.batch_size=4");
  auto halves = common;
  halves.insert(halves.end(), {"data.batch_size=2", "run.accumulate_grad_batches=2"});
  const RunResult a = train(test::training_config(dir_ + "/a", kDann, full));
  const RunResult b = train(test::training_config(dir_ + "/b", kDann, halves));
  ASSERT_EQ(a.state.size(), b.state.size());
  for (const auto& [name, tensor] : a.state) {
    if (!tensor.is_floating_point()) continue;
    const double scale = std::max(tensor.norm().item<double>(), 1e-12);
    EXPECT_LE((tensor - b.state.at(name)).norm().item<double>() / scale, 1e-5) << name;
  }
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
