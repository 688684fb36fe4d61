// MSTN's centroid alignment and pseudo_label's class-balanced thresholds
// (CBST): losses and gradients against tests/methods/make_mstn_cbst_reference.py
// (Debian's python3-torch), the moving-average update by hand, the state
// round trip, and two ranks (two threads summing through a fake Collectives)
// giving the one-rank result on the union batch.
#include <gtest/gtest.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <map>
#include <sstream>
#include <thread>

#include "method_test_support.h"
#include "methods/mstn.h"
#include "methods/pseudo_label.h"
#include "methods/registry.h"
#include "ranks/rank_sum.h"
#include "support/python_reference.h"
#include "support/thread_rank.h"
#include "support/two_thread_sum.h"

namespace da::methods {
namespace {

const test::Reference& reference() {
  static const test::Reference values = test::run_reference_script("tests/methods/make_mstn_cbst_reference.py");
  return values;
}

using test::det;
using test_support::set_params;

void expect_close(const at::Tensor& actual, const std::string& name, double tol = 1e-10) {
  test_support::expect_close(reference(), actual, name, tol);
}

// Labels 0..2 and 255 (ignored), as mask() in the generator.
torch::Tensor mask(std::vector<std::int64_t> shape, std::int64_t offset) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  auto m = torch::arange(n, torch::kLong).mul(7).add(offset).div(3, "floor").remainder(4);
  return m.masked_fill(m.eq(3), 255).reshape(shape);
}

using test::TwoThreadSum;
using test::ThreadRank;

// ---- MSTN

const std::map<std::string, std::string> kMstn{{"hidden_size", "5"}, {"decay", "0.7"}, {"centroid_weight", "1.5"}};

std::unique_ptr<Method> make_mstn() {
  auto method = test_support::create("mstn", kMstn, test_support::model_info(3, {"encoder.layer3"}, 4));
  method->module()->to(torch::kDouble);
  set_params(*method->module());
  return method;
}

const Mstn& as_mstn(const std::unique_ptr<Method>& m) { return dynamic_cast<const Mstn&>(*m); }

DaLossOutput mstn_step(Method& method, const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& m,
                       const torch::Tensor& target_logits, double lambda = 0.5) {
  const Batch source{torch::Tensor(), m}, target;
  const FeatureMap sf{{"encoder.layer3", s}}, tf{{"encoder.layer3", t}};
  const torch::Tensor source_logits;
  return method.compute_da_loss(StepInputs{source, target, source_logits, target_logits, sf, tf, lambda});
}

struct MstnInputs {
  torch::Tensor s1 = det({2, 4, 4, 4}, 0.1), t1 = det({2, 4, 4, 4}, 0.7, 1.5);
  torch::Tensor m1 = mask({2, 8, 8}, 0), tl1 = det({2, 3, 8, 8}, 0.3, 4.0);
  torch::Tensor s2 = det({2, 4, 4, 4}, 1.3), t2 = det({2, 4, 4, 4}, 2.1, 1.2);
  torch::Tensor m2 = mask({2, 8, 8}, 5), tl2 = det({2, 3, 8, 8}, 0.9, 4.0);
};

TEST(Mstn, LossGradientsAndCentroidsMatchPyTorchOverTwoSteps) {
  auto method = make_mstn();
  MstnInputs in;
  const auto first = mstn_step(*method, in.s1, in.t1, in.m1, in.tl1);
  EXPECT_NEAR(first.logs.at("centroid_loss"), reference().at("mstn.step1.centroid_loss")[0], 1e-12);
  expect_close(as_mstn(method).centroids(), "mstn.step1.centroids");
  expect_close(as_mstn(method).seen(), "mstn.step1.seen");

  const auto s2 = in.s2.clone().requires_grad_(), t2 = in.t2.clone().requires_grad_();
  const auto out = mstn_step(*method, s2, t2, in.m2, in.tl2);
  out.loss.backward();
  expect_close(out.loss, "mstn.step2.loss");
  EXPECT_NEAR(out.logs.at("centroid_loss"), reference().at("mstn.step2.centroid_loss")[0], 1e-12);
  EXPECT_EQ(out.logs.at("centroid_classes"), reference().at("mstn.step2.classes")[0]);
  EXPECT_TRUE(out.logs.count("domain_loss") && out.logs.count("domain_acc") && out.logs.count("lambda"));
  expect_close(as_mstn(method).centroids(), "mstn.step2.centroids");
  expect_close(as_mstn(method).seen(), "mstn.step2.seen");
  expect_close(s2.grad(), "mstn.step2.grad_source");
  expect_close(t2.grad(), "mstn.step2.grad_target");
  expect_close(method->module()->parameters().front().grad(), "mstn.step2.grad_disc_first");
}

// One channel, two pixels per image, two classes: the moving averages by hand.
TEST(Mstn, MovingAverageUpdateByHand) {
  auto method = test_support::create("mstn", {{"hidden_size", "2"}}, test_support::model_info(2, {"f"}, 1));
  method->module()->to(torch::kDouble);
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  auto step = [&](std::vector<double> s, std::vector<std::int64_t> labels, std::vector<double> t,
                  std::int64_t target_class) {
    const auto sf = torch::tensor(s, opts).reshape({1, 1, 1, 2});
    const auto tf = torch::tensor(t, opts).reshape({1, 1, 1, 2});
    const auto m = torch::tensor(labels, torch::kLong).reshape({1, 1, 2});
    auto logits = torch::zeros({1, 2, 1, 2}, opts);
    logits.select(1, target_class).fill_(1.0);
    return method->compute_da_loss(StepInputs{Batch{torch::Tensor(), m}, Batch{}, torch::Tensor(), logits,
                                              FeatureMap{{"f", sf}}, FeatureMap{{"f", tf}}, 1.0})
        .logs;
  };
  const auto& centroids = [&] { return as_mstn(method).centroids(); };
  // Step 1: source class 0 = 2, class 1 = 4; target class 0 = mean(10, 20);
  // target class 1 unseen, so only class 0 counts: (2 - 15)^2.
  auto logs = step({2, 4}, {0, 1}, {10, 20}, 0);
  EXPECT_DOUBLE_EQ(centroids()[0][0][0].item<double>(), 2.0);
  EXPECT_DOUBLE_EQ(centroids()[0][1][0].item<double>(), 4.0);
  EXPECT_DOUBLE_EQ(centroids()[1][0][0].item<double>(), 15.0);
  EXPECT_EQ(as_mstn(method).seen()[1][1].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(logs.at("centroid_loss"), 169.0);
  EXPECT_EQ(logs.at("centroid_classes"), 1.0);
  // Step 2: source class 0 batch mean 6 (255 is ignored) -> 0.7 * 2 + 0.3 * 6
  // = 3.2, class 1 absent keeps 4; target class 1 first seen -> mean(1, 3) = 2,
  // class 0 absent keeps 15. Loss: mean((3.2 - 15)^2, (4 - 2)^2).
  logs = step({6, 8}, {0, 255}, {1, 3}, 1);
  EXPECT_NEAR(centroids()[0][0][0].item<double>(), 0.7 * 2 + 0.3 * 6, 1e-14);
  EXPECT_DOUBLE_EQ(centroids()[0][1][0].item<double>(), 4.0);
  EXPECT_DOUBLE_EQ(centroids()[1][0][0].item<double>(), 15.0);
  EXPECT_DOUBLE_EQ(centroids()[1][1][0].item<double>(), 2.0);
  const double c0 = 0.7 * 2 + 0.3 * 6;
  EXPECT_NEAR(logs.at("centroid_loss"), ((c0 - 15) * (c0 - 15) + 4.0) / 2, 1e-12);
  EXPECT_EQ(logs.at("centroid_classes"), 2.0);
  // Step 3: source class 0 again: 0.7 * 3.2 + 0.3 * 10.
  step({10, 10}, {0, 0}, {2, 2}, 1);
  EXPECT_NEAR(centroids()[0][0][0].item<double>(), 0.7 * c0 + 0.3 * 10, 1e-13);
  EXPECT_NEAR(centroids()[1][1][0].item<double>(), 0.7 * 2 + 0.3 * 2, 1e-14);
}

TEST(Mstn, CentroidsAndDiscriminatorSurviveSaveLoad) {
  auto method = make_mstn();
  MstnInputs in;
  mstn_step(*method, in.s1, in.t1, in.m1, in.tl1);
  torch::serialize::OutputArchive out;
  method->save_state(out);
  std::stringstream bytes;
  out.save_to(bytes);

  auto fresh = test_support::create("mstn", kMstn, test_support::model_info(3, {"encoder.layer3"}, 4));
  fresh->module()->to(torch::kDouble);
  EXPECT_FALSE(torch::equal(as_mstn(fresh).seen(), as_mstn(method).seen()));
  torch::serialize::InputArchive archive;
  archive.load_from(bytes);
  fresh->load_state(archive);
  EXPECT_TRUE(torch::equal(as_mstn(fresh).centroids(), as_mstn(method).centroids()));
  EXPECT_TRUE(torch::equal(as_mstn(fresh).seen(), as_mstn(method).seen()));
  const auto a = method->module()->parameters(), b = fresh->module()->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
  // The next step continues exactly as without the round trip.
  const auto x = mstn_step(*method, in.s2, in.t2, in.m2, in.tl2);
  const auto y = mstn_step(*fresh, in.s2, in.t2, in.m2, in.tl2);
  EXPECT_EQ(x.loss.item<double>(), y.loss.item<double>());
  EXPECT_TRUE(torch::equal(as_mstn(fresh).centroids(), as_mstn(method).centroids()));
}

// Two ranks with two images each against one rank with all four: the same
// centroids on both ranks; each rank's feature gradient is twice the
// union's (its loss is the global centroid loss plus its DANN share, and the
// gradient average over ranks of data parallelism halves it back), and the
// discriminator gradients average to the union's.
TEST(Mstn, TwoRanksGiveTheOneRankResultOnTheUnionBatch) {
  const auto s1 = det({4, 4, 4, 4}, 0.1), t1 = det({4, 4, 4, 4}, 0.7, 1.5);
  const auto m1 = mask({4, 8, 8}, 0), tl1 = det({4, 3, 8, 8}, 0.3, 4.0);
  const auto s2 = det({4, 4, 4, 4}, 1.3), t2 = det({4, 4, 4, 4}, 2.1, 1.2);
  const auto m2 = mask({4, 8, 8}, 5), tl2 = det({4, 3, 8, 8}, 0.9, 4.0);

  auto whole = make_mstn();
  mstn_step(*whole, s1, t1, m1, tl1);
  const auto ws = s2.clone().requires_grad_(), wt = t2.clone().requires_grad_();
  const auto whole_out = mstn_step(*whole, ws, wt, m2, tl2);
  whole_out.loss.backward();

  TwoThreadSum sum;
  std::vector<std::unique_ptr<Method>> ranks;
  std::vector<torch::Tensor> rs(2), rt(2);
  std::vector<double> centroid_loss(2);
  for (int r = 0; r < 2; ++r) {
    ranks.push_back(make_mstn());
    ranks[r]->attach_collectives(std::make_shared<ThreadRank>(sum, r));
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      const auto half = [&](const torch::Tensor& t) { return t.slice(0, 2 * r, 2 * r + 2); };
      mstn_step(*ranks[r], half(s1), half(t1), half(m1), half(tl1));
      rs[r] = half(s2).clone().requires_grad_();
      rt[r] = half(t2).clone().requires_grad_();
      const auto out = mstn_step(*ranks[r], rs[r], rt[r], half(m2), half(tl2));
      centroid_loss[r] = out.logs.at("centroid_loss");
      out.loss.backward();
    });
  }
  for (auto& t : threads) t.join();

