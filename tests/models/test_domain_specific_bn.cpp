// Domain-specific BatchNorm: a plain model only records the domain; the
// source branch reproduces the plain model, a training forward updates and
// a backward reaches only its own domain's branch, parameters are the plain
// names plus target copies, and a plain state dict loads with the target
// branch taken from the source one.
#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/utils.h>

#include "models/model_fixture.h"
#include "models/segmentation_model.h"
#include "models/weights.h"

namespace da::models {
namespace {

using ::da::test::copy_by_name;
using ::da::test::is_target_key;
using ::da::test::kTinyDsbn;
using ::da::test::kTinyPlain;
using ::da::test::randomise_bns;
using ::da::test::state_of;

// Names of the plain BatchNorm2d modules of `model` ("encoder.bn1", "decoder.blocks.0.conv1.1", ...).
std::vector<std::string> bn_names(torch::nn::Module& model) {
  std::vector<std::string> names;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (item.value()->as<torch::nn::BatchNorm2d>()) names.push_back(item.key());
  }
  return names;
}

TEST(DomainSpecificBn, DefaultsAndPlainModelOnlyRecordsTheDomain) {
  EXPECT_FALSE(ModelSpec{}.domain_specific_bn);
  SegmentationModel plain = make_segmentation_model(kTinyPlain);
  EXPECT_FALSE(plain->domain_specific_bn());
  EXPECT_EQ(plain->domain(), Domain::kSource);
  plain->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 3, 32, 32});
  const at::Tensor before = plain->forward(x).logits;
  plain->set_domain(Domain::kTarget);
  EXPECT_EQ(plain->domain(), Domain::kTarget);
  EXPECT_TRUE(plain->forward(x).logits.equal(before));

  SegmentationModel dsbn = make_segmentation_model(kTinyDsbn);
  EXPECT_TRUE(dsbn->domain_specific_bn());
  EXPECT_EQ(dsbn->domain(), Domain::kSource);
  dsbn->set_domain(Domain::kTarget);
  EXPECT_EQ(dsbn->domain(), Domain::kTarget);
  size_t layers = 0;
  for (const auto& m : dsbn->modules(/*include_self=*/false)) {
    if (auto* bn = m->as<DomainBatchNorm2d>()) {
      EXPECT_EQ(bn->domain(), Domain::kTarget);
      ++layers;
    }
  }
  EXPECT_EQ(layers, bn_names(*plain).size());
}

TEST(DomainSpecificBn, SourceDomainReproducesThePlainModelInTrainAndEval) {
  torch::manual_seed(1);
  SegmentationModel plain = make_segmentation_model(kTinyPlain);
  SegmentationModel dsbn = make_segmentation_model(kTinyDsbn);
  randomise_bns(*dsbn);  // the target branch differs from the source one below
  randomise_bns(*plain);
  copy_by_name(*plain, *dsbn);
  dsbn->set_domain(Domain::kSource);
  const at::Tensor x = at::randn({2, 3, 32, 32});

  plain->train();
  dsbn->train();
  const at::Tensor plain_train = plain->forward(x).logits;
  const at::Tensor dsbn_train = dsbn->forward(x).logits;
  EXPECT_TRUE(dsbn_train.equal(plain_train));
  // The updated running stats agree too.
  auto dsbn_buffers = dsbn->named_buffers();
  for (const auto& item : plain->named_buffers()) {
    EXPECT_TRUE(dsbn_buffers[item.key()].equal(item.value())) << item.key();
  }

  plain->eval();
  dsbn->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor plain_eval = plain->forward(x).logits;
  EXPECT_TRUE(dsbn->forward(x).logits.equal(plain_eval));
  EXPECT_FALSE(plain_eval.equal(plain_train));
  // The target branch (different statistics) gives different logits.
  dsbn->set_domain(Domain::kTarget);
  EXPECT_FALSE(dsbn->forward(x).logits.equal(plain_eval));
  dsbn->set_domain(Domain::kSource);
  EXPECT_TRUE(dsbn->forward(x).logits.equal(plain_eval));
}

