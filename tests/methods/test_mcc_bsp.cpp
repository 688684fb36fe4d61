// MCC and BSP against PyTorch: losses and gradients from
// tests/methods/make_mcc_bsp_reference.py, which runs tllib's
// MinimumClassConfusionLoss and BatchSpectralPenalizationLoss (generalised to
// the top k singular values) on inputs built from the same closed-form det()
// formula; the MCC pixel sample is drawn there with the same per-image
// seeds as methods/mcc.cpp.
#include <gtest/gtest.h>

#include <map>

#include "method_test_support.h"
#include "methods/bsp.h"
#include "methods/mcc.h"
#include "methods/registry.h"
#include "support/python_reference.h"

namespace da::methods {
namespace {

const test::Reference& reference() {
  static const test::Reference values = test::run_reference_script("tests/methods/make_mcc_bsp_reference.py");
  return values;
}

using test::det;

void expect_close(const at::Tensor& actual, const std::string& name, double tol = 1e-10) {
  test_support::expect_close(reference(), actual, name, tol);
}

ModelInfo model_info(std::vector<std::string> layers = {"encoder.layer3"}) {
  return test_support::model_info(4, std::move(layers), 5);
}

std::unique_ptr<Method> create(const std::string& name, std::map<std::string, std::string> values,
                               const ModelInfo& model = model_info()) {
  return test_support::create(name, std::move(values), model);
}

std::string creation_error(const std::string& name, std::map<std::string, std::string> values) {
  return test_support::creation_error(name, std::move(values), model_info());
}

// ---------------------------------------------------------------- MCC ------

torch::Tensor mcc_logits() { return det({2, 4, 5, 6}, 0.2, 3.0).requires_grad_(); }

DaLossOutput run_mcc(Method& method, const torch::Tensor& logits, std::int64_t global_step) {
  Batch none;
  const torch::Tensor unused;
  const FeatureMap empty;
  return method.compute_da_loss(StepInputs{none, none, unused, logits, empty, empty, 1.0, global_step});
}

void check_mcc_all(const std::string& tag, const std::string& temperature) {
  auto method = create("mcc", {{"temperature", temperature}, {"pixels_per_image", "0"}});
  const auto logits = mcc_logits();
  const auto out = run_mcc(*method, logits, 5);
  out.loss.backward();
  expect_close(out.loss, tag + ".loss");
  EXPECT_NEAR(out.logs.at("mcc_loss"), reference().at(tag + ".loss")[0], 1e-12);
  expect_close(logits.grad(), tag + ".grad");
}

TEST(Mcc, AllPixelsMatchTllibForTwoTemperatures) {
  check_mcc_all("mcc_all_t2.5", "2.5");
  check_mcc_all("mcc_all_t1", "1");
}

TEST(Mcc, DefaultsAreTemperature2p5AndNoFeatures) {
  // 30 pixels per image < the default 1024: every pixel is used.
  auto method = create("mcc", {});
  EXPECT_EQ(method->name(), "mcc");
  EXPECT_FALSE(method->requires_features());
  EXPECT_TRUE(method->uses_target_batch());
  EXPECT_FALSE(method->requires_target_labels());
  const auto logits = mcc_logits();
  expect_close(run_mcc(*method, logits, 0).loss, "mcc_all_t2.5.loss");
}

TEST(Mcc, SampleSeedAndIndicesMatchPyTorchGenerator) {
  const std::uint64_t seed = mcc_sample_seed(3, 11);
  const auto& hi_lo = reference().at("mcc_sample.seed_hi_lo");
  EXPECT_EQ(seed >> 32, std::uint64_t(hi_lo[0]));
  EXPECT_EQ(seed & 0xFFFFFFFFULL, std::uint64_t(hi_lo[1]));
  const auto index = mcc_sample_pixels(2, 30, 7, 3, 11);
  ASSERT_EQ(index.sizes(), (std::vector<std::int64_t>{2, 7}));
  EXPECT_EQ(index.scalar_type(), torch::kLong);
  const auto& expected = reference().at("mcc_sample.index");
  const auto flat = index.reshape({-1});
  ASSERT_EQ(std::size_t(flat.numel()), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(flat[i].item<std::int64_t>(), std::int64_t(expected[i]));
}

TEST(Mcc, SampleIsReproducibleAndChangesWithStepAndSeed) {
  const auto a = mcc_sample_pixels(2, 30, 7, 3, 11);
  EXPECT_TRUE(torch::equal(a, mcc_sample_pixels(2, 30, 7, 3, 11)));
  EXPECT_FALSE(torch::equal(a, mcc_sample_pixels(2, 30, 7, 3, 12)));
  EXPECT_FALSE(torch::equal(a, mcc_sample_pixels(2, 30, 7, 4, 11)));
  // Without replacement, within range, and each image its own draw.
  for (std::int64_t b = 0; b < 2; ++b) {
    const auto row = a[b];
    EXPECT_EQ(std::get<0>(at::_unique(row)).numel(), 7);
    EXPECT_GE(row.min().item<std::int64_t>(), 0);
    EXPECT_LT(row.max().item<std::int64_t>(), 30);
  }
  EXPECT_FALSE(torch::equal(a[0], a[1]));
  EXPECT_THROW(mcc_sample_pixels(2, 30, 31, 3, 11), c10::Error);
}

TEST(Mcc, SampledPixelsMatchTllibOnThosePixels) {
  auto method = create("mcc", {{"pixels_per_image", "7"}, {"seed", "3"}});
  const auto logits = mcc_logits();
  const auto out = run_mcc(*method, logits, 11);
  out.loss.backward();
  expect_close(out.loss, "mcc_sample.loss");
  expect_close(logits.grad(), "mcc_sample.grad");
  // Only the 14 sampled pixels get a gradient.
  EXPECT_EQ(logits.grad().abs().sum(1).gt(0).sum().item<std::int64_t>(), 14);
  // Same step, same sample, same loss; another step, another sample.
  EXPECT_EQ(run_mcc(*method, mcc_logits(), 11).loss.item<double>(), out.loss.item<double>());
  EXPECT_NE(run_mcc(*method, mcc_logits(), 12).loss.item<double>(), out.loss.item<double>());
}

TEST(Mcc, SampleOfAtLeastAllPixelsUsesEveryPixel) {
  for (const char* n : {"30", "31", "4096"}) {
    auto method = create("mcc", {{"pixels_per_image", n}});
    expect_close(run_mcc(*method, mcc_logits(), 7).loss, "mcc_all_t2.5.loss");
  }
}

TEST(Mcc, FloatLogitsGiveTheSameLossToFloatPrecision) {
  auto method = create("mcc", {{"pixels_per_image", "0"}});
  const auto out = run_mcc(*method, mcc_logits().detach().to(torch::kFloat), 0);
  EXPECT_EQ(out.loss.scalar_type(), torch::kFloat);
  EXPECT_NEAR(out.loss.item<double>(), reference().at("mcc_all_t2.5.loss")[0], 1e-5);
}

// ---------------------------------------------------------------- BSP ------

// The generator's bsp_features(): det() plus a per-channel offset and a
// diagonal, so that the pooled [4,5] matrices have distinct singular values.
std::pair<torch::Tensor, torch::Tensor> bsp_features() {
  const auto scale = torch::tensor({3.0, 2.0, 1.2, 0.7, 0.4}, torch::kDouble).reshape({1, 5, 1, 1});
  const auto diag = torch::eye(4, 5, torch::kDouble).reshape({4, 5, 1, 1});
  auto s = (det({4, 5, 3, 3}, 0.1) + scale + diag).requires_grad_();
  auto t = (det({4, 5, 3, 3}, 0.9, 1.5) - 0.5 * scale + 0.8 * diag).requires_grad_();
  return {s, t};
}

DaLossOutput run_bsp(Method& method, const torch::Tensor& s, const torch::Tensor& t, const std::string& layer) {
  Batch none;
  const torch::Tensor unused;
  const FeatureMap sf{{layer, s}}, tf{{layer, t}};
  return method.compute_da_loss(StepInputs{none, none, unused, unused, sf, tf, 1.0, 0});
}

TEST(Bsp, FeaturesAreWellConditioned) {
  const auto [s, t] = bsp_features();
  expect_close(torch::linalg_svdvals(bsp_pool(s.detach())), "bsp.source_singular_values");
  expect_close(torch::linalg_svdvals(bsp_pool(t.detach())), "bsp.target_singular_values");
}

void check_bsp(std::int64_t k) {
  const std::string tag = "bsp_k" + std::to_string(k);
  auto method = create("bsp", {{"k", std::to_string(k)}});
  const auto [s, t] = bsp_features();
  const auto out = run_bsp(*method, s, t, "encoder.layer3");
  out.loss.backward();
  expect_close(out.loss, tag + ".loss");
  EXPECT_NEAR(out.logs.at("bsp_loss"), reference().at(tag + ".loss")[0], 1e-10);
  expect_close(s.grad(), tag + ".grad_source");
  expect_close(t.grad(), tag + ".grad_target");
}

TEST(Bsp, TopSingularValueMatchesTllib) { check_bsp(1); }

TEST(Bsp, TopTwoSingularValuesMatchPyTorch) { check_bsp(2); }

TEST(Bsp, KIsCappedAtTheNumberOfSingularValues) {
  // k >= min(B, C) = 4 takes every singular value: the squared Frobenius norms.
  auto method = create("bsp", {{"k", "10"}});
  const auto [s, t] = bsp_features();
  const auto out = run_bsp(*method, s, t, "encoder.layer3");
  const auto expected = bsp_pool(s).pow(2).sum() + bsp_pool(t).pow(2).sum();
  EXPECT_NEAR(out.loss.item<double>(), expected.item<double>(), 1e-10 * expected.item<double>());
}

TEST(Bsp, LayerDefaultsLikeDann) {
  EXPECT_EQ(create("bsp", {})->feature_layers(), (std::vector<std::string>{"encoder.layer3"}));
  EXPECT_EQ(create("bsp", {}, model_info({}))->feature_layers(), (std::vector<std::string>{"encoder"}));
  auto method = create("bsp", {{"layer", "decoder"}});
  EXPECT_EQ(method->feature_layers(), (std::vector<std::string>{"decoder"}));
  EXPECT_TRUE(method->requires_features());
  EXPECT_EQ(method->name(), "bsp");
  // Default k = 1, on the chosen layer.
  const auto [s, t] = bsp_features();
  expect_close(run_bsp(*method, s, t, "decoder").loss, "bsp_k1.loss");
}

TEST(Bsp, PooledMatrixInputAndFloatFeatures) {
  const auto [s, t] = bsp_features();
  expect_close(bsp_loss(bsp_pool(s), bsp_pool(t), 2), "bsp_k2.loss");
  // [B,C] features are taken as already pooled.
  expect_close(bsp_loss(bsp_pool(bsp_pool(s)), bsp_pool(t), 2), "bsp_k2.loss");
  const auto f = bsp_loss(bsp_pool(s.to(torch::kFloat)), bsp_pool(t.to(torch::kFloat)), 2);
  EXPECT_NEAR(f.item<double>(), reference().at("bsp_k2.loss")[0], 1e-4);
}

// --------------------------------------------------------------- errors ----

TEST(MccBsp, RegisteredAndParameterErrorsNameThePath) {
  EXPECT_TRUE(Registry::instance().contains("mcc"));
  EXPECT_TRUE(Registry::instance().contains("bsp"));
  EXPECT_EQ(creation_error("mcc", {{"temperature", "0"}}),
            "domain_adaptation.method.temperature: value 0 is out of range, must be > 0");
  EXPECT_EQ(creation_error("mcc", {{"temperature", "-1.5"}}),
            "domain_adaptation.method.temperature: value -1.5 is out of range, must be > 0");
  EXPECT_EQ(creation_error("mcc", {{"temperature", "hot"}}),
            "domain_adaptation.method.temperature: expected a number, got 'hot'");
  EXPECT_EQ(creation_error("mcc", {{"pixels_per_image", "-1"}}),
            "domain_adaptation.method.pixels_per_image: value -1 is out of range, must be >= 0");
  EXPECT_EQ(creation_error("mcc", {{"temprature", "2"}}),
            "domain_adaptation.method.temprature: unknown parameter; valid parameters are 'pixels_per_image', "
            "'seed', 'temperature'");
  EXPECT_EQ(creation_error("bsp", {{"k", "0"}}), "domain_adaptation.method.k: value 0 is out of range, must be >= 1");
  EXPECT_EQ(creation_error("bsp", {{"topk", "2"}}),
            "domain_adaptation.method.topk: unknown parameter; valid parameters are 'k', 'layer'");
}

}  // namespace
}  // namespace da::methods
