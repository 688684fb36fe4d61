// MMD and Deep CORAL against PyTorch: losses and gradients w.r.t. both
// domains' feature maps from tests/methods/make_mmd_coral_reference.py
// (Debian's python3-torch), on inputs both sides build with det(); plus the
// properties (identical domains give 0) and the parameter errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <stdexcept>

#include "method_test_support.h"
#include "methods/coral.h"
#include "methods/mmd.h"
#include "methods/registry.h"
#include "support/python_reference.h"

namespace da::methods {
namespace {

const test::Reference& reference() {
  static const test::Reference values = test::run_reference_script("tests/methods/make_mmd_coral_reference.py");
  return values;
}

using test::det;

void expect_close(const at::Tensor& actual, const std::string& name, double tol = 1e-10) {
  test_support::expect_close(reference(), actual, name, tol);
}

ModelInfo model_with_layer3() { return test_support::model_info(3, {"encoder.layer3"}, 4); }

std::unique_ptr<Method> create(const std::string& name, std::map<std::string, std::string> values,
                               const ModelInfo& model = model_with_layer3()) {
  return test_support::create(name, std::move(values), model);
}

std::string creation_error(const std::string& name, std::map<std::string, std::string> values) {
  return test_support::creation_error(name, std::move(values), model_with_layer3());
}

// Runs a method on one source and one target feature map of layer3.
DaLossOutput run(Method& method, const torch::Tensor& s, const torch::Tensor& t) {
  Batch none;
  const torch::Tensor logits;
  const FeatureMap sf{{"encoder.layer3", s}}, tf{{"encoder.layer3", t}};
  return method.compute_da_loss(StepInputs{none, none, logits, logits, sf, tf, 1.0});
}

// The generator's case(): source det(shape, 0.1), target det(shape, 0.7, 1.5).
void check_case(const std::string& tag, const std::string& method_name, std::map<std::string, std::string> values,
                std::vector<std::int64_t> source_shape, std::vector<std::int64_t> target_shape,
                const std::string& log_name) {
  SCOPED_TRACE(tag);
  auto method = create(method_name, std::move(values));
  const auto s = det(source_shape, 0.1).requires_grad_();
  const auto t = det(target_shape, 0.7, 1.5).requires_grad_();
  const auto out = run(*method, s, t);
  ASSERT_EQ(out.loss.dim(), 0);
  out.loss.backward();
  expect_close(out.loss, tag + ".loss");
  EXPECT_NEAR(out.logs.at(log_name), reference().at(tag + ".loss")[0], 1e-12);
  EXPECT_EQ(out.logs.size(), 1u);
  expect_close(s.grad(), tag + ".grad_source");
  expect_close(t.grad(), tag + ".grad_target");
}

TEST(Mmd, DefaultAlphasMatchPyTorch) {
  check_case("mmd_default", "mmd", {}, {3, 4, 3, 3}, {3, 4, 3, 3}, "mmd_loss");
  EXPECT_EQ(dynamic_cast<Mmd&>(*create("mmd", {})).kernel_alphas(),
            (std::vector<double>{0.125, 0.25, 0.5, 1.0, 2.0}));
}

TEST(Mmd, OneAlphaMatchesPyTorch) {
  check_case("mmd_alpha1.5", "mmd", {{"kernel_alphas", "1.5"}}, {3, 4, 3, 3}, {3, 4, 3, 3}, "mmd_loss");
}

TEST(Mmd, UnequalBatchSizesMatchPyTorch) {
  check_case("mmd_unequal", "mmd", {}, {2, 4, 3, 3}, {5, 4, 3, 3}, "mmd_loss");
}

TEST(Mmd, AlphasAsListAndScalarTextWithSpaces) {
  // A YAML list arrives comma-joined; a scalar "0.25, 4" has spaces.
  EXPECT_EQ(dynamic_cast<Mmd&>(*create("mmd", {{"kernel_alphas", "0.25,4"}})).kernel_alphas(),
            (std::vector<double>{0.25, 4.0}));
  EXPECT_EQ(dynamic_cast<Mmd&>(*create("mmd", {{"kernel_alphas", "0.25, 4"}})).kernel_alphas(),
            (std::vector<double>{0.25, 4.0}));
}

TEST(Mmd, IdenticalDomainsGiveZeroLossAndGradient) {
  auto method = create("mmd", {});
  const auto s = det({3, 4, 3, 3}, 0.1).requires_grad_();
  const auto t = det({3, 4, 3, 3}, 0.1).requires_grad_();
  const auto out = run(*method, s, t);
  out.loss.backward();
  EXPECT_NEAR(out.loss.item<double>(), 0.0, 1e-14);
  EXPECT_LE(s.grad().abs().max().item<double>(), 1e-14);
  EXPECT_LE(t.grad().abs().max().item<double>(), 1e-14);
}

TEST(Mmd, AllSamplesIdenticalGivesZeroNotNaN) {
  // Every squared distance is 0, so the batch bandwidth is 0 too.
  auto method = create("mmd", {});
  const auto s = torch::full({2, 4, 3, 3}, 0.5, torch::kDouble).requires_grad_();
  const auto t = torch::full({3, 4, 3, 3}, 0.5, torch::kDouble).requires_grad_();
  const auto out = run(*method, s, t);
  out.loss.backward();
  EXPECT_EQ(out.loss.item<double>(), 0.0);
  EXPECT_TRUE(torch::isfinite(s.grad()).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(t.grad()).all().item<bool>());
}

TEST(Mmd, BandwidthCarriesNoGradient) {
  // mmd_loss against the kernel built by hand with the bandwidth taken as a
  // plain number: same loss and same gradients, so none flows through mean(D).
  const auto zs = det({3, 4}, 0.3).requires_grad_();
  const auto zt = det({2, 4}, 1.1, 2.0).requires_grad_();
  const auto loss = mmd_loss(zs, zt, {1.0});
  loss.backward();
  const auto hs = det({3, 4}, 0.3).requires_grad_();
  const auto ht = det({2, 4}, 1.1, 2.0).requires_grad_();
  const auto x = torch::cat({hs, ht});
  const auto d = (x.unsqueeze(0) - x.unsqueeze(1)).pow(2).sum(2);
  const auto k = torch::exp(-d / (2.0 * d.mean().item<double>()));
  const auto hand = k.slice(0, 0, 3).slice(1, 0, 3).mean() + k.slice(0, 3).slice(1, 3).mean() -
                    2.0 * k.slice(0, 0, 3).slice(1, 3).mean();
  hand.backward();
  EXPECT_NEAR(loss.item<double>(), hand.item<double>(), 1e-14);
  EXPECT_TRUE(torch::allclose(zs.grad(), hs.grad(), 1e-12, 1e-14));
  EXPECT_TRUE(torch::allclose(zt.grad(), ht.grad(), 1e-12, 1e-14));
}

TEST(Mmd, ParameterErrorsNameTheYamlPath) {
  EXPECT_EQ(creation_error("mmd", {{"kernel_alphas", "0.5,0,2"}}),
            "domain_adaptation.method.kernel_alphas[1]: value 0 is out of range, must be > 0");
  EXPECT_EQ(creation_error("mmd", {{"kernel_alphas", "-1"}}),
            "domain_adaptation.method.kernel_alphas[0]: value -1 is out of range, must be > 0");
  EXPECT_EQ(creation_error("mmd", {{"kernel_alphas", "0.5,abc"}}),
            "domain_adaptation.method.kernel_alphas[1]: expected a number, got 'abc'");
  EXPECT_EQ(creation_error("mmd", {{"kernel_alphas", "1,2x"}}),
            "domain_adaptation.method.kernel_alphas[1]: expected a number, got '2x'");
  EXPECT_EQ(creation_error("mmd", {{"kernel_alphas", "1e999"}}),
            "domain_adaptation.method.kernel_alphas[0]: expected a number, got '1e999'");
  EXPECT_EQ(creation_error("mmd", {{"kernel_alphas", "nan"}}),
            "domain_adaptation.method.kernel_alphas[0]: expected a number, got 'nan'");
  EXPECT_EQ(creation_error("mmd", {{"kernel_alphas", ""}}),
            "domain_adaptation.method.kernel_alphas: expected at least one alpha, got an empty list");
  EXPECT_EQ(creation_error("mmd", {{"alphas", "1"}}),
            "domain_adaptation.method.alphas: unknown parameter; valid parameters are 'kernel_alphas', 'layer'");
}

TEST(Coral, EqualBatchSizesMatchPyTorch) {
  check_case("coral_equal", "coral", {}, {3, 4, 3, 3}, {3, 4, 3, 3}, "coral_loss");
}

TEST(Coral, UnequalBatchSizesMatchPyTorch) {
  check_case("coral_unequal", "coral", {}, {2, 4, 3, 3}, {5, 4, 3, 3}, "coral_loss");
}

TEST(Coral, IdenticalDomainsGiveZeroLossAndGradient) {
  auto method = create("coral", {});
  const auto s = det({3, 4, 3, 3}, 0.1).requires_grad_();
  const auto t = det({3, 4, 3, 3}, 0.1).requires_grad_();
  const auto out = run(*method, s, t);
  out.loss.backward();
  EXPECT_EQ(out.loss.item<double>(), 0.0);
  EXPECT_EQ(out.logs.at("coral_loss"), 0.0);
  EXPECT_EQ(s.grad().abs().max().item<double>(), 0.0);
  EXPECT_EQ(t.grad().abs().max().item<double>(), 0.0);
}

TEST(Coral, OneSamplePerDomainIsAClearError) {
  auto method = create("coral", {});
  for (const auto& [source_batch, target_batch] : {std::pair{1, 3}, std::pair{3, 1}}) {
    const auto s = det({source_batch, 4, 3, 3}, 0.1);
    const auto t = det({target_batch, 4, 3, 3}, 0.7);
    try {
      run(*method, s, t);
      ADD_FAILURE() << "no error for batches " << source_batch << ", " << target_batch;
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()),
                "coral: needs at least 2 samples per domain to estimate a covariance, got a source batch of " +
                    std::to_string(source_batch) + " and a target batch of " + std::to_string(target_batch) +
                    " (the covariances are of the global batch: raise data.batch_size)");
    }
  }
}

