// ResNet encoder for the U-Net: torchvision's ResNet (v1.5, stride in the 3x3
// convolution of a Bottleneck) without avgpool and fc, with torchvision's
// parameter names (conv1, bn1, layer1..layer4, downsample.0/.1) so that
// torchvision and segmentation_models_pytorch weights load by name.
//
// With domain_specific_bn every BatchNorm2d is a DomainBatchNorm2d (see
// models/domain_batch_norm.h): same names for the source branch, plus
// "<bn>.target.*" for the target branch.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

namespace da::models {

enum class BlockKind { kBasic, kBottleneck };

struct ResNetEncoderOptions {
  BlockKind block = BlockKind::kBasic;
  std::vector<int64_t> blocks_per_layer = {2, 2, 2, 2};  // resnet18
  // Planes of layer1..layer4; the stem has planes[0] channels (64 in torchvision).
  std::vector<int64_t> planes = {64, 128, 256, 512};
  int64_t in_channels = 3;
  // Every BN layer a DomainBatchNorm2d (source + target branch) instead of a BatchNorm2d.
  bool domain_specific_bn = false;
};

// Outputs of the stages the decoder uses, shallowest first.
struct EncoderFeatures {
  at::Tensor stem;    // relu(bn1(conv1(x))), stride 2
  at::Tensor layer1;  // stride 4
  at::Tensor layer2;  // stride 8
  at::Tensor layer3;  // stride 16
  at::Tensor layer4;  // stride 32, the bottleneck
};

// Channels of each EncoderFeatures field.
struct EncoderChannels {
  int64_t stem = 0;
  int64_t layer1 = 0;
  int64_t layer2 = 0;
  int64_t layer3 = 0;
  int64_t layer4 = 0;
};

class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, bool domain_specific_bn = false);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::AnyModule bn1_;  // BatchNorm2d or DomainBatchNorm2d
  torch::nn::Conv2d conv2_{nullptr};
  torch::nn::AnyModule bn2_;  // BatchNorm2d or DomainBatchNorm2d
  torch::nn::Sequential downsample_{nullptr};  // registered only when the shape changes
};
TORCH_MODULE(BasicBlock);

class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride, bool domain_specific_bn = false);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::AnyModule bn1_;  // BatchNorm2d or DomainBatchNorm2d
  torch::nn::Conv2d conv2_{nullptr};
  torch::nn::AnyModule bn2_;  // BatchNorm2d or DomainBatchNorm2d
  torch::nn::Conv2d conv3_{nullptr};
  torch::nn::AnyModule bn3_;  // BatchNorm2d or DomainBatchNorm2d
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetEncoderImpl : public torch::nn::Module {
 public:
  explicit ResNetEncoderImpl(const ResNetEncoderOptions& options);
  EncoderFeatures forward(const at::Tensor& x);
  const EncoderChannels& channels() const { return channels_; }

 private:
  torch::nn::Sequential make_layer(int64_t planes, int64_t blocks, int64_t stride);
  void reset_parameters();

  ResNetEncoderOptions options_;
  EncoderChannels channels_;
  int64_t in_planes_ = 0;  // channels entering the next layer while building
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::AnyModule bn1_;  // BatchNorm2d or DomainBatchNorm2d
  torch::nn::Sequential layer1_{nullptr};
  torch::nn::Sequential layer2_{nullptr};
  torch::nn::Sequential layer3_{nullptr};
  torch::nn::Sequential layer4_{nullptr};
};
TORCH_MODULE(ResNetEncoder);

}  // namespace da::models
