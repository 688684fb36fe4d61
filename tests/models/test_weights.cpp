// Loading weights into the U-Net: strict and lenient loads name missing,
// unexpected and mismatched entries; weights saved by Python (converted by
// tools/convert_state_dict.py) reproduce Python's logits, for the whole
// U-Net and for a torchvision encoder alone.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "models/model_fixture.h"
#include "models/segmentation_model.h"
#include "models/weights.h"
#include "support/process.h"

namespace da::models {
namespace {

using ::da::test::make_temp_dir;
using ::da::test::python_path;
using ::da::test::read_text;
using ::da::test::run_process;
using ::da::test::source_path;
using ::da::test::state_of;

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
