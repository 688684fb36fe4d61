// CDAN and multi-layer DANN against PyTorch: losses, gradients and the
// randomized map's random matrices from tests/methods/make_cdan_reference.py,
// on inputs and weights built from the same closed-form formulas as
// test_methods.cpp.
#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/serialize.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "method_test_support.h"
#include "methods/cdan.h"
#include "methods/dann.h"
#include "methods/registry.h"
#include "support/python_reference.h"

namespace da::methods {
namespace {

const test::Reference& reference() {
  static const test::Reference values = test::run_reference_script("tests/methods/make_cdan_reference.py");
  return values;
}

using test::det;
using test_support::set_params;

// The discriminators start near-uniform (weights 0.1 cos), so the gradients
// are small (1e-8 .. 1e-3); an absolute 1e-10 would check only a few digits.
// Compare relative to the tensor's largest magnitude instead (1e-10 of it),
// and the scalar losses relative to themselves.
void expect_close(const at::Tensor& actual, const std::string& name, double tol = 1e-10) {
  const auto& expected = reference().at(name);
  double scale = 0.0;
  for (double v : expected) scale = std::max(scale, std::abs(v));
  ASSERT_GT(scale, 0.0) << name;
  const auto flat = actual.detach().to(torch::kDouble).contiguous().reshape({-1});
  ASSERT_EQ(flat.numel(), static_cast<std::int64_t>(expected.size())) << name;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(flat[i].item<double>(), expected[i], tol * scale) << name << "[" << i << "]";
  }
}

ModelInfo model(std::map<std::string, std::int64_t> channels = {{"encoder.layer3", 4}, {"encoder.layer4", 6}}) {
  return test_support::model_info(3, {"encoder.layer3"}, std::move(channels));
}

std::unique_ptr<Method> create(const std::string& name, std::map<std::string, std::string> values,
                               const ModelInfo& info = model()) {
  return test_support::create(name, std::move(values), info);
}

// Features of layer i (channels, HxW) as the generator builds them.
struct LayerInputs {
  torch::Tensor source, target;
};
LayerInputs layer_inputs(std::int64_t channels, std::int64_t hw, std::int64_t i) {
  return {det({2, channels, hw, hw}, 0.1 + 0.2 * double(i)).requires_grad_(),
          det({2, channels, hw, hw}, 0.7 + 0.2 * double(i), 1.5).requires_grad_()};
}

const std::vector<std::string> kLayers{"encoder.layer3", "encoder.layer4"};
const std::vector<std::pair<std::int64_t, std::int64_t>> kShapes{{4, 3}, {6, 2}};  // channels, HxW

// Runs a method on `layers` of the reference inputs with lambda and checks
// losses, accuracies, feature gradients and the first discriminator weight.
void check(const std::string& tag, Method& method, std::size_t layers, double lambda) {
  auto disc = method.module();
  disc->to(torch::kDouble);
  set_params(*disc);
  const auto source_logits = det({2, 3, 5, 5}, 0.2, 2.0).requires_grad_();
  const auto target_logits = det({2, 3, 5, 5}, 0.9, 1.5).requires_grad_();
  std::vector<LayerInputs> inputs;
  FeatureMap sf, tf;
  for (std::size_t i = 0; i < layers; ++i) {
    inputs.push_back(layer_inputs(kShapes[i].first, kShapes[i].second, std::int64_t(i)));
    sf[kLayers[i]] = inputs.back().source;
    tf[kLayers[i]] = inputs.back().target;
  }
  Batch none;
  const auto out = method.compute_da_loss(StepInputs{none, none, source_logits, target_logits, sf, tf, lambda});
  out.loss.backward();
  expect_close(out.loss, tag + ".loss");
  EXPECT_NEAR(out.logs.at("domain_loss"), reference().at(tag + ".loss")[0], 1e-12);
  double acc = 0.0;
  for (std::size_t i = 0; i < layers; ++i) {
    const auto n = std::to_string(i);
    acc += reference().at(tag + ".acc" + n)[0] / double(layers);
    expect_close(inputs[i].source.grad(), tag + ".grad_source" + n);
    expect_close(inputs[i].target.grad(), tag + ".grad_target" + n);
    if (layers > 1) {
      EXPECT_NEAR(out.logs.at("domain_loss/" + kLayers[i]), reference().at(tag + ".loss" + n)[0], 1e-12);
      EXPECT_DOUBLE_EQ(out.logs.at("domain_acc/" + kLayers[i]), reference().at(tag + ".acc" + n)[0]);
    }
  }
  EXPECT_DOUBLE_EQ(out.logs.at("domain_acc"), acc);
  expect_close(disc->parameters().front().grad(), tag + ".grad_disc_first");
  // g is detached: no gradient reaches the classifier through CDAN.
  EXPECT_FALSE(source_logits.grad().defined());
  EXPECT_FALSE(target_logits.grad().defined());
}

void check_cdan(const std::string& tag, std::map<std::string, std::string> values, std::size_t layers = 1) {
  values["hidden_size"] = "5";
  auto method = create("cdan", std::move(values));
  check(tag, *method, layers, 0.5);
}

TEST(Cdan, PooledMultilinearMatchesPyTorch) { check_cdan("cdan_pooled", {}); }
TEST(Cdan, PixelMultilinearMatchesPyTorch) { check_cdan("cdan_pixel", {{"variant", "pixel"}}); }
TEST(Cdan, PooledEntropyConditioningMatchesPyTorch) {
  check_cdan("cdan_pooled_e", {{"entropy_conditioning", "true"}});
}
TEST(Cdan, PixelEntropyConditioningMatchesPyTorch) {
  check_cdan("cdan_pixel_e", {{"variant", "pixel"}, {"entropy_conditioning", "true"}});
}
TEST(Cdan, RandomizedPooledMatchesPyTorch) {
  check_cdan("cdan_random_pooled", {{"randomized_dim", "6"}, {"seed", "3"}});
}
TEST(Cdan, RandomizedPixelEntropyDefaultSeedMatchesPyTorch) {
  check_cdan("cdan_random_pixel_e", {{"variant", "pixel"}, {"entropy_conditioning", "true"}, {"randomized_dim", "7"}});
}
TEST(Cdan, TwoLayersWeightedMatchesPyTorch) {
  check_cdan("cdan_two_layers",
             {{"variant", "pixel"}, {"entropy_conditioning", "true"}, {"randomized_dim", "6"}, {"seed", "11"},
              {"layers", "encoder.layer3,encoder.layer4"}, {"layer_weights", "0.7,1.3"}},
             2);
}

// The premise of the randomized tests: a seeded C++ CPU generator and a
// seeded Python torch.Generator give identical randn values in the same call
// order, for float and double and on both sides of randn's vectorised path.
TEST(Cdan, CppAndPythonGeneratorsDrawIdenticalRandn) {
  for (std::int64_t n : {5, 40}) {
    auto generator = at::detail::createCPUGenerator(42);
    const auto f = torch::randn({n}, generator, torch::kFloat).to(torch::kDouble);
    const auto d = torch::randn({n}, generator, torch::kDouble);
    const auto& ef = reference().at("randn.seed42.float." + std::to_string(n));
    const auto& ed = reference().at("randn.seed42.double." + std::to_string(n));
    ASSERT_EQ(ef.size(), std::size_t(n));
    for (std::int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(f[i].item<double>(), ef[i]) << n << "/" << i;
      EXPECT_EQ(d[i].item<double>(), ed[i]) << n << "/" << i;
    }
  }
}

std::map<std::string, torch::Tensor> buffers(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : module.named_buffers()) out[item.key()] = item.value();
  return out;
}

