// Tests of src/models: the U-Net's parameter names and counts against
// segmentation_models_pytorch's layout (reference from
// make_model_reference.py), output and feature shapes, and loading weights
// saved by Python.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "models/segmentation_model.h"
#include "models/weights.h"
#include "support/process.h"

namespace da::models {
namespace {

using ::da::test::make_temp_dir;
using ::da::test::read_text;
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

TEST(Weights, MissingFileIsAnError) { EXPECT_THROW(read_state_dict("/nonexistent/weights.pt"), std::runtime_error); }

// A Python interpreter with torch and torchvision ("" when there is none).
std::string find_python() {
  for (const std::string candidate : {"python3", "/usr/bin/python3"}) {
    if (run_process(candidate, {"-c", "import torch, torchvision"}, {}, 60).exit_code == 0) return candidate;
  }
  return "";
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
    if (python_.empty()) GTEST_SKIP() << "no python3 with torch and torchvision (apt-get install python3-torchvision)";
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
