// What a training run on the tiny synthetic data set logs: the loss falls
// and validation metrics are logged; DANN's keys and the DA monitor; the
// label-free signals when the target validation tiles have no labels; the
// step time split into its parts; every built-in method's loss.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "io/tile_archive.h"
#include "io/tile_archive_writer.h"
#include "trainer/training_fixture.h"
#include "trainer/training_run.h"

namespace da {
namespace {

namespace fs = std::filesystem;
using test::kDann;
using test::RunResult;
using test::train;
using test::TrainingTest;

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

}  // namespace
}  // namespace da