TEST(Coral, UnknownParameterNamesTheYamlPath) {
  EXPECT_EQ(creation_error("coral", {{"layers", "x"}}),
            "domain_adaptation.method.layers: unknown parameter; valid parameters are 'layer'");
}

TEST(MmdCoral, RegisteredWithFeatureLayerDefaults) {
  for (const char* name : {"mmd", "coral"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(Registry::instance().contains(name));
    const auto from_model = create(name, {});
    EXPECT_EQ(from_model->name(), name);
    EXPECT_EQ(from_model->feature_layers(), (std::vector<std::string>{"encoder.layer3"}));
    EXPECT_TRUE(from_model->requires_features());
    EXPECT_TRUE(from_model->uses_target_batch());
    EXPECT_FALSE(from_model->requires_target_labels());
    EXPECT_EQ(from_model->module(), nullptr);
    EXPECT_EQ(create(name, {}, ModelInfo{})->feature_layers(), (std::vector<std::string>{"encoder"}));
    EXPECT_EQ(create(name, {{"layer", "encoder.layer2"}})->feature_layers(),
              (std::vector<std::string>{"encoder.layer2"}));
  }
}

TEST(MmdCoral, MissingFeatureLayerIsAClearError) {
  for (const char* name : {"mmd", "coral"}) {
    auto method = create(name, {{"layer", "encoder.layer4"}});
    try {
      run(*method, det({2, 4, 3, 3}, 0.1), det({2, 4, 3, 3}, 0.7));
      ADD_FAILURE() << name;
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()),
                std::string(name) + ": feature layer 'encoder.layer4' is missing from the source features");
    }
  }
}

}  // namespace
}  // namespace da::methods
