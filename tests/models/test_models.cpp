// Tests of src/models: the U-Net's parameter names and counts against
// segmentation_models_pytorch's layout (reference from
// make_model_reference.py), output and feature shapes, and loading weights
// saved by Python; domain-specific BatchNorm.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/utils.h>

#include "models/batch_norm_statistics.h"
#include "models/segmentation_model.h"
#include "models/weights.h"
#include "support/process.h"
#include "support/thread_rank.h"
#include "support/two_thread_sum.h"

namespace da::models {
namespace {

using ::da::test::make_temp_dir;
using ::da::test::read_text;
using ::da::test::python_path;
using ::da::test::run_process;
using ::da::test::source_path;

std::string shape_csv(const at::Tensor& t) {
  std::string out;
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? "," : "") + std::to_string(t.size(i));
  return out;
}

struct ReferenceModel {
  ModelSpec spec;
  int64_t count = 0;
  std::vector<std::string> params;  // "name shape", sorted by name
};

// Parses tests/models/model_reference.txt (written by make_model_reference.py params).
std::vector<ReferenceModel> read_reference() {
  std::istringstream in(read_text(source_path("tests/models/model_reference.txt")));
  std::vector<ReferenceModel> models;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    if (kind == "model") {
      models.emplace_back();
      fields >> models.back().spec.encoder >> models.back().spec.in_channels >> models.back().spec.classes;
    } else if (kind == "count") {
      fields >> models.back().count;
    } else if (kind == "param") {
      models.back().params.push_back(line.substr(kind.size() + 1));
    }
  }
  return models;
}

TEST(SegmentationModel, ParameterNamesShapesAndCountsMatchSmpUnet) {
  const std::vector<ReferenceModel> references = read_reference();
  ASSERT_EQ(references.size(), 4u);
  for (const auto& reference : references) {
    SCOPED_TRACE(reference.spec.encoder + " in_channels=" + std::to_string(reference.spec.in_channels));
    SegmentationModel model = make_segmentation_model(reference.spec);
    std::vector<std::string> params;
    int64_t count = 0;
    for (const auto& item : model->named_parameters()) {
      params.push_back(item.key() + " " + shape_csv(item.value()));
      count += item.value().numel();
    }
    std::sort(params.begin(), params.end());
    EXPECT_EQ(count, reference.count);
    EXPECT_EQ(params, reference.params);
  }
}

TEST(SegmentationModel, KnownCountsOfSmpUnet) {
  // smp.Unet(encoder, classes=1) has 14,328,209 (resnet18) and 24,436,369 (resnet34) parameters.
  auto count = [](const std::string& encoder) {
    int64_t n = 0;
    for (const auto& p : make_segmentation_model({encoder, 3, 1})->parameters()) n += p.numel();
    return n;
  };
  EXPECT_EQ(count("resnet18"), 14328209);
  EXPECT_EQ(count("resnet34"), 24436369);
}

TEST(SegmentationModel, UnknownEncoderListsValidOnes) {
  try {
    make_segmentation_model({"resnet101", 3, 2});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("resnet101"), std::string::npos) << message;
    for (const auto& name : {"resnet18", "resnet34", "resnet50", "tiny"}) {
      EXPECT_NE(message.find(name), std::string::npos) << message;
    }
  }
  EXPECT_THROW(make_segmentation_model({"tiny", 0, 2}), std::invalid_argument);
  EXPECT_THROW(make_segmentation_model({"tiny", 3, 0}), std::invalid_argument);
}

struct TapCase {
  std::string encoder;
  std::vector<int64_t> encoder_channels;  // layer1..layer4
  std::vector<int64_t> decoder_channels;  // blocks 0..4
};

