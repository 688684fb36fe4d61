// Validation metrics: IoU, F1 and accuracy from a known confusion matrix and
// from logits with an absent class; the label-free signals (target entropy,
// class-prior gap, soft neighbourhood density) against PyTorch's values,
// summed over two ranks, and their errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/confusion_matrix.h"
#include "metrics/label_free_signals.h"
#include "support/python_reference.h"
#include "trainer/trainer_reference.h"

namespace da {
namespace {

using test::det;
using test::reference;

TEST(Metrics, KnownConfusionMatrix) {
  // Rows are true classes, columns predictions:
  //   [[5,1,0],[2,3,1],[0,0,4]] plus 3 ignored pixels.
  const std::vector<std::int64_t> truth{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 255, 255, 255};
  const std::vector<std::int64_t> pred{0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 1, 0, 2};
  metrics::ConfusionMatrix cm(3);
  cm.add_predictions(at::tensor(pred).reshape({1, 1, 19}), at::tensor(truth).reshape({1, 1, 19}), 255);
  EXPECT_TRUE(at::equal(cm.counts(), at::tensor(std::vector<std::int64_t>{5, 1, 0, 2, 3, 1, 0, 0, 4}).reshape({3, 3})));
  const auto s = metrics::compute_scores(cm.counts());
  EXPECT_EQ(s.pixels, 16);
  EXPECT_DOUBLE_EQ(s.iou[0], 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.iou[1], 3.0 / 7.0);
  EXPECT_DOUBLE_EQ(s.iou[2], 4.0 / 5.0);
  EXPECT_DOUBLE_EQ(s.miou, (5.0 / 8 + 3.0 / 7 + 4.0 / 5) / 3);
  EXPECT_DOUBLE_EQ(s.f1[0], 10.0 / 13.0);
  EXPECT_DOUBLE_EQ(s.f1[1], 0.6);
  EXPECT_DOUBLE_EQ(s.f1[2], 8.0 / 9.0);
  EXPECT_DOUBLE_EQ(s.overall_accuracy, 0.75);
  const auto logs = metrics::score_logs(s, "target_val", {"bg", "building", "road"});
  EXPECT_DOUBLE_EQ(logs.at("iou/target_val"), s.miou);
  EXPECT_DOUBLE_EQ(logs.at("iou_road/target_val"), 0.8);
  EXPECT_DOUBLE_EQ(logs.at("acc/target_val"), 0.75);
}

TEST(Metrics, FromLogitsAndAbsentClass) {
  // Class 2 is neither present nor predicted: its IoU is undefined and the
  // mean is over classes 0 and 1 only.
  const auto logits = at::tensor(std::vector<double>{5, 0, 5, 0, 0, 5, 0, 5, 0, 0, 0, 0}).reshape({1, 3, 2, 2});
  const auto masks = at::tensor(std::vector<std::int64_t>{0, 0, 1, 1}).reshape({1, 2, 2});
  metrics::ConfusionMatrix cm(3);
  cm.add_logits(logits, masks, 255);
  const auto s = metrics::compute_scores(cm.counts());
  // predictions 0, 1, 0, 1 against truth 0, 0, 1, 1: one hit and two errors per class
  EXPECT_DOUBLE_EQ(s.iou[0], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.iou[1], 1.0 / 3.0);
  EXPECT_TRUE(std::isnan(s.iou[2]));
  EXPECT_DOUBLE_EQ(s.miou, 1.0 / 3.0);
  EXPECT_THROW(cm.add_predictions(at::zeros({1, 2}, at::kLong), at::full({1, 2}, 7, at::kLong), 255),
               std::out_of_range);
}

// The label-free signals of `logits` [tiles, K, H, W], its tiles split over
// two "ranks" (even and odd tiles, in batches of up to 3) whose sums are
// added, as the trainer's all-reduce adds them.
std::map<std::string, double> label_free_scores(const at::Tensor& logits, const at::Tensor& source_labels,
                                                metrics::LabelFreeSignals* one = nullptr) {
  const std::int64_t tiles = logits.size(0);
  const std::int64_t pixels = logits.size(2) * logits.size(3);
  metrics::LabelFreeSignals rank0(logits.size(1), tiles, pixels);
  metrics::LabelFreeSignals rank1(logits.size(1), tiles, pixels);
  for (int rank = 0; rank < 2; ++rank) {
    std::vector<std::int64_t> batch;
    auto flush = [&] {
      if (batch.empty()) return;
      (rank == 0 ? rank0 : rank1).add(logits.index_select(0, at::tensor(batch, at::kLong)), batch);
      batch.clear();
    };
    for (std::int64_t t = rank; t < tiles; t += 2) {
      batch.push_back(t);
      if (batch.size() == 3) flush();
    }
    flush();
  }
  rank0.sums() += rank1.sums();
  if (one) *one = rank0;
  return rank0.scores(source_labels);
}

TEST(LabelFreeSignals, EntropyPriorGapAndSndMatchPyTorch) {
  const auto logits = det({3, 3, 4, 4}, 0.9, 3.0);
  const auto scores = label_free_scores(logits, at::tensor(std::vector<double>{5, 9, 3}));
  EXPECT_NEAR(scores.at("unsup/target_entropy"), reference().at("signals.entropy")[0], 1e-12);
  EXPECT_NEAR(scores.at("unsup/class_prior_gap"), reference().at("signals.prior_gap")[0], 1e-12);
  EXPECT_NEAR(scores.at("unsup/snd"), reference().at("signals.snd")[0], 1e-10);
  // Without source labels there is no prior to compare with.
  EXPECT_EQ(label_free_scores(logits, at::Tensor()).count("unsup/class_prior_gap"), 0U);
}

TEST(LabelFreeSignals, SndSamplesEvenlySpacedPixelsAndEveryNthTileOfLargeSets) {
  metrics::LabelFreeSignals spaced(3, 1, 1);
  const auto spaced_scores = label_free_scores(det({1100, 3, 2, 2}, 0.2, 2.0), at::Tensor(), &spaced);
  EXPECT_EQ(spaced.samples_per_tile(), 3);
  EXPECT_EQ(spaced.tile_stride(), 1);
  EXPECT_NEAR(spaced_scores.at("unsup/snd"), reference().at("signals.snd_spaced")[0], 1e-10);
  metrics::LabelFreeSignals strided(3, 1, 1);
  const auto strided_scores = label_free_scores(det({5000, 3, 1, 1}, 0.5, 2.0), at::Tensor(), &strided);
  EXPECT_EQ(strided.samples_per_tile(), 1);
  EXPECT_EQ(strided.tile_stride(), 2);
  EXPECT_NEAR(strided_scores.at("unsup/snd"), reference().at("signals.snd_strided")[0], 1e-10);
}

TEST(LabelFreeSignals, SndIsTheLogOfTheNeighbourhoodSize) {
  // Each sample's neighbour distribution is uniform over the samples equal to
  // it (similarity 1/T = 20) and next to nothing elsewhere (0, or the
  // diagonal's -20): n equal samples give log(n - 1); two orthogonal
  // clusters of m, log(m - 1) (the other cluster's m weigh e^-20 each); the
  // authors' log(p + 1e-5) shifts both by about (n - 1) 1e-5.
  const auto one_hot = [](std::int64_t n, std::int64_t column) {
    auto t = at::zeros({n, 3}, at::kDouble);
    t.select(1, column).fill_(1.0);
    return t;
  };
  EXPECT_NEAR(metrics::soft_neighborhood_density(one_hot(10, 0)), -std::log(1.0 / 9 + 1e-5), 1e-7);
  EXPECT_NEAR(metrics::soft_neighborhood_density(at::cat({one_hot(5, 0), one_hot(5, 2)})), -std::log(1.0 / 4 + 1e-5), 1e-7);
}

// The message of what `call` throws as E ("" when it throws nothing).
template <class E, class F>
std::string thrown_message(F call) {
  try {
    call();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

TEST(LabelFreeSignals, RefusesBadSizesLogitsOfAnotherShapeAndTilesOutOfRange) {
  const std::string bad_size = "LabelFreeSignals: needs 2+ classes, 1+ tiles and 1+ pixels a tile";
  EXPECT_EQ(thrown_message<std::invalid_argument>([] { metrics::LabelFreeSignals(1, 4, 16); }), bad_size);
  EXPECT_EQ(thrown_message<std::invalid_argument>([] { metrics::LabelFreeSignals(3, 0, 16); }), bad_size);
  metrics::LabelFreeSignals signals(3, 4, 16);
  const std::string bad_shape = "LabelFreeSignals::add: logits must be [tiles, classes, H, W] of the declared size";
  EXPECT_EQ(thrown_message<std::invalid_argument>([&] { signals.add(at::zeros({1, 2, 4, 4}), {0}); }), bad_shape);
  EXPECT_EQ(thrown_message<std::invalid_argument>([&] { signals.add(at::zeros({1, 3, 4, 4}), {0, 1}); }), bad_shape);
  EXPECT_EQ(thrown_message<std::invalid_argument>([&] { signals.add(at::zeros({1, 3, 2, 2}), {0}); }), bad_shape);
  EXPECT_EQ(thrown_message<std::out_of_range>([&] { signals.add(at::zeros({1, 3, 4, 4}), {4}); }),
            "LabelFreeSignals::add: tile index out of range");
  EXPECT_TRUE(signals.scores(at::Tensor()).empty());  // nothing added
}

}  // namespace
}  // namespace da