  for (int r = 0; r < 2; ++r) {
    EXPECT_LT((as_mstn(ranks[r]).centroids() - as_mstn(whole).centroids()).abs().max().item<double>(), 1e-12);
    EXPECT_TRUE(torch::equal(as_mstn(ranks[r]).seen(), as_mstn(whole).seen()));
    EXPECT_NEAR(centroid_loss[r], whole_out.logs.at("centroid_loss"), 1e-12);
    const auto half = [&](const torch::Tensor& t) { return t.slice(0, 2 * r, 2 * r + 2); };
    EXPECT_LT((rs[r].grad() - 2 * half(ws.grad())).abs().max().item<double>(), 1e-12);
    EXPECT_LT((rt[r].grad() - 2 * half(wt.grad())).abs().max().item<double>(), 1e-12);
  }
  const auto p0 = ranks[0]->module()->parameters(), p1 = ranks[1]->module()->parameters();
  const auto pw = whole->module()->parameters();
  for (std::size_t i = 0; i < pw.size(); ++i) {
    EXPECT_LT(((p0[i].grad() + p1[i].grad()) / 2 - pw[i].grad()).abs().max().item<double>(), 1e-12) << i;
  }
}

TEST(Mstn, ParametersAndLayers) {
  const auto model = test_support::model_info(3, {"encoder.layer3", "encoder.layer4"}, 4);
  auto method = test_support::create("mstn", {{"layers", "encoder.layer4"}, {"centroid_layer", "encoder.layer3"}}, model);
  EXPECT_EQ(method->feature_layers(), (std::vector<std::string>{"encoder.layer4", "encoder.layer3"}));
  const auto groups = method->extra_parameter_groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].name, "mstn.discriminator");
  EXPECT_EQ(test_support::creation_error("mstn", {{"decay", "1"}}, model),
            "domain_adaptation.method.decay: value 1 is out of range, must be >= 0, < 1");
  EXPECT_EQ(test_support::creation_error("mstn", {{"centroid_weight", "-1"}}, model),
            "domain_adaptation.method.centroid_weight: value -1 is out of range, must be >= 0");
}