TEST(SegmentationModel, ForwardShapesAndFeatureTaps) {
  const std::vector<TapCase> cases = {{"tiny", {8, 16, 32, 64}, {32, 16, 8, 8, 8}},
                                      {"resnet18", {64, 128, 256, 512}, {256, 128, 64, 32, 16}},
                                      {"resnet50", {256, 512, 1024, 2048}, {256, 128, 64, 32, 16}}};
  torch::NoGradGuard no_grad;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.encoder);
    SegmentationModel model = make_segmentation_model({c.encoder, 4, 5});
    model->eval();
    const std::vector<std::string> names = model->feature_names();
    ASSERT_EQ(names, (std::vector<std::string>{"encoder", "encoder.layer1", "encoder.layer2", "encoder.layer3",
                                               "encoder.layer4", "decoder.blocks.0", "decoder.blocks.1",
                                               "decoder.blocks.2", "decoder.blocks.3", "decoder.blocks.4"}));
    const SegmentationOutput out = model->forward(at::randn({2, 4, 64, 64}), names);
    EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 5, 64, 64}));
    ASSERT_EQ(out.features.size(), names.size());
    EXPECT_EQ(out.features.at("encoder").sizes(), (std::vector<int64_t>{2, c.encoder_channels[3], 2, 2}));
    EXPECT_TRUE(out.features.at("encoder").equal(out.features.at("encoder.layer4")));
    for (int64_t i = 0; i < 4; ++i) {
      const std::string name = "encoder.layer" + std::to_string(i + 1);
      const int64_t size = 16 >> i;
      EXPECT_EQ(out.features.at(name).sizes(), (std::vector<int64_t>{2, c.encoder_channels[i], size, size})) << name;
    }
    for (int64_t i = 0; i < 5; ++i) {
      const std::string name = "decoder.blocks." + std::to_string(i);
      const int64_t size = 4 << i;
      EXPECT_EQ(out.features.at(name).sizes(), (std::vector<int64_t>{2, c.decoder_channels[i], size, size})) << name;
    }
    for (const auto& name : names) EXPECT_EQ(model->feature_channels(name), out.features.at(name).size(1)) << name;
  }
}

TEST(SegmentationModel, ReturnsOnlyRequestedFeatures) {
  SegmentationModel model = make_segmentation_model({"tiny", 3, 2});
  const SegmentationOutput none = model->forward(at::randn({2, 3, 64, 64}));
  EXPECT_TRUE(none.features.empty());
  EXPECT_EQ(none.logits.sizes(), (std::vector<int64_t>{2, 2, 64, 64}));
  const SegmentationOutput two = model->forward(at::randn({2, 3, 64, 64}), {"encoder", "decoder.blocks.2"});
  ASSERT_EQ(two.features.size(), 2u);
  EXPECT_EQ(two.features.count("encoder"), 1u);
  EXPECT_EQ(two.features.count("decoder.blocks.2"), 1u);
}

// Expects `call` to throw std::invalid_argument naming 'decoder.block.0' and every valid feature name.
void expect_unknown_feature_error(const std::function<void()>& call, const std::vector<std::string>& valid) {
  try {
    call();
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'decoder.block.0'"), std::string::npos) << message;
    for (const auto& name : valid) EXPECT_NE(message.find(name), std::string::npos) << message;
  }
}

TEST(SegmentationModel, UnknownFeatureNameListsValidNames) {
  SegmentationModel model = make_segmentation_model({"tiny", 3, 2});
  const std::vector<std::string> valid = model->feature_names();
  expect_unknown_feature_error(
      [&] {
        model->forward(at::randn({2, 3, 64, 64}), {"encoder", "decoder.block.0"});
      },
      valid);
  expect_unknown_feature_error([&] { model->feature_channels("decoder.block.0"); }, valid);
}

TEST(SegmentationModel, RejectsBadInputShapes) {
  SegmentationModel model = make_segmentation_model({"tiny", 3, 2});
  EXPECT_THROW(model->forward(at::randn({1, 4, 32, 32})), std::invalid_argument);
  EXPECT_THROW(model->forward(at::randn({1, 3, 48, 32})), std::invalid_argument);
  EXPECT_THROW(model->forward(at::randn({3, 32, 32})), std::invalid_argument);
}