TEST(DomainSpecificBn, TrainForwardUpdatesOnlyTheRunningStatsOfItsDomain) {
  SegmentationModel model = make_segmentation_model(kTinyDsbn);
  model->train();
  const at::Tensor x = at::randn({2, 3, 32, 32});
  auto snapshot = [&] {
    std::map<std::string, at::Tensor> out;
    for (const auto& item : model->named_buffers()) out[item.key()] = item.value().clone();
    return out;
  };
  // Checks that exactly the buffers of `domain` changed between `before` and now.
  auto expect_changed = [&](const std::map<std::string, at::Tensor>& before, Domain domain) {
    size_t changed = 0;
    for (const auto& item : model->named_buffers()) {
      const bool is_target = is_target_key(item.key());
      const bool expected = (domain == Domain::kTarget) == is_target;
      EXPECT_EQ(!before.at(item.key()).equal(item.value()), expected) << item.key();
      changed += expected;
    }
    EXPECT_EQ(changed * 2, before.size());  // half the buffers belong to each branch
  };

  auto before = snapshot();
  model->set_domain(Domain::kTarget);
  model->forward(x);
  expect_changed(before, Domain::kTarget);
  EXPECT_EQ(model->named_buffers()["encoder.bn1.target.num_batches_tracked"].item<int64_t>(), 1);
  EXPECT_EQ(model->named_buffers()["encoder.bn1.num_batches_tracked"].item<int64_t>(), 0);

  before = snapshot();
  model->set_domain(Domain::kSource);
  model->forward(x);
  expect_changed(before, Domain::kSource);
  EXPECT_EQ(model->named_buffers()["encoder.bn1.num_batches_tracked"].item<int64_t>(), 1);

  // Eval forwards update nothing.
  before = snapshot();
  model->eval();
  for (const Domain d : {Domain::kSource, Domain::kTarget}) {
    model->set_domain(d);
    model->forward(x);
  }
  for (const auto& item : model->named_buffers()) EXPECT_TRUE(before.at(item.key()).equal(item.value())) << item.key();
}

TEST(DomainSpecificBn, GradientsReachOnlyTheAffineParametersOfTheDomain) {
  for (const Domain domain : {Domain::kTarget, Domain::kSource}) {
    SCOPED_TRACE(domain_name(domain));
    SegmentationModel model = make_segmentation_model(kTinyDsbn);
    model->train();
    model->set_domain(domain);
    model->forward(at::randn({2, 3, 32, 32})).logits.pow(2).mean().backward();
    std::set<std::string> source_bn_params;
    for (const auto& name : bn_names(*make_segmentation_model(kTinyPlain))) {
      source_bn_params.insert(name + ".weight");
      source_bn_params.insert(name + ".bias");
    }
    size_t target_params = 0;
    for (const auto& item : model->named_parameters()) {
      const at::Tensor& grad = item.value().grad();
      const bool has_grad = grad.defined() && grad.abs().sum().item<double>() > 0;
      if (is_target_key(item.key())) {
        ++target_params;
        EXPECT_EQ(has_grad, domain == Domain::kTarget) << item.key();
      } else if (source_bn_params.count(item.key())) {
        EXPECT_EQ(has_grad, domain == Domain::kSource) << item.key();
      } else {
        EXPECT_TRUE(has_grad) << item.key();  // shared convolutions and head
      }
    }
    EXPECT_EQ(target_params, source_bn_params.size());
  }
}

TEST(DomainSpecificBn, ParametersArePlainNamesPlusTargetCopies) {
  for (const std::string encoder : {"tiny", "resnet50"}) {
    SCOPED_TRACE(encoder);
    SegmentationModel plain = make_segmentation_model({encoder, 3, 2});
    SegmentationModel dsbn = make_segmentation_model({encoder, 3, 2, true});
    std::map<std::string, std::vector<int64_t>> expected;  // name -> shape
    int64_t plain_count = 0;
    int64_t bn_count = 0;
    for (const auto& item : plain->named_parameters()) {
      expected[item.key()] = item.value().sizes().vec();
      plain_count += item.value().numel();
    }
    std::set<std::string> expected_buffers;
    for (const auto& item : plain->named_buffers()) expected_buffers.insert(item.key());
    const std::vector<std::string> bns = bn_names(*plain);
    ASSERT_FALSE(bns.empty());
    for (const auto& bn : bns) {
      for (const std::string field : {"weight", "bias"}) {
        expected[bn + ".target." + field] = expected.at(bn + "." + field);
        bn_count += expected.at(bn + "." + field)[0];
      }
      for (const std::string field : {"running_mean", "running_var", "num_batches_tracked"}) {
        ASSERT_TRUE(expected_buffers.count(bn + "." + field)) << bn;
        expected_buffers.insert(bn + ".target." + field);
      }
    }
    std::map<std::string, std::vector<int64_t>> actual;
    int64_t dsbn_count = 0;
    for (const auto& item : dsbn->named_parameters()) {
      actual[item.key()] = item.value().sizes().vec();
      dsbn_count += item.value().numel();
    }
    std::set<std::string> actual_buffers;
    for (const auto& item : dsbn->named_buffers()) actual_buffers.insert(item.key());
    EXPECT_EQ(actual, expected);
    EXPECT_EQ(actual_buffers, expected_buffers);
    EXPECT_EQ(dsbn_count, plain_count + bn_count);
    EXPECT_EQ(actual.size(), plain->named_parameters().size() + 2 * bns.size());

    // Both branches start equal (BatchNorm's initialisation).
    auto params = dsbn->named_parameters();
    auto buffers = dsbn->named_buffers();
    for (const auto& bn : bns) {
      for (const std::string field : {"weight", "bias"}) {
        EXPECT_TRUE(params[bn + ".target." + field].equal(params[bn + "." + field])) << bn << "." << field;
      }
      EXPECT_TRUE(params[bn + ".weight"].equal(at::ones_like(params[bn + ".weight"]))) << bn;
      for (const std::string field : {"running_mean", "running_var", "num_batches_tracked"}) {
        EXPECT_TRUE(buffers[bn + ".target." + field].equal(buffers[bn + "." + field])) << bn << "." << field;
      }
    }
  }
  // The smp-compatible parameter names and counts of the plain model are untouched
  // (ParameterNamesShapesAndCountsMatchSmpUnet): 14,328,209 for resnet18.
  int64_t n = 0;
  for (const auto& p : make_segmentation_model({"resnet18", 3, 1})->parameters()) n += p.numel();
  EXPECT_EQ(n, 14328209);
}

