// Built-in methods against PyTorch: losses, accuracies and gradients from
// tests/methods/make_method_reference.py (Debian's python3-torch), on inputs
// and weights both sides build from the same closed-form formulas.
#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include <cmath>
#include <map>
#include <sstream>

#include "method_test_support.h"
#include "methods/dann.h"
#include "methods/entropy.h"
#include "methods/gradient_reversal.h"
#include "methods/lambda_schedule.h"
#include "methods/registry.h"
#include "support/process.h"
#include "support/python_reference.h"

namespace da::methods {
namespace {

const test::Reference& reference() {
  static const test::Reference values = test::run_reference_script("tests/methods/make_method_reference.py");
  return values;
}

using test::det;
using test_support::set_params;

void expect_close(const at::Tensor& actual, const std::string& name, double tol = 1e-10) {
  test_support::expect_close(reference(), actual, name, tol);
}

ModelInfo model_with_channels(std::int64_t channels) {
  return test_support::model_info(3, {"encoder.layer3"}, channels);
}

std::unique_ptr<Method> create(const std::string& name, std::map<std::string, std::string> values,
                               const ModelInfo& model = model_with_channels(4)) {
  return test_support::create(name, std::move(values), model);
}

TEST(GradientReversal, IdentityForwardReversedScaledBackward) {
  const auto x = det({3, 2}, 0.4).requires_grad_();
  const auto w = det({3, 2}, 1.1);
  const auto y = gradient_reversal(x, 0.25);
  EXPECT_TRUE(torch::equal(y, x));
  (y * w).sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), -0.25 * w));
}

// Runs DANN on the reference features; checks loss, accuracy and the
// gradients of both features and the discriminator's first parameter.
void check_dann(const std::string& tag, const std::string& discriminator, double lambda) {
  auto method = create("dann", {{"discriminator", discriminator}, {"hidden_size", "5"}});
  auto disc = method->module();
  disc->to(torch::kDouble);
  set_params(*disc);
  const auto s = det({2, 4, 3, 3}, 0.1).requires_grad_();
  const auto t = det({2, 4, 3, 3}, 0.7, 1.5).requires_grad_();
  Batch none;
  const torch::Tensor logits;
  const FeatureMap sf{{"encoder.layer3", s}}, tf{{"encoder.layer3", t}};
  StepInputs step{none, none, logits, logits, sf, tf, lambda};
  const auto out = method->compute_da_loss(step);
  out.loss.backward();
  expect_close(out.loss, tag + ".loss");
  EXPECT_DOUBLE_EQ(out.logs.at("domain_acc"), reference().at(tag + ".acc")[0]);
  EXPECT_DOUBLE_EQ(out.logs.at("lambda"), lambda);
  EXPECT_NEAR(out.logs.at("domain_loss"), reference().at(tag + ".loss")[0], 1e-12);
  // Tensors, read when logged: no wait for the device in the step.
  EXPECT_FALSE(out.logs.at("domain_loss").on_host() || out.logs.at("domain_acc").on_host());
  expect_close(s.grad(), tag + ".grad_source");
  expect_close(t.grad(), tag + ".grad_target");
  expect_close(disc->parameters().front().grad(), tag + ".grad_disc_first");
}

TEST(Dann, PooledMatchesPyTorchForTwoLambdas) {
  check_dann("dann_pooled_l0.3", "pooled", 0.3);
  check_dann("dann_pooled_l1", "pooled", 1.0);
}

TEST(Dann, PixelMatchesPyTorch) { check_dann("dann_pixel_l0.5", "pixel", 0.5); }

TEST(Dann, LambdaScalesEncoderGradientOnlyNotDiscriminator) {
  const auto& r = reference();
  // Discriminator gradient is the same for both lambdas; the feature
  // gradient scales linearly with lambda.
  EXPECT_EQ(r.at("dann_pooled_l0.3.grad_disc_first"), r.at("dann_pooled_l1.grad_disc_first"));
  for (std::size_t i = 0; i < r.at("dann_pooled_l1.grad_source").size(); ++i) {
    EXPECT_NEAR(r.at("dann_pooled_l0.3.grad_source")[i], 0.3 * r.at("dann_pooled_l1.grad_source")[i], 1e-15);
  }
}

TEST(Dann, LambdaInLossOptionScalesBothLikeTheSourceDocuments) {
  auto method = create("dann", {{"hidden_size", "5"}, {"lambda_in_loss", "true"}});
  method->module()->to(torch::kDouble);
  set_params(*method->module());
  const auto s = det({2, 4, 3, 3}, 0.1), t = det({2, 4, 3, 3}, 0.7, 1.5);
  Batch none;
  const torch::Tensor logits;
  const FeatureMap sf{{"encoder.layer3", s}}, tf{{"encoder.layer3", t}};
  const auto out = method->compute_da_loss(StepInputs{none, none, logits, logits, sf, tf, 0.3});
  out.loss.backward();
  EXPECT_NEAR(out.loss.item<double>(), 0.3 * reference().at("dann_pooled_l0.3.loss")[0], 1e-12);
  const auto& expected = reference().at("dann_pooled_l1.grad_disc_first");
  const auto grad = method->module()->parameters().front().grad().reshape({-1});
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(grad[i].item<double>(), 0.3 * expected[i], 1e-12);
}

TEST(Dann, ChannelsDefaultFromModelAndParamGroups) {
  auto method = create("dann", {{"hidden_size", "7"}, {"discriminator_lr", "0.01"}}, model_with_channels(12));
  EXPECT_EQ(method->feature_layers(), (std::vector<std::string>{"encoder.layer3"}));
  EXPECT_TRUE(method->requires_features());
  EXPECT_EQ(method->module()->parameters().front().sizes(), (std::vector<std::int64_t>{7, 12}));
  const auto groups = method->extra_parameter_groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].params.size(), 4u);
  EXPECT_DOUBLE_EQ(groups[0].lr.value(), 0.01);
  EXPECT_FALSE(groups[0].weight_decay.has_value());
}

