// A training step's parts on their own: how the two domains pass BatchNorm
// (joint, separate, DSBN), the loss scaler, the logged values summed over
// steps and the metrics log line they end in, and which validation tiles
// a rank counts as its own.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "io/paired_loader.h"
#include "log/metrics_log.h"
#include "methods/registry.h"
#include "models/segmentation_model.h"
#include "setup/method_setup.h"
#include "trainer/loss_scaler.h"
#include "trainer/segmentation_loss.h"
#include "trainer/step_log_sums.h"
#include "trainer/training_step.h"
#include "trainer/validation.h"

namespace da {
namespace {

TEST(LossScaler, SkipsOverflowHalvesAndGrows) {
  trainer::LossScaler scaler(8.0, 2);
  at::Tensor p = at::zeros({2}).requires_grad_();
  p.mutable_grad() = at::tensor({8.0f, 16.0f});
  EXPECT_TRUE(scaler.unscale({p}));
  EXPECT_TRUE(at::equal(p.grad(), at::tensor({1.0f, 2.0f})));
  scaler.update(true);
  scaler.update(true);
  EXPECT_DOUBLE_EQ(scaler.scale(), 16.0);  // two clean steps: doubled
  p.mutable_grad() = at::tensor({std::numeric_limits<float>::infinity(), 1.0f});
  EXPECT_FALSE(scaler.unscale({p}));
  scaler.update(false);
  EXPECT_DOUBLE_EQ(scaler.scale(), 8.0);
  EXPECT_EQ(scaler.good_steps(), 0);
  EXPECT_DOUBLE_EQ(scaler.scale_loss(at::tensor(2.0)).item<double>(), 16.0);
}

TEST(MetricsLog, JsonLineEscapesAndWritesNaNAsNull) {
  const std::string line = log::metrics_json(
      "epoch", 2, 40, {{"iou/target_val", 0.25}, {"odd\"key", 1.5}, {"f1/x", std::nan("")}});
  EXPECT_EQ(line,
            "{\"kind\": \"epoch\", \"epoch\": 2, \"step\": 40, \"f1/x\": null, \"iou/target_val\": 0.25, "
            "\"odd\\\"key\": 1.5}");
}

TEST(Validation, OwnTilesLeaveOutThePadding) {
  // 5 tiles on 2 ranks with batch 2: rank 0 visits 0 2 4 | 0 (batch wrap), rank 1 visits 1 3 0 (padding) | 1.
  const std::vector<std::int64_t> rank0{0, 2, 4, 0};
  const std::vector<std::int64_t> rank1{1, 3, 0, 1};
  std::set<std::int64_t> seen;
  for (const auto& [rank, order] : {std::pair{0, rank0}, std::pair{1, rank1}}) {
    std::int64_t last = -1;
    for (const std::int64_t tile : order) {
      if (trainer::is_own_tile(tile, last, rank, 2)) {
        EXPECT_TRUE(seen.insert(tile).second) << "tile " << tile << " counted twice";
        last = tile;
      }
    }
  }
  EXPECT_EQ(seen, (std::set<std::int64_t>{0, 1, 2, 3, 4}));
}

class StepBatchNorm : public ::testing::Test {
 protected:
  // Two domains with very different statistics.
  io::PairedBatch batch() const {
    at::manual_seed(5);
    io::PairedBatch b;
    b.source.image = at::randn({2, 3, 32, 32});
    b.source.mask = at::randint(0, 3, {2, 32, 32}, at::kLong);
    b.target.image = at::randn({2, 3, 32, 32}) * 3 + 2;
    return b;
  }
  models::SegmentationModel model(bool dsbn) const {
    at::manual_seed(1);
    return models::make_segmentation_model({"tiny", 3, 3, dsbn, nullptr});
  }
  std::vector<setup::WeightedMethod> entropy() const {
    methods::Params params({}, "method");
    std::vector<setup::WeightedMethod> m;
    m.push_back({methods::Registry::instance().create("entropy", params, {3, {}, nullptr}), 1.0});
    return m;
  }
};

TEST_F(StepBatchNorm, JointNormalisesBothDomainsTogether) {
  auto methods = entropy();
  auto m = model(false);
  trainer::TrainingStep step(m, methods, {255, 0.0}, "joint");
  const io::PairedBatch b = batch();
  const auto losses = step.forward(b, 1.0, 0, true);
  auto reference = model(false);
  const at::Tensor logits = reference->forward(at::cat({b.source.image, b.target.image})).logits;
  const trainer::SegmentationLoss loss{255, 0.0};
  EXPECT_NEAR(losses.logs.at("loss/seg"), loss(logits.narrow(0, 0, 2), b.source.mask).item<double>(), 1e-6);
  // The step's losses stay tensors (read once per log interval, not each step).
  for (const char* key : {"loss/seg", "loss/da", "loss/total", "da/entropy/entropy_loss"}) {
    EXPECT_FALSE(losses.logs.at(key).on_host()) << key;
  }
  EXPECT_TRUE(losses.logs.at("lambda").on_host());
}

TEST_F(StepBatchNorm, SeparateNormalisesEachDomainAlone) {
  auto methods = entropy();
  auto m = model(false);
  trainer::TrainingStep step(m, methods, {255, 0.0}, "separate");
  const io::PairedBatch b = batch();
  const auto losses = step.forward(b, 1.0, 0, true);
  auto reference = model(false);
  const at::Tensor logits = reference->forward(b.source.image).logits;
  const trainer::SegmentationLoss loss{255, 0.0};
  EXPECT_NEAR(losses.logs.at("loss/seg"), loss(logits, b.source.mask).item<double>(), 1e-6);
  // The running statistics saw both domains, one forward each (momentum 0.1 twice).
  const at::Tensor mean = m->named_buffers()["encoder.bn1.running_mean"];
  const at::Tensor one_pass = reference->named_buffers()["encoder.bn1.running_mean"];
  EXPECT_FALSE(at::allclose(mean, one_pass));
}

TEST_F(StepBatchNorm, DsbnRoutesTheTargetThroughItsOwnBranch) {
  auto methods = entropy();
  auto m = model(true);
  trainer::TrainingStep step(m, methods, {255, 0.0}, "dsbn");
  const io::PairedBatch b = batch();
  step.forward(b, 1.0, 0, true);
  auto buffers = m->named_buffers();
  // Source branch: one update from the source batch alone, as a plain model's.
  auto plain = model(false);
  plain->forward(b.source.image);
  EXPECT_TRUE(at::allclose(buffers["encoder.bn1.running_mean"], plain->named_buffers()["encoder.bn1.running_mean"]));
  // Target branch: one update from the target batch alone.
  auto target_only = model(false);
  target_only->forward(b.target.image);
  EXPECT_TRUE(at::allclose(buffers["encoder.bn1.target.running_mean"],
                           target_only->named_buffers()["encoder.bn1.running_mean"]));
  EXPECT_EQ(m->domain(), models::Domain::kSource);
}

// Logged values summed over steps without reading the device: tensor and
// host values alike come out as the sums of what was added, and one step's
// values read as doubles.
TEST(StepLogSums, SumTensorAndHostValues) {
  trainer::StepLogSums sums;
  const std::vector<float> seg{0.5F, 0.25F, 0.125F};
  for (std::size_t i = 0; i < seg.size(); ++i) {
    trainer::StepLogs logs;
    logs["loss/seg"] = at::full({}, seg[i], at::kFloat);
    logs["acc"] = at::full({1}, static_cast<double>(i), at::kDouble);  // one element, any shape
    logs["lr"] = 0.1 * static_cast<double>(i + 1);
    sums.add(logs);
    const auto read = trainer::read_logs(logs);
    EXPECT_EQ(read.at("loss/seg"), static_cast<double>(seg[i]));
    EXPECT_EQ(read.at("acc"), static_cast<double>(i));
    EXPECT_DOUBLE_EQ(read.at("lr"), 0.1 * static_cast<double>(i + 1));
  }
  const auto total = sums.read();
  EXPECT_EQ(total.size(), 3u);
  EXPECT_DOUBLE_EQ(total.at("loss/seg"), 0.875);
  EXPECT_DOUBLE_EQ(total.at("acc"), 3.0);
  EXPECT_NEAR(total.at("lr"), 0.6, 1e-15);
  EXPECT_THROW(methods::LogValue(at::zeros({2})), std::invalid_argument);
}

}  // namespace
}  // namespace da
