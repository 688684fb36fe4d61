// The training loop's callbacks on their own: the checkpoint callback
// writes last, best and every n epochs, keeps the newest k and resumes its
// state; early stopping counts validations without improvement; the DA
// monitor's gap and source drop; when a value improves.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "callbacks/da_monitor.h"
#include "callbacks/early_stopping.h"
#include "callbacks/model_checkpoint.h"
#include "config/options.h"
#include "support/process.h"

namespace da {
namespace {

namespace fs = std::filesystem;

callbacks::EpochContext context_for(std::int64_t epoch, std::vector<std::string>* written) {
  callbacks::EpochContext c;
  c.epoch = epoch;
  c.validated = true;
  c.save_checkpoint = [written](const std::string& path) {
    written->push_back(fs::path(path).filename().string());
    test::write_text(path, "x");
  };
  return c;
}

TEST(Callbacks, CheckpointWritesLastBestAndKeepsTheNewestK) {
  const std::string dir = test::make_temp_dir("da_ckpt");
  config::CheckpointOptions options;
  options.monitor = "iou/target_val";
  options.every_n_epochs = 2;
  options.keep = 2;
  callbacks::ModelCheckpoint checkpoint(options, dir);
  const std::vector<double> scores{0.3, 0.5, 0.4, 0.6, 0.2, 0.1};
  std::vector<std::string> written;
  for (std::size_t e = 0; e < scores.size(); ++e) {
    checkpoint.on_epoch_end(context_for(static_cast<std::int64_t>(e), &written), {{"iou/target_val", scores[e]}});
  }
  const std::vector<std::string> expected{"last.pt", "best.pt", "last.pt", "epoch-0002.pt", "best.pt",
                                          "last.pt", "last.pt", "epoch-0004.pt", "best.pt", "last.pt",
                                          "last.pt", "epoch-0006.pt"};
  EXPECT_EQ(written, expected);
  EXPECT_DOUBLE_EQ(checkpoint.best(), 0.6);
  EXPECT_FALSE(fs::exists(dir + "/epoch-0002.pt"));  // keep 2: the oldest went
  EXPECT_TRUE(fs::exists(dir + "/epoch-0004.pt"));
  EXPECT_TRUE(fs::exists(dir + "/epoch-0006.pt"));

  // Its state survives a checkpoint: a resumed callback keeps the best value and the kept files.
  callbacks::Metrics scalars;
  checkpoint.save_state(scalars);
  callbacks::ModelCheckpoint resumed(options, dir);
  resumed.load_state(scalars);
  std::vector<std::string> later;
  resumed.on_epoch_end(context_for(6, &later), {{"iou/target_val", 0.55}});
  resumed.on_epoch_end(context_for(7, &later), {{"iou/target_val", 0.65}});
  EXPECT_EQ(later, (std::vector<std::string>{"last.pt", "last.pt", "epoch-0008.pt", "best.pt"}));
  EXPECT_FALSE(fs::exists(dir + "/epoch-0004.pt"));
  fs::remove_all(dir);
}

TEST(Callbacks, EarlyStoppingCountsValidationsWithoutImprovement) {
  config::EarlyStoppingOptions options;
  options.enabled = true;
  options.monitor = "loss";
  options.mode = "min";
  options.patience = 2;
  options.min_delta = 0.01;
  callbacks::EarlyStopping stopping(options);
  std::vector<std::string> unused;
  const std::vector<double> values{1.0, 0.95, 0.945, 0.96};  // 0.945 is within min_delta: no improvement
  for (std::size_t e = 0; e < values.size(); ++e) {
    callbacks::Metrics m{{"loss", values[e]}};
    stopping.on_validation_end(context_for(static_cast<std::int64_t>(e), &unused), m);
    EXPECT_EQ(stopping.should_stop(), e == 3) << "after epoch " << e;
  }
  callbacks::Metrics wrong{{"other", 1.0}};
  EXPECT_THROW(stopping.on_validation_end(context_for(4, &unused), wrong), std::runtime_error);
}

TEST(Callbacks, DaMonitorGapAndDropFromTheBaseline) {
  config::DaMonitorOptions options;
  callbacks::DaMonitor monitor(options);
  std::vector<std::string> unused;
  callbacks::Metrics first{{"iou/source_val", 0.8}, {"iou/target_val", 0.3}};
  monitor.on_validation_end(context_for(0, &unused), first);
  EXPECT_DOUBLE_EQ(first.at("da_monitor/gap"), 0.5);
  EXPECT_DOUBLE_EQ(first.at("da_monitor/source_drop"), 0.0);
  callbacks::Metrics second{{"iou/source_val", 0.7}, {"iou/target_val", 0.5}};
  monitor.on_validation_end(context_for(1, &unused), second);
  EXPECT_NEAR(second.at("da_monitor/source_drop"), 0.1, 1e-12);
  EXPECT_NEAR(second.at("da_monitor/gap"), 0.2, 1e-12);
  callbacks::DaMonitor warm(options);
  warm.set_baseline(0.9);
  callbacks::Metrics third{{"iou/source_val", 0.7}, {"iou/target_val", 0.5}};
  warm.on_validation_end(context_for(0, &unused), third);
  EXPECT_NEAR(third.at("da_monitor/source_drop"), 0.2, 1e-12);
}

TEST(Callbacks, ImprovesHandlesModesDeltaAndNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(callbacks::improves(0.5, nan, "max"));
  EXPECT_FALSE(callbacks::improves(nan, 0.5, "max"));
  EXPECT_TRUE(callbacks::improves(0.6, 0.5, "max"));
  EXPECT_FALSE(callbacks::improves(0.6, 0.5, "min"));
  EXPECT_FALSE(callbacks::improves(0.505, 0.5, "max", 0.01));
}

}  // namespace
}  // namespace da
