#include "models/resnet_encoder.h"

#include "models/batch_norm_statistics.h"
#include "models/domain_batch_norm.h"

#include <stdexcept>
#include <string>

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/utils.h>

namespace da::models {
namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

// 1x1 convolution + BN when a block changes the shape of its input.
torch::nn::Sequential make_downsample(int64_t in, int64_t out, int64_t stride, bool domain_specific_bn) {
  if (stride == 1 && in == out) return nullptr;
  torch::nn::Sequential downsample(conv(in, out, 1, stride));
  downsample->push_back(make_batch_norm(out, domain_specific_bn));
  return downsample;
}

// Registers `bn` under `name` in `module` and returns it.
torch::nn::AnyModule register_bn(torch::nn::Module& module, const std::string& name, torch::nn::AnyModule bn) {
  module.register_module(name, bn.ptr());
  return bn;
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, bool domain_specific_bn)
    : conv1_(register_module("conv1", conv(in_planes, planes, 3, stride))),
      bn1_(register_bn(*this, "bn1", make_batch_norm(planes, domain_specific_bn))),
      conv2_(register_module("conv2", conv(planes, planes, 3, 1))),
      bn2_(register_bn(*this, "bn2", make_batch_norm(planes, domain_specific_bn))) {
  auto downsample = make_downsample(in_planes, planes * kExpansion, stride, domain_specific_bn);
  if (downsample) downsample_ = register_module("downsample", downsample);
}

at::Tensor BasicBlockImpl::forward(const at::Tensor& x) {
  at::Tensor out = at::relu(forward_batch_norm(bn1_, conv1_(x)));
  out = forward_batch_norm(bn2_, conv2_(out));
  out += downsample_ ? forward_sequential(downsample_, x) : x;
  return at::relu(out);
}

BottleneckImpl::BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride, bool domain_specific_bn)
    : conv1_(register_module("conv1", conv(in_planes, planes, 1, 1))),
      bn1_(register_bn(*this, "bn1", make_batch_norm(planes, domain_specific_bn))),
      conv2_(register_module("conv2", conv(planes, planes, 3, stride))),
      bn2_(register_bn(*this, "bn2", make_batch_norm(planes, domain_specific_bn))),
      conv3_(register_module("conv3", conv(planes, planes * kExpansion, 1, 1))),
      bn3_(register_bn(*this, "bn3", make_batch_norm(planes * kExpansion, domain_specific_bn))) {
  auto downsample = make_downsample(in_planes, planes * kExpansion, stride, domain_specific_bn);
  if (downsample) downsample_ = register_module("downsample", downsample);
}

at::Tensor BottleneckImpl::forward(const at::Tensor& x) {
  at::Tensor out = at::relu(forward_batch_norm(bn1_, conv1_(x)));
  out = at::relu(forward_batch_norm(bn2_, conv2_(out)));
  out = forward_batch_norm(bn3_, conv3_(out));
  out += downsample_ ? forward_sequential(downsample_, x) : x;
  return at::relu(out);
}

ResNetEncoderImpl::ResNetEncoderImpl(const ResNetEncoderOptions& options) : options_(options) {
  if (options_.blocks_per_layer.size() != 4 || options_.planes.size() != 4) {
    throw std::invalid_argument("ResNetEncoder: blocks_per_layer and planes need 4 entries (layer1..layer4)");
  }
  if (options_.in_channels < 1) {
    throw std::invalid_argument("ResNetEncoder: in_channels must be >= 1, got " + std::to_string(options_.in_channels));
  }
  in_planes_ = options_.planes[0];
  conv1_ = register_module("conv1", conv(options_.in_channels, in_planes_, 7, 2));
  bn1_ = register_bn(*this, "bn1", make_batch_norm(in_planes_, options_.domain_specific_bn));
  channels_.stem = in_planes_;
  layer1_ = register_module("layer1", make_layer(options_.planes[0], options_.blocks_per_layer[0], 1));
  channels_.layer1 = in_planes_;
  layer2_ = register_module("layer2", make_layer(options_.planes[1], options_.blocks_per_layer[1], 2));
  channels_.layer2 = in_planes_;
  layer3_ = register_module("layer3", make_layer(options_.planes[2], options_.blocks_per_layer[2], 2));
  channels_.layer3 = in_planes_;
  layer4_ = register_module("layer4", make_layer(options_.planes[3], options_.blocks_per_layer[3], 2));
  channels_.layer4 = in_planes_;
  reset_parameters();
}

torch::nn::Sequential ResNetEncoderImpl::make_layer(int64_t planes, int64_t blocks, int64_t stride) {
  torch::nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t block_stride = i == 0 ? stride : 1;
    if (options_.block == BlockKind::kBasic) {
      layer->push_back(BasicBlock(in_planes_, planes, block_stride, options_.domain_specific_bn));
      in_planes_ = planes * BasicBlockImpl::kExpansion;
    } else {
      layer->push_back(Bottleneck(in_planes_, planes, block_stride, options_.domain_specific_bn));
      in_planes_ = planes * BottleneckImpl::kExpansion;
    }
  }
  return layer;
}

// torchvision's initialisation: He-normal (fan_out) convolutions, BN scale 1 and shift 0 (both
// branches of a DomainBatchNorm2d).
void ResNetEncoderImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* c = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    }
  }
  init_batch_norms(*this);
}

EncoderFeatures ResNetEncoderImpl::forward(const at::Tensor& x) {
  EncoderFeatures f;
  f.stem = at::relu(forward_batch_norm(bn1_, conv1_(x)));
  f.layer1 = layer1_->forward(at::max_pool2d(f.stem, {3, 3}, {2, 2}, {1, 1}));
  f.layer2 = layer2_->forward(f.layer1);
  f.layer3 = layer3_->forward(f.layer2);
  f.layer4 = layer4_->forward(f.layer3);
  return f;
}

}  // namespace da::models