// ---- CBST

std::unique_ptr<Method> make_cbst(std::int64_t classes, std::map<std::string, std::string> values = {}) {
  values["class_balanced"] = "true";
  return test_support::create("pseudo_label", values, test_support::model_info(classes, {}, 1));
}

const PseudoLabel& as_pseudo(const std::unique_ptr<Method>& m) { return dynamic_cast<const PseudoLabel&>(*m); }

DaLossOutput pseudo_step(Method& method, const torch::Tensor& logits) {
  const FeatureMap empty;
  return method.compute_da_loss(StepInputs{Batch{}, Batch{}, logits, logits, empty, empty, 1.0});
}

TEST(ClassBalancedPseudoLabel, ThresholdsLossAndGradientMatchPyTorch) {
  auto method = make_cbst(3);
  // Epoch 0: the fixed threshold (0.9).
  const auto first = pseudo_step(*method, det({2, 3, 6, 6}, 0.2, 3.0));
  EXPECT_NEAR(first.logs.at("pseudo_label_ratio"), reference().at("cbst.epoch0_ratio")[0], 1e-7);
  EXPECT_DOUBLE_EQ(first.logs.at("pseudo_label_threshold_mean"), 0.9);
  method->on_epoch_end(0);
  expect_close(as_pseudo(method).thresholds(), "cbst.thresholds", 1e-15);
  EXPECT_EQ(as_pseudo(method).histograms().sum().item<double>(), 0.0);  // reset for the next epoch

  const auto logits = det({2, 3, 6, 6}, 0.6, 3.0).requires_grad_();
  const auto out = pseudo_step(*method, logits);
  out.loss.backward();
  expect_close(out.loss, "cbst.loss");
  expect_close(logits.grad(), "cbst.grad");
  EXPECT_NEAR(out.logs.at("pseudo_label_ratio"), reference().at("cbst.ratio")[0], 1e-7);  // a float32 mean
  expect_close(out.extra.count("selected") ? out.extra.at("selected") : torch::Tensor(), "cbst.selected", 0.0);
  const auto& t = reference().at("cbst.thresholds");
  EXPECT_NEAR(out.logs.at("pseudo_label_threshold_mean"), (t[0] + t[1] + t[2]) / 3, 1e-15);
}