StateDict state_of(torch::nn::Module& model) {
  StateDict state;
  for (const auto& item : model.named_parameters()) state[item.key()] = item.value().detach().clone();
  for (const auto& item : model.named_buffers()) state[item.key()] = item.value().detach().clone();
  return state;
}

TEST(Weights, StrictLoadListsMissingAndUnexpectedKeys) {
  SegmentationModel source = make_segmentation_model({"tiny", 3, 2});
  SegmentationModel target = make_segmentation_model({"tiny", 3, 2});
  StateDict state = state_of(*source);
  state.erase("decoder.blocks.1.conv2.0.weight");
  state.erase("encoder.bn1.running_var");
  state["encoder.fc.weight"] = at::zeros({2, 2});
  try {
    load_state_dict(*target, state);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("missing keys: decoder.blocks.1.conv2.0.weight, encoder.bn1.running_var"), std::string::npos)
        << message;
    EXPECT_NE(message.find("unexpected keys: encoder.fc.weight"), std::string::npos) << message;
  }
  // Nothing was copied by the failed strict load.
  EXPECT_FALSE(target->named_parameters()["encoder.conv1.weight"].equal(state.at("encoder.conv1.weight")));

  LoadOptions lenient;
  lenient.strict = false;
  const LoadReport report = load_state_dict(*target, state, lenient);
  EXPECT_EQ(report.missing, (std::vector<std::string>{"decoder.blocks.1.conv2.0.weight", "encoder.bn1.running_var"}));
  EXPECT_EQ(report.unexpected, (std::vector<std::string>{"encoder.fc.weight"}));
  EXPECT_TRUE(target->named_parameters()["encoder.conv1.weight"].equal(state.at("encoder.conv1.weight")));
  EXPECT_TRUE(target->named_buffers()["encoder.bn1.running_mean"].equal(state.at("encoder.bn1.running_mean")));
}

TEST(Weights, ShapeMismatchIsAnErrorInBothModes) {
  SegmentationModel source = make_segmentation_model({"tiny", 3, 2});
  SegmentationModel target = make_segmentation_model({"tiny", 3, 5});
  const StateDict state = state_of(*source);
  LoadOptions lenient;
  lenient.strict = false;
  for (const auto& options : {LoadOptions{}, lenient}) {
    try {
      load_state_dict(*target, state, options);
      FAIL() << "expected std::runtime_error";
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("segmentation_head.0.weight: file [2, 8, 3, 3] vs model [5, 8, 3, 3]"), std::string::npos)
          << message;
    }
  }
}

// ---- Domain-specific BatchNorm -------------------------------------------------------------------------------

const ModelSpec kTinyPlain{"tiny", 3, 2};
const ModelSpec kTinyDsbn{"tiny", 3, 2, /*domain_specific_bn=*/true};

bool is_target_key(const std::string& name) { return name.find(".target.") != std::string::npos; }

// Copies every parameter and buffer of `from` into the same-named entry of `to` (which must have it).
void copy_by_name(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto params = to.named_parameters();
  auto buffers = to.named_buffers();
  for (const auto& item : from.named_parameters()) {
    ASSERT_TRUE(params.contains(item.key())) << item.key();
    params[item.key()].copy_(item.value());
  }
  for (const auto& item : from.named_buffers()) {
    ASSERT_TRUE(buffers.contains(item.key())) << item.key();
    buffers[item.key()].copy_(item.value());
  }
}

// Gives every BN of `model` (both branches) non-trivial affine parameters and running stats.
void randomise_bns(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (auto* bn = item.value()->as<torch::nn::BatchNorm2d>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.5, 0.5);
      bn->running_mean.uniform_(-0.5, 0.5);
      bn->running_var.uniform_(0.5, 1.5);
      bn->num_batches_tracked.fill_(3);
    }
  }
}

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