TEST(Entropy, MatchesPyTorch) {
  auto method = create("entropy", {});
  const auto logits = det({2, 3, 4, 4}, 0.2, 2.0).requires_grad_();
  Batch none;
  const FeatureMap empty;
  const auto out = method->compute_da_loss(StepInputs{none, none, logits, logits, empty, empty, 1.0});
  out.loss.backward();
  expect_close(out.loss, "entropy.loss");
  expect_close(logits.grad(), "entropy.grad");
  EXPECT_FALSE(method->requires_features());
}

void check_pseudo(const std::string& tag, const std::string& threshold) {
  auto method = create("pseudo_label", {{"threshold", threshold}});
  const auto logits = det({2, 3, 4, 4}, 0.3, 6.0).requires_grad_();
  Batch none;
  const FeatureMap empty;
  const auto out = method->compute_da_loss(StepInputs{none, none, logits, logits, empty, empty, 1.0});
  out.loss.backward();
  expect_close(out.loss, tag + ".loss");
  EXPECT_NEAR(out.logs.at("pseudo_label_ratio"), reference().at(tag + ".ratio")[0], 1e-15);
  expect_close(logits.grad(), tag + ".grad");
  EXPECT_TRUE(std::isfinite(out.logs.at("pseudo_label_loss")));
}

TEST(PseudoLabel, MatchesPyTorch) { check_pseudo("pseudo_t0.7", "0.7"); }

TEST(PseudoLabel, NoPixelAboveThresholdGivesZeroNotNaN) {
  check_pseudo("pseudo_t0.999", "0.999");
  EXPECT_EQ(reference().at("pseudo_t0.999.ratio")[0], 0.0);
}

TEST(LambdaSchedule, DannValuesMatchFormula) {
  const LambdaSchedule dann{"dann", 1.0, 10.0};
  const std::vector<double> ps{0, 0.1, 0.25, 0.5, 1.0};
  const auto& expected = reference().at("schedule.dann_gamma10");
  for (std::size_t i = 0; i < ps.size(); ++i) EXPECT_NEAR(dann.at(ps[i]), expected[i], 1e-15);
  EXPECT_DOUBLE_EQ((LambdaSchedule{"constant", 0.7, 10}.at(0.3)), 0.7);
  EXPECT_DOUBLE_EQ((LambdaSchedule{"linear", 2.0, 10}.at(0.25)), 0.5);
  EXPECT_DOUBLE_EQ(dann.at(2.0), dann.at(1.0));  // clamped
}

TEST(LambdaSchedule, ProgressByEpochOrBatchWithWarmup) {
  // 10 epochs of 5 steps, 2 warm-up epochs.
  EXPECT_DOUBLE_EQ(schedule_progress("epoch", 1, 10, 7, 50, 2, 5), 0.0);
  EXPECT_DOUBLE_EQ(schedule_progress("epoch", 2, 10, 10, 50, 2, 5), 0.0);
  EXPECT_DOUBLE_EQ(schedule_progress("epoch", 6, 10, 30, 50, 2, 5), 0.5);
  EXPECT_DOUBLE_EQ(schedule_progress("batch", 1, 10, 9, 50, 2, 5), 0.0);
  EXPECT_DOUBLE_EQ(schedule_progress("batch", 4, 10, 20, 50, 2, 5), 0.25);
  EXPECT_DOUBLE_EQ(schedule_progress("batch", 0, 10, 10, 40, 0, 4), 0.25);
}

TEST(Registry, BuiltinsRegistered) {
  const auto names = Registry::instance().names();
  for (const char* n : {"adabn", "advent_adversarial", "bsp", "cdan", "coral", "dann", "entropy", "fda", "mcc", "mmd",
                        "mstn", "pseudo_label", "source_only"}) {
    EXPECT_TRUE(Registry::instance().contains(n)) << n;
  }
}

std::string creation_error(const std::string& name, std::map<std::string, std::string> values) {
  return test_support::creation_error(name, std::move(values), model_with_channels(4));
}

TEST(Registry, ErrorsNamePathAndValidChoices) {
  EXPECT_EQ(creation_error("dan", {}),
            "domain_adaptation.method.name: unknown method 'dan', registered methods are 'adabn', 'advent_adversarial', 'bsp', "
            "'cdan', 'coral', 'dann', 'entropy', 'fda', 'mcc', 'mmd', 'mstn', 'pseudo_label', "
            "'source_only'");
  EXPECT_EQ(creation_error("pseudo_label", {{"treshold", "0.5"}}),
            "domain_adaptation.method.treshold: unknown parameter; valid parameters are 'class_balanced', 'portion', "
            "'threshold'");
  EXPECT_EQ(creation_error("pseudo_label", {{"threshold", "1.5"}}),
            "domain_adaptation.method.threshold: value 1.5 is out of range, must be >= 0, <= 1");
  EXPECT_EQ(creation_error("dann", {{"hidden_size", "big"}}),
            "domain_adaptation.method.hidden_size: expected an integer, got 'big'");
  EXPECT_EQ(creation_error("dann", {{"discriminator", "mlp"}}),
            "domain_adaptation.method.discriminator: unknown value 'mlp', valid values are 'pooled', 'pixel'");
  EXPECT_THROW(Registry::instance().add("dann", nullptr), MethodError);
  EXPECT_THROW(load_plugin("/nonexistent/libplugin.so"), MethodError);
}

}  // namespace
}  // namespace da::methods