TEST(Cdan, RandomMatricesAreExactPythonDrawsAndBuffers) {
  auto method = create("cdan", {{"randomized_dim", "6"}, {"seed", "11"}, {"layers", "encoder.layer3,encoder.layer4"}});
  auto b = buffers(*method->module());
  ASSERT_EQ(b.size(), 4u);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto prefix = layer_module_name(kLayers[i]) + ".";
    for (const char* which : {"random_f", "random_g"}) {
      const auto& expected = reference().at(std::string("cdan_two_layers.") + which + std::to_string(i));
      const auto actual = b.at(prefix + which).to(torch::kDouble).reshape({-1});
      ASSERT_EQ(actual.numel(), static_cast<std::int64_t>(expected.size()));
      for (std::size_t j = 0; j < expected.size(); ++j) EXPECT_EQ(actual[j].item<double>(), expected[j]);
    }
  }
  EXPECT_EQ(b.at("encoder_layer4.random_f").sizes(), (std::vector<std::int64_t>{6, 6}));
  EXPECT_EQ(b.at("encoder_layer4.random_g").sizes(), (std::vector<std::int64_t>{3, 6}));
  // Buffers, not parameters: the optimizer never moves them.
  for (const auto& group : method->extra_parameter_groups()) {
    for (const auto& p : group.params) EXPECT_NE(p.size(0), 3);  // no [3,6] random_g among them
    EXPECT_EQ(group.params.size(), 12u);  // 2 layers x 3 Linear x (weight, bias)
  }
}

