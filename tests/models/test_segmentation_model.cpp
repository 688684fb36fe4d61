// The U-Net of src/models: parameter names, shapes and counts against
// segmentation_models_pytorch's layout (reference from
// make_model_reference.py), output and feature shapes, requested feature
// taps, and the errors for unknown encoders, feature names and bad inputs.
#include <algorithm>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "models/segmentation_model.h"
#include "support/process.h"

namespace da::models {
namespace {

using ::da::test::read_text;
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

}  // namespace
}  // namespace da::models
