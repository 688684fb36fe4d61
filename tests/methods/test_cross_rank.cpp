// Batch statistics across ranks: all_gather_rows, and mcc, bsp, mmd and
// coral on two ranks (two threads summing through test_support::ThreadRank),
// rank r holding images r, r + 2, ... of a batch as io's DistributedSampler
// deals them, against one rank on the whole batch: the same loss on both
// ranks, and each rank's input gradient twice the whole batch's gradient of
// its images (data parallelism's average over the ranks halves it back to the
// one-process gradient, as collectives.h promises). Also CBST's histograms:
// the same global histograms on every rank, so rank 0's mid-epoch state
// resumes exactly on two ranks.
#include <gtest/gtest.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "method_test_support.h"
#include "methods/mcc.h"
#include "methods/pseudo_label.h"
#include "ranks/rank_sum.h"
#include "support/python_reference.h"
#include "support/thread_rank.h"
#include "support/two_thread_sum.h"

namespace da::methods {
namespace {

using test::det;
using test::TwoThreadSum;
using test::ThreadRank;

// Runs body(rank, collectives) on two threads sharing one TwoThreadSum.
void on_two_ranks(const std::function<void(int, const std::shared_ptr<ranks::RankSum>&)>& body) {
  TwoThreadSum sum;
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] { body(r, std::make_shared<ThreadRank>(sum, r)); });
  }
  for (auto& t : threads) t.join();
}

// Images r, r + 2, ...: rank r's share of a batch.
torch::Tensor share(const torch::Tensor& batch, int rank) { return batch.slice(0, rank, batch.size(0), 2); }

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// ------------------------------------------------------- all_gather_rows ----

TEST(AllGatherRows, ConcatenatesInRankOrderWithTheSumOfGradients) {
  // Rank 0 holds 3 rows, rank 1 holds 1: unequal counts are gathered too.
  const auto rows = det({4, 2, 3}, 0.3);
  const auto weight = det({4, 2, 3}, 1.1);
  std::vector<torch::Tensor> gathered(2), inputs(2);
  on_two_ranks([&](int r, const std::shared_ptr<ranks::RankSum>& ranks) {
    inputs[r] = (r == 0 ? rows.slice(0, 0, 3) : rows.slice(0, 3)).clone().requires_grad_();
    gathered[r] = ranks::all_gather_rows(inputs[r], *ranks, "test");
    (gathered[r] * weight).sum().backward();
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::equal(gathered[r], rows)) << r;
    // Both ranks' losses depend on these rows: the gradient is their sum.
    EXPECT_TRUE(torch::equal(inputs[r].grad(), 2 * (r == 0 ? weight.slice(0, 0, 3) : weight.slice(0, 3)))) << r;
  }
}

TEST(AllGatherRows, OneRankIsTheIdentity) {
  const auto rows = det({3, 2}, 0.3);
  EXPECT_TRUE(ranks::all_gather_rows(rows, *ranks::single_rank(), "test").is_same(rows));
  EXPECT_EQ(ranks::single_rank()->rank(), 0);
}