TEST(Cdan, CheckpointRestoresRandomMatrices) {
  auto saved = create("cdan", {{"randomized_dim", "4"}, {"seed", "1"}});
  std::stringstream stream;
  torch::save(saved->module(), stream);
  auto other = create("cdan", {{"randomized_dim", "4"}, {"seed", "2"}});
  auto before = buffers(*other->module());
  EXPECT_FALSE(torch::equal(before.at("encoder_layer3.random_f"), buffers(*saved->module()).at("encoder_layer3.random_f")));
  auto module = other->module();
  torch::load(module, stream);
  for (const auto& [name, value] : buffers(*saved->module())) {
    EXPECT_TRUE(torch::equal(buffers(*other->module()).at(name), value)) << name;
  }
}

TEST(Cdan, DefaultsShapesAndParamGroups) {
  auto method = create("cdan", {{"hidden_size", "7"}, {"discriminator_lr", "0.01"},
                                {"discriminator_weight_decay", "0.001"}});
  EXPECT_EQ(method->name(), "cdan");
  EXPECT_EQ(method->feature_layers(), (std::vector<std::string>{"encoder.layer3"}));
  // Exact map: K*C = 3*4 inputs; no buffers.
  EXPECT_EQ(method->module()->parameters().front().sizes(), (std::vector<std::int64_t>{7, 12}));
  EXPECT_TRUE(buffers(*method->module()).empty());
  const auto groups = method->extra_parameter_groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].params.size(), 6u);
  EXPECT_DOUBLE_EQ(groups[0].lr.value(), 0.01);
  EXPECT_DOUBLE_EQ(groups[0].weight_decay.value(), 0.001);
  // Defaults: hidden 1024.
  EXPECT_EQ(create("cdan", {})->module()->parameters().front().size(0), 1024);
}

TEST(Dann, TwoLayersWeightedMatchesPyTorch) {
  auto method = create("dann", {{"hidden_size", "5"},
                                {"layers", "encoder.layer3,encoder.layer4"},
                                {"layer_weights", "0.7,1.3"}});
  EXPECT_EQ(method->feature_layers(), kLayers);
  check("dann_two_layers", *method, 2, 0.4);
  expect_close(method->module()->named_parameters()["encoder_layer4.fc1.weight"].grad(),
               "dann_two_layers.grad_disc_second");
}

std::vector<std::string> parameter_names(Method& method) {
  std::vector<std::string> names;
  for (const auto& item : method.module()->named_parameters()) names.push_back(item.key());
  return names;
}

TEST(Dann, SingleLayerKeepsCheckpointNamesMultiLayerPrefixesThem) {
  const std::vector<std::string> single{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  EXPECT_EQ(parameter_names(*create("dann", {})), single);
  EXPECT_EQ(parameter_names(*create("dann", {{"layer", "encoder.layer4"}})), single);
  EXPECT_EQ(parameter_names(*create("dann", {{"layers", "encoder.layer4"}})), single);
  const auto multi = parameter_names(*create("dann", {{"layers", "encoder.layer3,encoder.layer4"}}));
  ASSERT_EQ(multi.size(), 8u);
  EXPECT_EQ(multi[0], "encoder_layer3.fc1.weight");
  EXPECT_EQ(multi[4], "encoder_layer4.fc1.weight");
  // Single-layer logs keep their keys; no per-layer entries.
  auto method = create("dann", {{"hidden_size", "3"}});
  method->module()->to(torch::kDouble);
  const auto s = det({2, 4, 3, 3}, 0.1), t = det({2, 4, 3, 3}, 0.7);
  Batch none;
  const torch::Tensor logits;
  const FeatureMap sf{{"encoder.layer3", s}}, tf{{"encoder.layer3", t}};
  const auto out = method->compute_da_loss(StepInputs{none, none, logits, logits, sf, tf, 1.0});
  std::vector<std::string> keys;
  for (const auto& [key, value] : out.logs) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"domain_acc", "domain_loss", "lambda"}));
}