TEST(Weights, MissingFileIsAnError) { EXPECT_THROW(read_state_dict("/nonexistent/weights.pt"), std::runtime_error); }

// A Python interpreter with torch and torchvision ("" when there is none).
std::string find_python() {
  const std::string python = python_path();
  return run_process(python, {"-c", "import torch, torchvision"}, {}, 60).exit_code == 0 ? python : "";
}

at::Tensor read_floats(const std::string& path, const std::vector<int64_t>& shape) {
  const std::string bytes = read_text(path);
  at::Tensor t = at::empty(shape, at::kFloat);
  EXPECT_EQ(bytes.size(), static_cast<size_t>(t.numel()) * sizeof(float)) << path;
  std::memcpy(t.data_ptr<float>(), bytes.data(), std::min(bytes.size(), t.numel() * sizeof(float)));
  return t;
}

class PythonWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    python_ = find_python();
    if (python_.empty()) GTEST_SKIP() << "no torch and torchvision in " << python_path() << " (bash tools/setup.sh)";
    dir_ = make_temp_dir("da_models");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Writes the Python U-Net's files for `encoder` (3 classes) to dir_ (see make_model_reference.py).
  void generate(const std::string& encoder) {
    const auto made = run_process(python_, {source_path("tests/models/make_model_reference.py"), "weights", "--encoder",
                                            encoder, "--classes", "3", "--out", dir_});
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }

  // Loads the converted Python state_dict into a fresh model and compares eval-mode logits with Python's.
  void expect_python_logits(const std::string& encoder) {
    ASSERT_NO_FATAL_FAILURE(generate(encoder));
    SegmentationModel model = make_segmentation_model({encoder, 3, 3});
    const LoadReport report = load_weights(*model, convert("unet.pth"));
    EXPECT_TRUE(report.missing.empty());
    EXPECT_TRUE(report.unexpected.empty());
    EXPECT_EQ(model->named_buffers()["encoder.bn1.num_batches_tracked"].item<int64_t>(), 7);
    model->eval();
    torch::NoGradGuard no_grad;
    const at::Tensor input = read_floats(dir_ + "/input.bin", {2, 3, 64, 64});
    const at::Tensor expected = read_floats(dir_ + "/logits.bin", {2, 3, 64, 64});
    const at::Tensor logits = model->forward(input).logits;
    EXPECT_LT((logits - expected).abs().max().item<double>(), 1e-5);
    EXPECT_GT(expected.abs().max().item<double>(), 0.1);  // the comparison is not between near-zero tensors
  }

  // Runs tools/convert_state_dict.py on dir_/name; returns the converted path.
  std::string convert(const std::string& name) {
    const std::string out = dir_ + "/" + name + ".dict.pt";
    const auto converted = run_process(python_, {source_path("tools/convert_state_dict.py"), dir_ + "/" + name, out});
    EXPECT_EQ(converted.exit_code, 0) << converted.err;
    return out;
  }

  std::string python_;
  std::string dir_;
};

TEST_F(PythonWeights, TinyUnetReproducesPythonLogits) { expect_python_logits("tiny"); }

// Bottleneck blocks (stride in the 3x3 convolution, as torchvision) are checked by value here.
TEST_F(PythonWeights, ResNet50UnetReproducesPythonLogits) { expect_python_logits("resnet50"); }

TEST_F(PythonWeights, RawStateDictPointsAtTheConversionScript) {
  ASSERT_NO_FATAL_FAILURE(generate("tiny"));
  try {
    read_state_dict(dir_ + "/unet.pth");
    FAIL() << "expected std::runtime_error (if libtorch now reads it, drop the conversion step)";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("unet.pth"), std::string::npos) << message;
    EXPECT_NE(message.find("tools/convert_state_dict.py"), std::string::npos) << message;
  }
}

