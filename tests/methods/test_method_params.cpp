// The methods' parameter descriptions (methods/describe.h): every built-in
// parameter is documented and sourced, and the defaults described are the
// ones the methods use (a method created with no parameters behaves exactly
// like one given every described default explicitly).
#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "method_test_support.h"
#include "methods/describe.h"
#include "methods/mmd.h"
#include "methods/registry.h"
#include "support/python_reference.h"

namespace da::methods {
namespace {

using test::det;

const std::vector<std::string> kBuiltins = {"adabn", "advent_adversarial", "bsp", "cdan", "coral", "dann", "entropy",
                                            "fda", "mcc", "mmd", "mstn", "pseudo_label", "source_only"};

std::map<std::string, MethodParams> described() {
  std::map<std::string, MethodParams> out;
  for (auto& m : describe_methods()) out[m.method] = m;
  return out;
}

const ParamSpec& spec_of(const std::vector<ParamSpec>& specs, const std::string& name) {
  const auto it = std::find_if(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.name == name; });
  if (it == specs.end()) throw std::out_of_range("no parameter " + name);
  return *it;
}

// Every described default as the text a config would give ("unset" ones
// stay absent; lists as their items joined by ',', as setup passes them).
std::map<std::string, std::string> explicit_defaults(const std::vector<ParamSpec>& specs) {
  std::map<std::string, std::string> values;
  for (const auto& spec : specs) {
    if (spec.fallback == "unset") continue;
    std::string text = spec.fallback == "''" ? "" : spec.fallback;
    if (spec.kind == "list") {
      text = text.substr(1, text.size() - 2);
      text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
    }
    values[spec.name] = text;
  }
  return values;
}

TEST(MethodParams, EveryBuiltinParameterHasDocAndSource) {
  const auto methods = described();
  for (const auto& name : kBuiltins) {
    ASSERT_TRUE(methods.count(name)) << name;
    const auto& m = methods.at(name);
    EXPECT_EQ(m.error, "") << name;
    for (const auto& spec : m.params) {
      EXPECT_FALSE(spec.doc.doc.empty()) << name << "." << spec.name;
      EXPECT_FALSE(spec.doc.source.empty()) << name << "." << spec.name;
      EXPECT_FALSE(spec.kind.empty()) << name << "." << spec.name;
      EXPECT_FALSE(spec.fallback.empty()) << name << "." << spec.name;
    }
  }
  const auto common = describe_common_params();
  ASSERT_EQ(common.size(), 1u);
  EXPECT_EQ(common[0].name, "loss_weight");
  EXPECT_EQ(common[0].kind, "float >= 0");
  EXPECT_EQ(common[0].fallback, "1");
  EXPECT_FALSE(common[0].doc.source.empty());
}

TEST(MethodParams, KindsDefaultsAndSourcesAsRead) {
  const auto methods = described();
  const auto& dann = methods.at("dann").params;
  EXPECT_EQ(spec_of(dann, "hidden_size").kind, "int >= 1");
  EXPECT_EQ(spec_of(dann, "hidden_size").fallback, "1024");
  EXPECT_NE(spec_of(dann, "hidden_size").doc.source.find("Ganin et al. 2016"), std::string::npos);
  EXPECT_EQ(spec_of(dann, "discriminator").kind, "pooled | pixel");
  EXPECT_EQ(spec_of(dann, "discriminator").fallback, "pooled");
  EXPECT_EQ(spec_of(dann, "lambda_in_loss").fallback, "false");
  EXPECT_EQ(spec_of(dann, "discriminator_lr").fallback, "unset");
  EXPECT_EQ(spec_of(dann, "discriminator_lr").kind, "float >= 0");
  EXPECT_EQ(spec_of(dann, "layer").fallback, "''");
  const auto& fda = methods.at("fda").params;
  EXPECT_EQ(spec_of(fda, "beta").kind, "float > 0, <= 0.5");
  EXPECT_EQ(spec_of(fda, "beta").fallback, "0.01");
  EXPECT_EQ(spec_of(methods.at("mstn").params, "decay").kind, "float >= 0, < 1");
  EXPECT_EQ(spec_of(methods.at("mcc").params, "temperature").kind, "float > 0");
  EXPECT_EQ(spec_of(methods.at("mmd").params, "kernel_alphas").fallback, "[0.125, 0.25, 0.5, 1, 2]");
  EXPECT_EQ(spec_of(methods.at("mmd").params, "layer").fallback, "encoder");
  // mstn takes every dann parameter, then its own.
  for (const auto& spec : dann) EXPECT_NO_THROW(spec_of(methods.at("mstn").params, spec.name)) << spec.name;
  EXPECT_TRUE(methods.at("entropy").params.empty());
  EXPECT_TRUE(methods.at("source_only").params.empty());
}

// An unknown name still lists the valid ones, and they are exactly the
// described parameters.
TEST(MethodParams, UnknownParameterListsTheDescribedNames) {
  const auto model = test_support::model_info(3, {}, 4);
  for (const auto& [name, m] : described()) {
    if (m.params.empty()) continue;
    std::vector<std::string> names;
    for (const auto& spec : m.params) names.push_back(spec.name);
    std::sort(names.begin(), names.end());
    std::string valid;
    for (const auto& n : names) valid += (valid.empty() ? "'" : ", '") + n + "'";
    EXPECT_EQ(test_support::creation_error(name, {{"no_such_parameter", "1"}}, model),
              "domain_adaptation.method.no_such_parameter: unknown parameter; valid parameters are " + valid)
        << name;
  }
}

TEST(MethodParams, MmdUsesTheDescribedKernels) {
  const auto model = test_support::model_info(3, {}, 4);
  auto method = test_support::create("mmd", {}, model);
  EXPECT_EQ(dynamic_cast<Mmd&>(*method).kernel_alphas(), (std::vector<double>{0.125, 0.25, 0.5, 1, 2}));
}

// One step's inputs every built-in method can take: 3 classes, 32x32 tiles
// (advent_adversarial halves them five times), the default layer "encoder".
struct StepData {
  Batch source{det({2, 3, 32, 32}, 0.1), torch::arange(2 * 32 * 32).remainder(3).reshape({2, 32, 32})};
  Batch target{det({2, 3, 32, 32}, 0.7), torch::Tensor()};
  torch::Tensor source_logits = det({2, 3, 32, 32}, 0.3);
  torch::Tensor target_logits = det({2, 3, 32, 32}, 0.9, 3.0);
  FeatureMap source_features{{"encoder", det({2, 4, 4, 4}, 0.2)}};
  FeatureMap target_features{{"encoder", det({2, 4, 4, 4}, 0.5)}};
};

// The loss of one step after transform_batches, with the method's networks
// set to the same deterministic weights.
torch::Tensor one_step(Method& method, std::vector<torch::Tensor>* images) {
  if (auto module = method.module()) {
    module->to(torch::kDouble);  // det() tensors are double
    test_support::set_params(*module);
  }
  StepData d;
  method.transform_batches(d.source, d.target, 3);
  images->push_back(d.source.image);
  images->push_back(d.target.image);
  const StepInputs step{d.source,          d.target,          d.source_logits, d.target_logits,
                        d.source_features, d.target_features, 0.5,             3};
  return method.compute_da_loss(step).loss.detach();
}

TEST(MethodParams, DescribedDefaultsAreTheOnesUsed) {
  const auto model = test_support::model_info(3, {}, 4);
  for (const auto& [name, m] : described()) {
    SCOPED_TRACE(name);
    auto implicit = test_support::create(name, {}, model);
    auto explicit_ = test_support::create(name, explicit_defaults(m.params), model);
    EXPECT_EQ(implicit->feature_layers(), explicit_->feature_layers());
    EXPECT_EQ(implicit->uses_target_batch(), explicit_->uses_target_batch());
    EXPECT_EQ(implicit->requires_target_labels(), explicit_->requires_target_labels());
    EXPECT_EQ(implicit->target_batch_norm_batches(), explicit_->target_batch_norm_batches());
    const auto a = implicit->module(), b = explicit_->module();
    ASSERT_EQ(a == nullptr, b == nullptr);
    if (a) {
      const auto pa = a->named_parameters(), pb = b->named_parameters();
      ASSERT_EQ(pa.keys(), pb.keys());
      for (const auto& key : pa.keys()) EXPECT_EQ(pa[key].sizes(), pb[key].sizes()) << key;
    }
    const auto ga = implicit->extra_parameter_groups(), gb = explicit_->extra_parameter_groups();
    ASSERT_EQ(ga.size(), gb.size());
    for (std::size_t i = 0; i < ga.size(); ++i) {
      EXPECT_EQ(ga[i].lr, gb[i].lr);
      EXPECT_EQ(ga[i].weight_decay, gb[i].weight_decay);
    }
    std::vector<torch::Tensor> images_a, images_b;
    const auto loss_a = one_step(*implicit, &images_a);
    const auto loss_b = one_step(*explicit_, &images_b);
    EXPECT_TRUE(torch::equal(loss_a, loss_b)) << loss_a << " vs " << loss_b;
    for (std::size_t i = 0; i < images_a.size(); ++i) EXPECT_TRUE(torch::equal(images_a[i], images_b[i]));
  }
}

// A different value really changes what the comparison above looks at, so
// that it could fail (here: fda's beta and the images it makes).
TEST(MethodParams, TheComparisonSeesAChangedDefault) {
  const auto model = test_support::model_info(3, {}, 4);
  auto plain = test_support::create("fda", {}, model);
  auto wider = test_support::create("fda", {{"beta", "0.05"}}, model);
  std::vector<torch::Tensor> images_a, images_b;
  one_step(*plain, &images_a);
  one_step(*wider, &images_b);
  EXPECT_FALSE(torch::equal(images_a[0], images_b[0]));
}

}  // namespace
}  // namespace da::methods
