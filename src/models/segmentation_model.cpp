#include "models/segmentation_model.h"

#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>
#include <torch/utils.h>

namespace da::models {
namespace {

constexpr int64_t kOutputStride = 32;

std::string shape_string(const at::Tensor& x) {
  std::string out = "[";
  for (int64_t i = 0; i < x.dim(); ++i) out += (i ? ", " : "") + std::to_string(x.size(i));
  return out + "]";
}

}  // namespace

SegmentationModelImpl::SegmentationModelImpl(const ModelSpec& spec) : spec_(spec) {
  const BatchNormSyncScope sync_scope(spec.batch_stats_sync);  // every BatchNorm built below
  const UnetArchitecture arch = unet_architecture(spec);
  encoder_ = register_module("encoder", ResNetEncoder(arch.encoder));
  const EncoderChannels& ch = encoder_->channels();
  // Skips for the blocks, deepest first; the last block has none.
  const std::vector<int64_t> skip_channels = {ch.layer3, ch.layer2, ch.layer1, ch.stem, 0};
  decoder_ = register_module("decoder", UnetDecoder(ch.layer4, skip_channels, arch.decoder_channels,
                                                    spec.domain_specific_bn));
  auto head = torch::nn::Conv2d(torch::nn::Conv2dOptions(arch.decoder_channels.back(), spec.classes, 3).padding(1));
  {
    // smp's initialize_head: Xavier-uniform weight, zero bias.
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(head->weight);
    torch::nn::init::zeros_(head->bias);
  }
  segmentation_head_ = register_module("segmentation_head", torch::nn::Sequential(head));

  feature_names_ = {"encoder", "encoder.layer1", "encoder.layer2", "encoder.layer3", "encoder.layer4"};
  feature_channels_ = {{"encoder", ch.layer4},
                       {"encoder.layer1", ch.layer1},
                       {"encoder.layer2", ch.layer2},
                       {"encoder.layer3", ch.layer3},
                       {"encoder.layer4", ch.layer4}};
  for (size_t i = 0; i < decoder_->num_blocks(); ++i) {
    const std::string name = "decoder.blocks." + std::to_string(i);
    feature_names_.push_back(name);
    feature_channels_[name] = decoder_->block_channels(i);
  }
  for (auto& module : modules(/*include_self=*/false)) {
    if (module->as<DomainBatchNorm2d>()) domain_bns_.emplace_back(std::dynamic_pointer_cast<DomainBatchNorm2dImpl>(module));
  }
}

void SegmentationModelImpl::set_domain(Domain domain) {
  domain_ = domain;
  for (auto& bn : domain_bns_) bn->set_domain(domain);
}

void SegmentationModelImpl::check_feature_name(const std::string& name) const {
  if (feature_channels_.count(name)) return;
  std::string valid;
  for (const auto& n : feature_names_) valid += (valid.empty() ? "" : ", ") + n;
  throw std::invalid_argument("model: unknown feature '" + name + "'; valid: " + valid);
}

int64_t SegmentationModelImpl::feature_channels(const std::string& name) const {
  check_feature_name(name);
  return feature_channels_.at(name);
}

SegmentationOutput SegmentationModelImpl::forward(const at::Tensor& x, const std::vector<std::string>& feature_names) {
  for (const auto& name : feature_names) check_feature_name(name);
  if (x.dim() != 4 || x.size(1) != spec_.in_channels || x.size(2) % kOutputStride != 0 ||
      x.size(3) % kOutputStride != 0) {
    throw std::invalid_argument("model: input must be [B, " + std::to_string(spec_.in_channels) +
                                ", H, W] with H and W multiples of 32, got " + shape_string(x));
  }
  const EncoderFeatures f = encoder_->forward(x);
  const std::vector<at::Tensor> blocks = decoder_->forward(f.layer4, {f.layer3, f.layer2, f.layer1, f.stem, {}});

  SegmentationOutput out;
  out.logits = segmentation_head_->forward(blocks.back());
  for (const auto& name : feature_names) {
    if (name == "encoder" || name == "encoder.layer4") {
      out.features[name] = f.layer4;
    } else if (name == "encoder.layer1") {
      out.features[name] = f.layer1;
    } else if (name == "encoder.layer2") {
      out.features[name] = f.layer2;
    } else if (name == "encoder.layer3") {
      out.features[name] = f.layer3;
    } else {
      out.features[name] = blocks.at(std::stoul(name.substr(std::string("decoder.blocks.").size())));
    }
  }
  return out;
}

SegmentationModel make_segmentation_model(const ModelSpec& spec) { return SegmentationModel(spec); }

void copy_source_bn_to_target(SegmentationModelImpl& model) { copy_source_bn_to_target_in(model); }

}  // namespace da::models