TEST_F(PythonWeights, TorchvisionEncoderLoadsIntoTheEncoderOnly) {
  ASSERT_NO_FATAL_FAILURE(generate("tiny"));
  SegmentationModel full = make_segmentation_model({"tiny", 3, 3});
  load_weights(*full, convert("unet.pth"));
  SegmentationModel encoder_only = make_segmentation_model({"tiny", 3, 3});
  const LoadReport report = load_weights(*encoder_only, convert("encoder.pth"), torchvision_encoder_options());
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(report.unexpected.empty());
  full->eval();
  encoder_only->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor input = read_floats(dir_ + "/input.bin", {2, 3, 64, 64});
  EXPECT_TRUE(full->forward(input, {"encoder"})
                  .features.at("encoder")
                  .equal(encoder_only->forward(input, {"encoder"}).features.at("encoder")));
  // The decoder kept its own initialisation.
  EXPECT_FALSE(full->named_parameters()["decoder.blocks.0.conv1.0.weight"].equal(
      encoder_only->named_parameters()["decoder.blocks.0.conv1.0.weight"]));

  // Without ignoring fc.*, the torchvision keys are unexpected.
  LoadOptions keep_fc = torchvision_encoder_options();
  keep_fc.ignored_prefixes.clear();
  EXPECT_THROW(load_weights(*encoder_only, convert("encoder.pth"), keep_fc), std::runtime_error);
}

}  // namespace
}  // namespace da::models