TEST(AllGatherRows, RowsOfDifferentSizesAreAnErrorOnEveryRank) {
  std::vector<std::string> errors(2);
  on_two_ranks([&](int r, const std::shared_ptr<ranks::RankSum>& ranks) {
    try {
      ranks::all_gather_rows(torch::zeros({2, r == 0 ? 3 : 4}), *ranks, "coral");
    } catch (const std::invalid_argument& e) {
      errors[r] = e.what();
    }
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(errors[r], "coral: the ranks hold rows of different sizes (3 and 4 values), cannot gather them") << r;
  }
}

// ----------------------------------------------- methods on two ranks ------

struct Step {
  torch::Tensor source_features, target_features, target_logits;  // whole batch
  std::int64_t global_step = 0;
};

DaLossOutput run(Method& method, const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& logits,
                 std::int64_t global_step) {
  Batch none;
  const torch::Tensor unused;
  FeatureMap sf, tf;
  if (s.defined()) sf["f"] = s;
  if (t.defined()) tf["f"] = t;
  return method.compute_da_loss(StepInputs{none, none, unused, logits, sf, tf, 1.0, global_step});
}

torch::Tensor leaf(const torch::Tensor& t) { return t.defined() ? t.clone().requires_grad_() : t; }

// The gradient of `input` against twice the whole batch's gradient of the
// same images, relative to the largest whole-batch gradient.
void expect_twice_the_share(const torch::Tensor& input, const torch::Tensor& whole, int rank, const std::string& what) {
  if (!input.defined()) return;
  ASSERT_TRUE(input.grad().defined()) << what;
  EXPECT_LE(max_abs(input.grad() - 2 * share(whole.grad(), rank)), 1e-10 * max_abs(whole.grad())) << what << rank;
}

// One method (parameters `values`, log `log_name`) on the whole batch and on
// two ranks; the batch statistic must matter: one rank's share alone gives
// another loss.
void expect_two_ranks_equal_one(const std::string& name, const std::map<std::string, std::string>& values,
                                const Step& step, const std::string& log_name) {
  SCOPED_TRACE(name);
  const std::int64_t channels = step.source_features.defined() ? step.source_features.size(1) : 1;
  const auto model = test_support::model_info(3, {"f"}, channels);
  auto whole = test_support::create(name, values, model);
  const auto ws = leaf(step.source_features), wt = leaf(step.target_features), wl = leaf(step.target_logits);
  const auto whole_out = run(*whole, ws, wt, wl, step.global_step);
  whole_out.loss.backward();
  const double expected = whole_out.loss.item<double>();

  std::vector<double> loss(2), logged(2);
  std::vector<torch::Tensor> rs(2), rt(2), rl(2);
  on_two_ranks([&](int r, const std::shared_ptr<ranks::RankSum>& ranks) {
    auto method = test_support::create(name, values, model);
    method->attach_collectives(ranks);
    const auto part = [&](const torch::Tensor& t) { return t.defined() ? leaf(share(t, r)) : t; };
    rs[r] = part(step.source_features);
    rt[r] = part(step.target_features);
    rl[r] = part(step.target_logits);
    const auto out = run(*method, rs[r], rt[r], rl[r], step.global_step);
    loss[r] = out.loss.item<double>();
    logged[r] = out.logs.at(log_name);
    out.loss.backward();
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_NEAR(loss[r], expected, 1e-12 * std::max(1.0, std::abs(expected))) << r;
    EXPECT_NEAR(logged[r], expected, 1e-12 * std::max(1.0, std::abs(expected))) << r;
    expect_twice_the_share(rs[r], ws, r, "source gradient, rank ");
    expect_twice_the_share(rt[r], wt, r, "target gradient, rank ");
    expect_twice_the_share(rl[r], wl, r, "logit gradient, rank ");
  }
  // Rank 0's share alone, without the other rank: another loss.
  auto alone = test_support::create(name, values, model);
  const auto own = [](const torch::Tensor& t) { return t.defined() ? share(t, 0) : t; };
  const double local = run(*alone, own(step.source_features), own(step.target_features), own(step.target_logits),
                           step.global_step)
                           .loss.item<double>();
  EXPECT_GT(std::abs(local - expected), 1e-6) << "the loss of one rank's share equals the whole batch's";
}

// Pooled to [4,5] with distinct singular values, as the BSP reference tests'
// bsp_features().
Step feature_step() {
  const auto scale = torch::tensor({3.0, 2.0, 1.2, 0.7, 0.4}, torch::kDouble).reshape({1, 5, 1, 1});
  const auto diag = torch::eye(4, 5, torch::kDouble).reshape({4, 5, 1, 1});
  Step step;
  step.source_features = det({4, 5, 3, 3}, 0.1) + scale + diag;
  step.target_features = det({4, 5, 3, 3}, 0.9, 1.5) - 0.5 * scale + 0.8 * diag;
  return step;
}

TEST(CrossRank, BspOnTwoRanksEqualsOneRankOnTheUnionBatch) {
  expect_two_ranks_equal_one("bsp", {{"k", "1"}}, feature_step(), "bsp_loss");
  expect_two_ranks_equal_one("bsp", {{"k", "2"}}, feature_step(), "bsp_loss");
}

TEST(CrossRank, MmdOnTwoRanksEqualsOneRankOnTheUnionBatch) {
  expect_two_ranks_equal_one("mmd", {}, feature_step(), "mmd_loss");
}

TEST(CrossRank, CoralOnTwoRanksEqualsOneRankOnTheUnionBatch) {
  expect_two_ranks_equal_one("coral", {}, feature_step(), "coral_loss");
}

TEST(CrossRank, CoralNeedsTwoSamplesInTheGlobalBatchOnly) {
  // One image per rank: a covariance of the two gathered samples.
  Step step;
  step.source_features = det({2, 3, 2, 2}, 0.1);
  step.target_features = det({2, 3, 2, 2}, 0.7, 1.5);
  auto whole = test_support::create("coral", {}, test_support::model_info(3, {"f"}, 3));
  const double expected = run(*whole, step.source_features, step.target_features, {}, 0).loss.item<double>();
  EXPECT_GT(expected, 0.0);
  std::vector<double> loss(2);
  on_two_ranks([&](int r, const std::shared_ptr<ranks::RankSum>& ranks) {
    auto method = test_support::create("coral", {}, test_support::model_info(3, {"f"}, 3));
    method->attach_collectives(ranks);
    loss[r] = run(*method, share(step.source_features, r), share(step.target_features, r), {}, 0).loss.item<double>();
  });
  for (int r = 0; r < 2; ++r) EXPECT_NEAR(loss[r], expected, 1e-12 * expected) << r;
}

Step mcc_step() {
  Step step;
  step.target_logits = det({4, 3, 5, 6}, 0.2, 3.0);
  step.global_step = 11;
  return step;
}

TEST(CrossRank, MccOnTwoRanksEqualsOneRankOnTheUnionBatch) {
  expect_two_ranks_equal_one("mcc", {{"pixels_per_image", "0"}}, mcc_step(), "mcc_loss");
  // Sampled pixels: the same pixels of the same images on one rank and on two.
  expect_two_ranks_equal_one("mcc", {{"pixels_per_image", "7"}, {"seed", "3"}}, mcc_step(), "mcc_loss");
}

TEST(CrossRank, MccSamplesEachImageByItsIndexInTheGlobalBatch) {
  const auto whole = mcc_sample_pixels(4, 30, 7, 3, 11);
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::equal(mcc_sample_pixels(2, 30, 7, 3, 11, r, 2), share(whole, r))) << r;
  }
  EXPECT_THROW(mcc_sample_pixels(2, 30, 7, 3, 11, 2, 2), c10::Error);
}

