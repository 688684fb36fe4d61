// U-Net segmentation model (segmentation_models_pytorch's `Unet` layout:
// encoder, decoder, segmentation_head) whose forward returns the logits and
// the intermediate features asked for by name.
//
// Feature names: "encoder" (the bottleneck, = layer4 output),
// "encoder.layer1".."encoder.layer4", "decoder.blocks.0".."decoder.blocks.4".
//
// Domain-specific BatchNorm (ModelSpec::domain_specific_bn, see
// models/domain_batch_norm.h):
// - false (default): every BN is a plain torch::nn::BatchNorm2d; the model is
//   exactly smp's Unet. set_domain() only records the domain.
// - true: every BN is a DomainBatchNorm2d. Its source branch keeps the plain
//   names ("encoder.bn1.weight", "encoder.bn1.running_mean", ...), so smp /
//   torchvision weights load 1:1; its target branch is the child "target"
//   ("encoder.bn1.target.weight", ..., "encoder.bn1.target.num_batches_tracked").
//   Both branches start equal. Convolutions and the head are shared.
//   set_domain(d) selects the branch every BN uses for the following forwards
//   (default Domain::kSource):
//     train mode: batch statistics; only branch d's running stats are updated
//                 and only branch d's weight/bias receive gradients;
//     eval mode:  branch d's running stats.
//   So a step does set_domain(kSource) + forward(source batch), then
//   set_domain(kTarget) + forward(target batch); evaluate target data with
//   set_domain(kTarget) in eval mode.
//   Warm start from a plain (non-DSBN) checkpoint: either load it with
//   LoadOptions::dsbn_target_from_source = true (weights.h), which accepts the
//   missing ".target." entries and fills them from the source branch, or load
//   non-strict and call copy_source_bn_to_target(model) afterwards.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include "models/domain_batch_norm.h"
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

  // Selects the BN branch of every DomainBatchNorm2d for the following forwards (see the note above); with
  // domain_specific_bn false it only records `domain`.
  void set_domain(Domain domain);
  Domain domain() const { return domain_; }
  bool domain_specific_bn() const { return spec_.domain_specific_bn; }

 private:
  // Throws std::invalid_argument unless `name` is a feature name.
  void check_feature_name(const std::string& name) const;

  ModelSpec spec_;
  std::vector<std::string> feature_names_;
  std::map<std::string, int64_t> feature_channels_;
  ResNetEncoder encoder_{nullptr};
  UnetDecoder decoder_{nullptr};
  torch::nn::Sequential segmentation_head_{nullptr};
  std::vector<DomainBatchNorm2d> domain_bns_;  // every DSBN layer (empty without domain_specific_bn)
  Domain domain_ = Domain::kSource;
};
TORCH_MODULE(SegmentationModel);

// Builds the model for `spec`; throws std::invalid_argument for an unknown encoder (listing the valid ones).
SegmentationModel make_segmentation_model(const ModelSpec& spec);

// Copies the source branch (weight, bias, running stats, num_batches_tracked) of every DomainBatchNorm2d of
// `model` into its target branch, e.g. after loading a plain (non-DSBN) checkpoint non-strictly. No-op for a
// model without domain_specific_bn.
void copy_source_bn_to_target(SegmentationModelImpl& model);

}  // namespace da::models
