// U-Net segmentation model (segmentation_models_pytorch's `Unet` layout:
// encoder, decoder, segmentation_head) whose forward returns the logits and
// the intermediate features asked for by name.
//
// Feature names: "encoder" (the bottleneck, = layer4 output),
// "encoder.layer1".."encoder.layer4", "decoder.blocks.0".."decoder.blocks.4".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include "models/model_spec.h"
#include "models/resnet_encoder.h"
#include "models/unet_decoder.h"

namespace da::models {

struct SegmentationOutput {
  at::Tensor logits;                           // [B, classes, H, W]
  std::map<std::string, at::Tensor> features;  // exactly the requested names
};

class SegmentationModelImpl : public torch::nn::Module {
 public:
  explicit SegmentationModelImpl(const ModelSpec& spec);

  // `x`: [B, in_channels, H, W] with H and W multiples of 32. Throws std::invalid_argument for an unknown
  // feature name (listing the valid ones) or a badly shaped input.
  SegmentationOutput forward(const at::Tensor& x, const std::vector<std::string>& feature_names = {});

  // Every valid feature name, encoder first, shallow to deep, then the decoder blocks.
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  // Channels of a named feature; throws std::invalid_argument for an unknown name.
  int64_t feature_channels(const std::string& name) const;
  const ModelSpec& spec() const { return spec_; }

 private:
  // Throws std::invalid_argument unless `name` is a feature name.
  void check_feature_name(const std::string& name) const;

  ModelSpec spec_;
  std::vector<std::string> feature_names_;
  std::map<std::string, int64_t> feature_channels_;
  ResNetEncoder encoder_{nullptr};
  UnetDecoder decoder_{nullptr};
  torch::nn::Sequential segmentation_head_{nullptr};
};
TORCH_MODULE(SegmentationModel);

// Builds the model for `spec`; throws std::invalid_argument for an unknown encoder (listing the valid ones).
SegmentationModel make_segmentation_model(const ModelSpec& spec);

}  // namespace da::models
