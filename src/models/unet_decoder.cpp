#include "models/unet_decoder.h"

#include "models/batch_norm_statistics.h"
#include "models/domain_batch_norm.h"

#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/utils.h>

namespace da::models {
namespace {

// smp's Conv2dReLU with batch norm: conv (no bias), BN, ReLU as indices 0, 1, 2.
torch::nn::Sequential conv_bn_relu(int64_t in, int64_t out, bool domain_specific_bn) {
  torch::nn::Sequential seq(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
  seq->push_back(make_batch_norm(out, domain_specific_bn));
  seq->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
  return seq;
}

}  // namespace

DecoderBlockImpl::DecoderBlockImpl(int64_t in_channels, int64_t skip_channels, int64_t out_channels,
                                   bool domain_specific_bn)
    : conv1_(register_module("conv1", conv_bn_relu(in_channels + skip_channels, out_channels, domain_specific_bn))),
      conv2_(register_module("conv2", conv_bn_relu(out_channels, out_channels, domain_specific_bn))) {}

at::Tensor DecoderBlockImpl::forward(const at::Tensor& x, const at::Tensor& skip) {
  // By scale factor, not output size: the same pixels for factor 2, and a traced
  // graph (da_dist export) then records the factor instead of this input's size.
  const std::vector<double> factor2{2.0, 2.0};
  at::Tensor out = at::upsample_nearest2d(x, c10::nullopt, factor2);
  if (skip.defined()) out = at::cat({out, skip}, 1);
  return forward_sequential(conv2_, forward_sequential(conv1_, out));
}

UnetDecoderImpl::UnetDecoderImpl(int64_t head_channels, const std::vector<int64_t>& skip_channels,
                                 const std::vector<int64_t>& decoder_channels, bool domain_specific_bn)
    : decoder_channels_(decoder_channels) {
  if (skip_channels.size() != decoder_channels.size() || decoder_channels.empty()) {
    throw std::invalid_argument("UnetDecoder: need one skip channel count per decoder block, got " +
                                std::to_string(skip_channels.size()) + " for " +
                                std::to_string(decoder_channels.size()) + " blocks");
  }
  module_list_ = register_module("blocks", torch::nn::ModuleList());
  int64_t in_channels = head_channels;
  for (size_t i = 0; i < decoder_channels.size(); ++i) {
    blocks_.push_back(DecoderBlock(in_channels, skip_channels[i], decoder_channels[i], domain_specific_bn));
    module_list_->push_back(blocks_.back());
    in_channels = decoder_channels[i];
  }
  // smp's initialize_decoder: He-uniform (fan_in) convolutions, BN scale 1 and shift 0 (both branches of a
  // DomainBatchNorm2d).
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* c = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_uniform_(c->weight, 0.0, torch::kFanIn, torch::kReLU);
    }
  }
  init_batch_norms(*this);
}

std::vector<at::Tensor> UnetDecoderImpl::forward(const at::Tensor& head, const std::vector<at::Tensor>& skips) {
  if (skips.size() != blocks_.size()) {
    throw std::invalid_argument("UnetDecoder: expected " + std::to_string(blocks_.size()) + " skip tensors, got " +
                                std::to_string(skips.size()));
  }
  std::vector<at::Tensor> outputs;
  outputs.reserve(blocks_.size());
  at::Tensor x = head;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    x = blocks_[i]->forward(x, skips[i]);
    outputs.push_back(x);
  }
  return outputs;
}

}  // namespace da::models
