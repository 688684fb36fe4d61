#include "methods/domain_discriminator.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>

namespace da::methods {
namespace F = torch::nn::functional;

DomainDiscriminatorImpl::DomainDiscriminatorImpl(std::int64_t in_channels, std::int64_t hidden, bool per_pixel)
    : per_pixel_(per_pixel) {
  if (per_pixel) {
    conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, hidden, 1)));
    conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, hidden, 1)));
    conv3_ = register_module("conv3", torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, 1, 1)));
  } else {
    fc1_ = register_module("fc1", torch::nn::Linear(in_channels, hidden));
    fc2_ = register_module("fc2", torch::nn::Linear(hidden, 1));
  }
}

torch::Tensor DomainDiscriminatorImpl::forward(const torch::Tensor& features) {
  if (per_pixel_) {
    auto x = F::leaky_relu(conv1_(features), F::LeakyReLUFuncOptions().negative_slope(0.2));
    x = F::leaky_relu(conv2_(x), F::LeakyReLUFuncOptions().negative_slope(0.2));
    return conv3_(x).reshape({-1});
  }
  auto x = F::adaptive_avg_pool2d(features, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
  return fc2_(torch::relu(fc1_(x))).reshape({-1});
}

}  // namespace da::methods