namespace da::models {
namespace {


TEST(SyncBatchNorm, OneRankEqualsBatchNorm) {
  at::manual_seed(3);
  const at::Tensor input = at::randn({4, 5, 6, 7}) * 3 + 1;
  const at::Tensor upstream = at::randn({4, 5, 6, 7});
  torch::nn::BatchNorm2d plain(5);
  SyncBatchNorm2d synced(5, ranks::single_rank());
  {
    torch::NoGradGuard no_grad;
    plain->weight.copy_(at::rand({5}) + 0.5);
    plain->bias.copy_(at::randn({5}));
    synced->weight.copy_(plain->weight);
    synced->bias.copy_(plain->bias);
  }
  const at::Tensor x1 = input.clone().requires_grad_();
  const at::Tensor x2 = input.clone().requires_grad_();
  const at::Tensor y1 = plain->forward(x1);
  const at::Tensor y2 = synced->forward(x2);
  EXPECT_TRUE(at::allclose(y1, y2, 1e-5, 1e-5));
  (y1 * upstream).sum().backward();
  (y2 * upstream).sum().backward();
  EXPECT_TRUE(at::allclose(x1.grad(), x2.grad(), 1e-4, 1e-5)) << (x1.grad() - x2.grad()).abs().max();
  EXPECT_TRUE(at::allclose(plain->weight.grad(), synced->weight.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(plain->bias.grad(), synced->bias.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(plain->running_mean, synced->running_mean, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(plain->running_var, synced->running_var, 1e-5, 1e-6));
  EXPECT_EQ(synced->num_batches_tracked.item<int64_t>(), 1);
  plain->eval();
  synced->eval();
  EXPECT_TRUE(at::allclose(plain->forward(input), synced->forward(input), 1e-5, 1e-5));
}

// Under autocast a BatchNorm input is bf16 or fp16; the batch statistics
// must still be summed in float32 (a bf16 sum of 2048 values near 100 is off
// by hundreds), as BatchNorm2d on the float values of the same input.
TEST(SyncBatchNorm, ReducedPrecisionInputGetsFloat32Statistics) {
  at::manual_seed(4);
  const at::Tensor input = (at::randn({8, 2, 16, 16}) + 100).to(at::kBFloat16);
  torch::nn::BatchNorm2d plain(torch::nn::BatchNorm2dOptions(2).momentum(1.0));
  SyncBatchNorm2d synced(2, ranks::single_rank());
  synced->options.momentum(1.0);
  const at::Tensor expected = plain->forward(input.to(at::kFloat));
  const at::Tensor output = synced->forward(input);
  EXPECT_EQ(output.scalar_type(), at::kFloat);
  EXPECT_LT((synced->running_mean - plain->running_mean).abs().max().item<double>(), 1e-3);
  EXPECT_LT((synced->running_var - plain->running_var).abs().max().item<double>(), 1e-3);
  EXPECT_LT((output - expected).abs().max().item<double>(), 1e-3);
}

using test::TwoThreadSum;

using test::ThreadRank;

// The formulas, free of float32 rounding: in double, two ranks with half the
// batch each give BatchNorm2d's output, input gradients, running statistics
// and (summed over the ranks, as the gradient all-reduce does) parameter
// gradients over the whole batch to 1e-10. So the residual np2-vs-np1
// differences of sync_bn training in float32 (test_data_parallel) are
// rounding, amplified by BatchNorm's backward on tiny feature maps.
TEST(SyncBatchNorm, TwoRanksEqualBatchNormOverTheWholeBatchInDouble) {
  at::manual_seed(5);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor input = at::randn({6, 3, 4, 5}, f64) * 2 + 0.5;
  const at::Tensor upstream = at::randn({6, 3, 4, 5}, f64);
  torch::nn::BatchNorm2d plain(3);
  plain->to(at::kDouble);
  {
    torch::NoGradGuard no_grad;
    plain->weight.copy_(at::rand({3}, f64) + 0.5);
    plain->bias.copy_(at::randn({3}, f64));
  }
  const at::Tensor whole = input.clone().requires_grad_();
  const at::Tensor expected = plain->forward(whole);
  (expected * upstream).sum().backward();

  TwoThreadSum sum;
  std::vector<SyncBatchNorm2d> ranks;
  std::vector<at::Tensor> inputs, outputs(2);
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back(3, std::make_shared<ThreadRank>(sum, r));
    ranks[r]->to(at::kDouble);
    torch::NoGradGuard no_grad;
    ranks[r]->weight.copy_(plain->weight);
    ranks[r]->bias.copy_(plain->bias);
    inputs.push_back(input.slice(0, 3 * r, 3 * r + 3).clone().requires_grad_());
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      outputs[r] = ranks[r]->forward(inputs[r]);
      (outputs[r] * upstream.slice(0, 3 * r, 3 * r + 3)).sum().backward();
    });
  }
  for (auto& t : threads) t.join();

  for (int r = 0; r < 2; ++r) {
    const auto half = [&](const at::Tensor& t) { return t.slice(0, 3 * r, 3 * r + 3); };
    EXPECT_LT((outputs[r] - half(expected)).abs().max().item<double>(), 1e-10);
    EXPECT_LT((inputs[r].grad() - half(whole.grad())).abs().max().item<double>(), 1e-10);
    EXPECT_LT((ranks[r]->running_mean - plain->running_mean).abs().max().item<double>(), 1e-12);
    EXPECT_LT((ranks[r]->running_var - plain->running_var).abs().max().item<double>(), 1e-12);
  }
  const at::Tensor weight_grad = ranks[0]->weight.grad() + ranks[1]->weight.grad();
  const at::Tensor bias_grad = ranks[0]->bias.grad() + ranks[1]->bias.grad();
  EXPECT_LT((weight_grad - plain->weight.grad()).abs().max().item<double>(), 1e-10);
  EXPECT_LT((bias_grad - plain->bias.grad()).abs().max().item<double>(), 1e-10);
}

TEST(SyncBatchNorm, ModelBuiltWithSyncUsesItEverywhere) {
  ModelSpec spec{"tiny", 3, 2, false, ranks::single_rank()};
  auto model = make_segmentation_model(spec);
  std::size_t synced = 0, plain = 0;
  for (const auto& m : model->modules()) {
    synced += m->as<SyncBatchNorm2d>() != nullptr;
    plain += m->as<torch::nn::BatchNorm2d>() != nullptr;
  }
  EXPECT_GT(synced, 10u);
  EXPECT_EQ(plain, 0u);
  // Same names as a plain model, so checkpoints and weights load either way.
  auto reference = make_segmentation_model({"tiny", 3, 2});
  EXPECT_EQ(model->named_parameters().keys(), reference->named_parameters().keys());
  EXPECT_EQ(model->named_buffers().keys(), reference->named_buffers().keys());
}

}  // namespace
}  // namespace da::models