// Two classes with known confidences (one per histogram bin at most): the
// thresholds are the bins of the ceil(portion * n)-th most confident pixels,
// within a bin of the (1 - portion) quantile, and select exactly that many.
TEST(ClassBalancedPseudoLabel, ThresholdsFromAKnownConfidenceSet) {
  std::vector<double> conf0, conf1;
  for (int i = 0; i < 100; ++i) conf0.push_back(0.5 + 0.0045 * (i + 0.5));
  for (int j = 0; j < 50; ++j) conf1.push_back(0.6 + 0.0077 * (j + 0.5));
  // Pixels [1, 2, 1, 150]: logit(c) on the predicted class, 0 on the other.
  auto logits = torch::zeros({1, 2, 1, 150}, torch::kDouble);
  for (int i = 0; i < 100; ++i) logits[0][0][0][i] = std::log(conf0[i] / (1 - conf0[i]));
  for (int j = 0; j < 50; ++j) logits[0][1][0][100 + j] = std::log(conf1[j] / (1 - conf1[j]));
  auto method = make_cbst(2, {{"portion", "0.2"}});
  pseudo_step(*method, logits);
  method->on_epoch_end(0);
  const auto thresholds = as_pseudo(method).thresholds();
  // 20th most confident of class 0: index 80; 10th of class 1: index 40.
  EXPECT_DOUBLE_EQ(thresholds[0].item<double>(), std::floor(conf0[80] * 1000) / 1000);
  EXPECT_DOUBLE_EQ(thresholds[1].item<double>(), std::floor(conf1[40] * 1000) / 1000);
  for (int k = 0; k < 2; ++k) {
    const auto c = torch::tensor(k == 0 ? conf0 : conf1, torch::kDouble);
    EXPECT_NEAR(thresholds[k].item<double>(), torch::quantile(c, 0.8).item<double>(), (k == 0 ? 0.0045 : 0.0077) + 1e-3);
  }
  const auto out = pseudo_step(*method, logits);
  EXPECT_NEAR(out.logs.at("pseudo_label_ratio"), 30.0 / 150.0, 1e-7);  // 20 of class 0, 10 of class 1
  EXPECT_EQ(class_balanced_thresholds(torch::zeros({2, 10}), 0.2, 0.9)[1].item<double>(), 0.9);
}

