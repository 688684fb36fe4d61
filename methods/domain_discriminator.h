// Domain discriminators: predict from a feature map whether it came from the
// target domain (logit > 0) or the source domain.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace da::methods {

// `pooled`: global average pool, Linear(in, hidden), ReLU, Linear(hidden, 1)
//   (the source documents' DANN discriminator): one logit per image.
// `pixel`: a fully-convolutional variant, 1x1 convolutions in -> hidden ->
//   hidden -> 1 with LeakyReLU(0.2): one logit per feature-map position.
class DomainDiscriminatorImpl : public torch::nn::Module {
 public:
  DomainDiscriminatorImpl(std::int64_t in_channels, std::int64_t hidden, bool per_pixel);

  // [B,C,H,W] -> logits, flattened: [B] (pooled) or [B*H*W] (pixel).
  torch::Tensor forward(const torch::Tensor& features);

  bool per_pixel() const { return per_pixel_; }

 private:
  bool per_pixel_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
};
TORCH_MODULE(DomainDiscriminator);

}  // namespace da::methods