// ---- AdaBN: re-estimated BatchNorm statistics (batch_norm_statistics.h) -------------------------------------

namespace da::models {
namespace {

using Visit = std::function<void(const at::Tensor&)>;

// Visits `images` cut into batches of the given sizes.
std::function<void(const Visit&)> batches_of(const at::Tensor& images, std::vector<int64_t> sizes) {
  return [images, sizes](const Visit& visit) {
    int64_t at = 0;
    for (const int64_t size : sizes) {
      visit(images.narrow(0, at, size));
      at += size;
    }
  };
}

// Running statistics ("...running_mean" / "...running_var") of `model`, cloned.
std::map<std::string, at::Tensor> running_stats(torch::nn::Module& model) {
  std::map<std::string, at::Tensor> stats;
  for (const auto& item : model.named_buffers()) {
    if (item.key().find("running_") != std::string::npos) stats[item.key()] = item.value().clone();
  }
  return stats;
}

double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).norm().item<double>() / std::max(b.norm().item<double>(), 1e-12);
}

// The independent reference: a copy of `model` with momentum 1 in every
// batch norm, one train-mode forward of the whole set as a single batch.
std::map<std::string, at::Tensor> one_batch_reference(SegmentationModelImpl& model, const ModelSpec& spec,
                                                      const at::Tensor& images, Domain domain) {
  SegmentationModel copy = make_segmentation_model(spec);
  copy_by_name(model, *copy);
  for (const auto& m : copy->modules(/*include_self=*/false)) {
    if (auto* b = m->as<torch::nn::BatchNorm2d>()) b->options.momentum(1.0);
    if (auto* d = m->as<DomainBatchNorm2d>()) d->options.momentum(1.0);
    if (auto* s = m->as<SyncBatchNorm2d>()) s->options.momentum(1.0);
  }
  torch::NoGradGuard no_grad;
  copy->train();
  copy->set_domain(domain);
  copy->forward(images);
  return running_stats(*copy);
}

TEST(AdaBn, StatisticsAreThoseOfTheWholeSetAsOneTrainModeBatch) {
  ModelSpec synced = kTinyPlain;
  synced.batch_stats_sync = ranks::single_rank();
  for (const ModelSpec& spec : {kTinyPlain, kTinyDsbn, synced}) {
    SCOPED_TRACE(std::string(spec.domain_specific_bn ? "dsbn" : spec.batch_stats_sync ? "sync" : "plain"));
    at::manual_seed(11);
    SegmentationModel model = make_segmentation_model(spec);
    randomise_bns(*model);
    model->train();
    const at::Tensor images = at::randn({10, 3, 32, 32}) * 2 + 0.5;
    const auto before = running_stats(*model);
    const auto expected = one_batch_reference(*model, spec, images, Domain::kTarget);

    const BatchNormReestimate done = reestimate_batch_norm(*model, Domain::kTarget, batches_of(images, {4, 4, 2}),
                                                           at::zeros({1, 3, 32, 32}), spec.batch_stats_sync.get());
    EXPECT_EQ(done.tiles, 10);
    std::size_t bn_layers = 0;  // a DSBN layer counts once (its target child is a BatchNorm2d)
    for (const auto& m : model->modules(/*include_self=*/false)) {
      bn_layers += m->as<DomainBatchNorm2d>() || m->as<SyncBatchNorm2d>() ||
                   (!spec.domain_specific_bn && m->as<torch::nn::BatchNorm2d>());
    }
    EXPECT_EQ(done.layers, static_cast<int64_t>(bn_layers));
    EXPECT_TRUE(model->is_training());
    EXPECT_EQ(model->domain(), Domain::kSource);

    std::size_t compared = 0;
    for (const auto& [name, value] : running_stats(*model)) {
      if (spec.domain_specific_bn && !is_target_key(name)) {
        EXPECT_TRUE(at::equal(value, before.at(name))) << name << ": the source branch must stay";
        continue;
      }
      ++compared;
      EXPECT_LE(relative_difference(value, expected.at(name)), 1e-4) << name;
      EXPECT_GT(relative_difference(value, before.at(name)), 1e-2) << name << " did not change";
    }
    EXPECT_EQ(compared, 2 * bn_layers);
  }
}