TEST(DomainSpecificBn, PlainStateDictLoadsWithTargetFromSource) {
  torch::manual_seed(2);
  SegmentationModel plain = make_segmentation_model(kTinyPlain);
  randomise_bns(*plain);
  const StateDict state = state_of(*plain);

  // Strict, without the option: the target entries are missing.
  SegmentationModel dsbn = make_segmentation_model(kTinyDsbn);
  try {
    load_state_dict(*dsbn, state);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("missing keys: decoder.blocks.0.conv1.1.target.bias"), std::string::npos) << message;
    EXPECT_NE(message.find("encoder.bn1.target.running_mean"), std::string::npos) << message;
  }

  LoadOptions options;
  options.dsbn_target_from_source = true;
  const LoadReport report = load_state_dict(*dsbn, state, options);
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(report.unexpected.empty());
  const std::vector<std::string> bns = bn_names(*plain);
  EXPECT_EQ(report.target_from_source.size(), 5 * bns.size());
  EXPECT_TRUE(std::is_sorted(report.target_from_source.begin(), report.target_from_source.end()));
  auto params = dsbn->named_parameters();
  auto buffers = dsbn->named_buffers();
  for (const auto& bn : bns) {
    for (const std::string field : {"weight", "bias"}) {
      EXPECT_TRUE(params[bn + "." + field].equal(state.at(bn + "." + field))) << bn;
      EXPECT_TRUE(params[bn + ".target." + field].equal(state.at(bn + "." + field))) << bn;
    }
    for (const std::string field : {"running_mean", "running_var", "num_batches_tracked"}) {
      EXPECT_TRUE(buffers[bn + ".target." + field].equal(state.at(bn + "." + field))) << bn;
    }
  }
  // Both domains now compute the plain model's eval logits.
  plain->eval();
  dsbn->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 3, 32, 32});
  const at::Tensor expected = plain->forward(x).logits;
  for (const Domain d : {Domain::kSource, Domain::kTarget}) {
    dsbn->set_domain(d);
    EXPECT_TRUE(dsbn->forward(x).logits.equal(expected)) << domain_name(d);
  }

  // The option keeps target entries the file has (a DSBN checkpoint loads as saved).
  randomise_bns(*dsbn);
  const StateDict dsbn_state = state_of(*dsbn);
  SegmentationModel reloaded = make_segmentation_model(kTinyDsbn);
  EXPECT_TRUE(load_state_dict(*reloaded, dsbn_state, options).target_from_source.empty());
  for (const auto& item : reloaded->named_parameters()) {
    EXPECT_TRUE(item.value().equal(dsbn_state.at(item.key()))) << item.key();
  }
  EXPECT_FALSE(dsbn_state.at("encoder.bn1.target.weight").equal(dsbn_state.at("encoder.bn1.weight")));

  // The other route: non-strict load, then copy_source_bn_to_target.
  SegmentationModel lenient_model = make_segmentation_model(kTinyDsbn);
  LoadOptions lenient;
  lenient.strict = false;
  EXPECT_EQ(load_state_dict(*lenient_model, state, lenient).missing.size(), 5 * bns.size());
  EXPECT_FALSE(lenient_model->named_parameters()["encoder.bn1.target.weight"].equal(state.at("encoder.bn1.weight")));
  copy_source_bn_to_target(*lenient_model);
  lenient_model->eval();
  lenient_model->set_domain(Domain::kTarget);
  EXPECT_TRUE(lenient_model->forward(x).logits.equal(expected));

  // On a plain model the option changes nothing.
  SegmentationModel plain_copy = make_segmentation_model(kTinyPlain);
  EXPECT_TRUE(load_state_dict(*plain_copy, state, options).target_from_source.empty());
}

}  // namespace
}  // namespace da::models