TEST(ClassBalancedPseudoLabel, ThresholdsSurviveSaveLoad) {
  auto method = make_cbst(3);
  pseudo_step(*method, det({2, 3, 6, 6}, 0.2, 3.0));
  method->on_epoch_end(0);
  pseudo_step(*method, det({2, 3, 6, 6}, 0.6, 3.0));  // a partial histogram
  torch::serialize::OutputArchive out;
  method->save_state(out);
  std::stringstream bytes;
  out.save_to(bytes);
  auto fresh = make_cbst(3);
  torch::serialize::InputArchive archive;
  archive.load_from(bytes);
  fresh->load_state(archive);
  EXPECT_TRUE(torch::equal(as_pseudo(fresh).thresholds(), as_pseudo(method).thresholds()));
  EXPECT_TRUE(torch::equal(as_pseudo(fresh).histograms(), as_pseudo(method).histograms()));
  method->on_epoch_end(1);
  fresh->on_epoch_end(1);
  EXPECT_TRUE(torch::equal(as_pseudo(fresh).thresholds(), as_pseudo(method).thresholds()));
}

TEST(ClassBalancedPseudoLabel, TwoRanksGiveTheOneRankThresholdsOfTheUnionBatch) {
  const auto first = det({4, 3, 6, 6}, 0.2, 3.0), second = det({4, 3, 6, 6}, 0.6, 3.0);
  auto whole = make_cbst(3);
  pseudo_step(*whole, first);
  whole->on_epoch_end(0);
  const auto whole_out = pseudo_step(*whole, second);

  TwoThreadSum sum;
  std::vector<std::unique_ptr<Method>> ranks;
  std::vector<double> ratio(2);
  for (int r = 0; r < 2; ++r) {
    ranks.push_back(make_cbst(3));
    ranks[r]->attach_collectives(std::make_shared<ThreadRank>(sum, r));
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      pseudo_step(*ranks[r], first.slice(0, 2 * r, 2 * r + 2));
      ranks[r]->on_epoch_end(0);
      ratio[r] = pseudo_step(*ranks[r], second.slice(0, 2 * r, 2 * r + 2)).logs.at("pseudo_label_ratio");
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::equal(as_pseudo(ranks[r]).thresholds(), as_pseudo(whole).thresholds())) << r;
  }
  EXPECT_NEAR((ratio[0] + ratio[1]) / 2, whole_out.logs.at("pseudo_label_ratio"), 1e-7);
  // The thresholds differ from the fixed one: the test shows something.
  EXPECT_FALSE(torch::equal(as_pseudo(whole).thresholds(), torch::full({3}, 0.9, torch::kDouble)));
}

TEST(ClassBalancedPseudoLabel, ParameterErrors) {
  const auto model = test_support::model_info(3, {}, 1);
  EXPECT_EQ(test_support::creation_error("pseudo_label", {{"class_balanced", "true"}, {"portion", "0"}}, model),
            "domain_adaptation.method.portion: value 0 is out of range, must be > 0, <= 1");
  EXPECT_EQ(test_support::creation_error("pseudo_label", {{"portion", "1.5"}}, model),
            "domain_adaptation.method.portion: value 1.5 is out of range, must be > 0, <= 1");
}

TEST(Collectives, SingleRankIsTheIdentityAndTheSumIsDifferentiable) {
  auto one = ranks::single_rank();
  EXPECT_EQ(one->world_size(), 1);
  const auto x = det({3}, 0.2).requires_grad_();
  const auto y = ranks::all_reduce_sum(x, *one);
  EXPECT_TRUE(torch::equal(y, x));
  (y * det({3}, 1.0)).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), det({3}, 1.0)));
}

}  // namespace
}  // namespace da::methods