// ---------------------------------------------------------------- CBST -----

std::unique_ptr<Method> make_cbst() {
  return test_support::create("pseudo_label", {{"class_balanced", "true"}}, test_support::model_info(3, {}, 1));
}

const PseudoLabel& as_pseudo(const Method& m) { return dynamic_cast<const PseudoLabel&>(m); }

void pseudo_step(Method& method, const torch::Tensor& logits) {
  const FeatureMap empty;
  method.compute_da_loss(StepInputs{Batch{}, Batch{}, logits, logits, empty, empty, 1.0});
}

// Epoch 0: one step; epoch 1: two steps, a checkpoint of rank 0 between them.
TEST(CrossRank, ClassBalancedHistogramsAreGlobalSoRankZerosMidEpochStateResumesExactly) {
  const auto e0 = det({4, 3, 6, 6}, 0.2, 3.0), e1a = det({4, 3, 6, 6}, 0.6, 3.0), e1b = det({4, 3, 6, 6}, 1.3, 3.0);
  auto whole = make_cbst();
  pseudo_step(*whole, e0);
  whole->on_epoch_end(0);
  pseudo_step(*whole, e1a);
  const torch::Tensor mid_epoch = as_pseudo(*whole).histograms().clone();
  pseudo_step(*whole, e1b);
  whole->on_epoch_end(1);

  std::string checkpoint;
  std::vector<torch::Tensor> histograms(2);
  on_two_ranks([&](int r, const std::shared_ptr<ranks::RankSum>& ranks) {
    auto method = make_cbst();
    method->attach_collectives(ranks);
    pseudo_step(*method, share(e0, r));
    method->on_epoch_end(0);
    pseudo_step(*method, share(e1a, r));
    histograms[r] = as_pseudo(*method).histograms().clone();
    if (r == 0) {  // the trainer's checkpoint: rank 0's state only
      torch::serialize::OutputArchive out;
      method->save_state(out);
      std::ostringstream bytes;
      out.save_to(bytes);
      checkpoint = bytes.str();
    }
  });
  for (int r = 0; r < 2; ++r) EXPECT_TRUE(torch::equal(histograms[r], mid_epoch)) << r;

  std::vector<torch::Tensor> thresholds(2);
  on_two_ranks([&](int r, const std::shared_ptr<ranks::RankSum>& ranks) {
    auto method = make_cbst();
    method->attach_collectives(ranks);
    std::istringstream bytes(checkpoint);
    torch::serialize::InputArchive archive;
    archive.load_from(bytes);
    method->load_state(archive);
    pseudo_step(*method, share(e1b, r));
    method->on_epoch_end(1);
    thresholds[r] = as_pseudo(*method).thresholds().clone();
  });
  for (int r = 0; r < 2; ++r) EXPECT_TRUE(torch::equal(thresholds[r], as_pseudo(*whole).thresholds())) << r;
  // Epoch 1's thresholds are not epoch 0's: the resumed half-epoch counted.
  EXPECT_FALSE(torch::equal(as_pseudo(*whole).thresholds(), class_balanced_thresholds(mid_epoch, 0.2, 0.9)));
}

}  // namespace
}  // namespace da::methods