std::string creation_error(const std::string& name, std::map<std::string, std::string> values,
                           const ModelInfo& info = model()) {
  return test_support::creation_error(name, std::move(values), info);
}

TEST(Cdan, ParameterErrorsNameTheYamlPath) {
  EXPECT_EQ(creation_error("cdan", {{"randomized_dim", "-1"}}),
            "domain_adaptation.method.randomized_dim: value -1 is out of range, must be >= 0");
  EXPECT_EQ(creation_error("cdan", {{"seed", "-3"}}),
            "domain_adaptation.method.seed: value -3 is out of range, must be >= 0");
  EXPECT_EQ(creation_error("cdan", {{"hidden_size", "0"}}),
            "domain_adaptation.method.hidden_size: value 0 is out of range, must be >= 1");
  EXPECT_EQ(creation_error("cdan", {{"variant", "image"}}),
            "domain_adaptation.method.variant: unknown value 'image', valid values are 'pooled', 'pixel'");
  EXPECT_EQ(creation_error("cdan", {{"entropy_conditioning", "maybe"}}),
            "domain_adaptation.method.entropy_conditioning: expected true or false, got 'maybe'");
  EXPECT_EQ(creation_error("cdan", {{"discriminator_lr", "-0.1"}}),
            "domain_adaptation.method.discriminator_lr: value -0.1 is out of range, must be >= 0");
  EXPECT_EQ(creation_error("cdan", {{"discriminator", "pixel"}}),
            "domain_adaptation.method.discriminator: unknown parameter; valid parameters are 'discriminator_lr', "
            "'discriminator_weight_decay', 'entropy_conditioning', 'hidden_size', 'in_channels', 'layer', "
            "'layer_weights', 'layers', 'randomized_dim', 'seed', 'variant'");
  ModelInfo no_classes = model();
  no_classes.classes = 0;
  EXPECT_EQ(creation_error("cdan", {}, no_classes),
            "domain_adaptation.method: cdan needs the model's number of classes");
}

TEST(Dann, MultiLayerParameterErrorsNameTheYamlPath) {
  for (const char* method : {"dann", "cdan"}) {
    EXPECT_EQ(creation_error(method, {{"layer", "encoder.layer3"}, {"layers", "encoder.layer3,encoder.layer4"}}),
              "domain_adaptation.method.layers: give either layer or layers, not both");
    EXPECT_EQ(creation_error(method, {{"layers", "encoder.layer3,encoder.layer4"}, {"layer_weights", "1"}}),
              "domain_adaptation.method.layer_weights: 1 weights for 2 layers");
    EXPECT_EQ(creation_error(method, {{"layers", "encoder.layer3,encoder.layer4"}, {"layer_weights", "1,-2"}}),
              "domain_adaptation.method.layer_weights[1]: value -2 is out of range, must be >= 0");
    EXPECT_EQ(creation_error(method, {{"layers", "encoder.layer3,encoder.layer4"}, {"layer_weights", "x,1"}}),
              "domain_adaptation.method.layer_weights[0]: expected a number, got 'x'");
    EXPECT_EQ(creation_error(method, {{"layers", "encoder.layer3,encoder_layer3"}}),
              "domain_adaptation.method.layers: layer 'encoder_layer3' given twice (or clashes with "
              "'encoder.layer3')");
    EXPECT_EQ(creation_error(method, {{"layers", "encoder.layer3,encoder.layer4"}, {"in_channels", "8"}}),
              "domain_adaptation.method.in_channels: only with a single layer; with several, channels come from "
              "the model");
  }
}

}  // namespace
}  // namespace da::methods