TEST(AdaBn, AnyBatchingAndTwoRanksGiveTheOneProcessStatistics) {
  at::manual_seed(12);
  SegmentationModel start = make_segmentation_model(kTinyDsbn);
  randomise_bns(*start);
  const at::Tensor images = at::randn({10, 3, 32, 32}) * 1.5 - 0.3;
  const at::Tensor probe = at::zeros({1, 3, 32, 32});
  auto copy_of_start = [&] {
    SegmentationModel m = make_segmentation_model(kTinyDsbn);
    copy_by_name(*start, *m);
    return m;
  };
  SegmentationModel one = copy_of_start();
  reestimate_batch_norm(*one, Domain::kTarget, batches_of(images, {10}), probe, nullptr);
  const auto expected = running_stats(*one);

  SegmentationModel rebatched = copy_of_start();
  reestimate_batch_norm(*rebatched, Domain::kTarget, batches_of(images, {3, 3, 3, 1}), probe, nullptr);
  for (const auto& [name, value] : running_stats(*rebatched)) {
    EXPECT_LE(relative_difference(value, expected.at(name)), 1e-5) << name;
  }

  // Ranks with interleaved shards, and a rank without tiles.
  const at::Tensor even = images.index_select(0, at::tensor({0, 2, 4, 6, 8}, at::kLong));
  const at::Tensor odd = images.index_select(0, at::tensor({1, 3, 5, 7, 9}, at::kLong));
  const std::vector<std::pair<std::function<void(const Visit&)>, std::function<void(const Visit&)>>> splits{
      {batches_of(even, {3, 2}), batches_of(odd, {5})}, {batches_of(images, {4, 4, 2}), batches_of(images, {})}};
  for (const auto& split : splits) {
    TwoThreadSum sum;
    SegmentationModel rank0 = copy_of_start();
    SegmentationModel rank1 = copy_of_start();
    BatchNormReestimate done0, done1;
    std::thread other([&] {
      ThreadRank sync(sum, 1);
      done1 = reestimate_batch_norm(*rank1, Domain::kTarget, split.second, probe, &sync);
    });
    ThreadRank sync(sum, 0);
    done0 = reestimate_batch_norm(*rank0, Domain::kTarget, split.first, probe, &sync);
    other.join();
    EXPECT_EQ(done0.tiles, 10);
    EXPECT_EQ(done1.tiles, 10);
    const auto got1 = running_stats(*rank1);
    for (const auto& [name, value] : running_stats(*rank0)) {
      EXPECT_LE(relative_difference(value, expected.at(name)), 1e-5) << name;
      EXPECT_TRUE(at::equal(value, got1.at(name))) << name << ": the ranks disagree";
    }
  }
}

TEST(AdaBn, NoTilesAnywhereIsAnError) {
  SegmentationModel model = make_segmentation_model(kTinyPlain);
  EXPECT_THROW(reestimate_batch_norm(*model, Domain::kTarget, [](const Visit&) {}, at::zeros({1, 3, 32, 32}), nullptr),
               std::runtime_error);
}

}  // namespace
}  // namespace da::models
