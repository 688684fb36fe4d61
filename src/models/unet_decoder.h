// U-Net decoder of segmentation_models_pytorch (`UnetDecoder`, center=False,
// no attention): each block upsamples x2 (nearest), concatenates the skip
// feature when there is one, then applies conv3x3-BN-ReLU twice. Parameter
// names follow smp: blocks.N.conv1.0 (conv, no bias), blocks.N.conv1.1 (BN),
// blocks.N.conv2.0, blocks.N.conv2.1. With domain_specific_bn the BNs are
// DomainBatchNorm2d (models/domain_batch_norm.h): the target branch adds
// blocks.N.conv1.1.target.* and blocks.N.conv2.1.target.*.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

namespace da::models {

class DecoderBlockImpl : public torch::nn::Module {
 public:
  DecoderBlockImpl(int64_t in_channels, int64_t skip_channels, int64_t out_channels, bool domain_specific_bn = false);
  // `skip` may be undefined (the last block has none).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& skip);

 private:
  torch::nn::Sequential conv1_{nullptr};
  torch::nn::Sequential conv2_{nullptr};
};
TORCH_MODULE(DecoderBlock);

class UnetDecoderImpl : public torch::nn::Module {
 public:
  // `head_channels`: channels of the deepest encoder feature (the decoder input);
  // `skip_channels`: channels of the skip feature for each block, deepest first (0: no skip);
  // `decoder_channels`: output channels of each block. Both lists have one entry per block.
  // `domain_specific_bn`: DomainBatchNorm2d instead of BatchNorm2d.
  UnetDecoderImpl(int64_t head_channels, const std::vector<int64_t>& skip_channels,
                  const std::vector<int64_t>& decoder_channels, bool domain_specific_bn = false);

  // Runs every block; `skips` holds one tensor per block (undefined for none).
  // Returns the output of each block, first block first.
  std::vector<at::Tensor> forward(const at::Tensor& head, const std::vector<at::Tensor>& skips);

  size_t num_blocks() const { return blocks_.size(); }
  int64_t block_channels(size_t index) const { return decoder_channels_.at(index); }

 private:
  std::vector<int64_t> decoder_channels_;
  torch::nn::ModuleList module_list_{nullptr};  // registered as "blocks"
  std::vector<DecoderBlock> blocks_;
};
TORCH_MODULE(UnetDecoder);

}  // namespace da::models
