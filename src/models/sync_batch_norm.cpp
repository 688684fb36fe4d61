#include "models/sync_batch_norm.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/batchnorm.h>
#include <torch/utils.h>

#include <stdexcept>
#include <string>

namespace da::models {

at::Tensor sync_batch_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           at::Tensor& running_mean, at::Tensor& running_var, at::Tensor& num_batches_tracked,
                           bool training, double momentum, double eps, ranks::RankSum& sync) {
  if (x.dim() != 4) throw std::invalid_argument("SyncBatchNorm: expected 4D input, got " + std::to_string(x.dim()) + "D");
  if (!training) {
    return torch::nn::functional::detail::batch_norm(x, running_mean, running_var, weight, bias, false, momentum, eps);
  }
  const int64_t channels = x.size(1);
  // The global count stays on x's device: reading it on the host would make
  // every BatchNorm layer wait for the GPU (and the ranks' counts can differ,
  // e.g. a last short batch). Statistics in at least float32: under
  // autocast x is bf16/fp16, whose sums over a batch would lose the mean.
  const at::ScalarType stats = at::isReducedFloatingType(x.scalar_type()) ? at::kFloat : x.scalar_type();
  at::Tensor count = at::full({1}, static_cast<double>(x.numel() / channels),
                              at::TensorOptions().dtype(at::kDouble).device(x.device()));
  sync.all_reduce_sum(count);
  const at::Tensor n = count.to(stats);
  // Two passes (mean, then squared deviations), each summed over the ranks
  // with gradient: E[x^2] - E[x]^2 in float32 loses the variance to
  // cancellation when a channel's mean is large against its spread.
  const at::Tensor mean = ranks::all_reduce_sum(x.sum({0, 2, 3}, false, stats), sync) / n;
  const at::Tensor centred = x - mean.view({1, channels, 1, 1});
  const at::Tensor var = ranks::all_reduce_sum((centred * centred).sum({0, 2, 3}), sync) / n;
  {
    torch::NoGradGuard no_grad;
    running_mean.mul_(1 - momentum).add_(mean.detach(), momentum);
    // Unbiased for the running estimate: n / (n - 1), n = 1 left as is.
    running_var.mul_(1 - momentum).add_(var.detach() * (n / (n - 1).clamp_min(1.0)), momentum);
    num_batches_tracked.add_(1);
  }
  const at::Tensor scale = weight * at::rsqrt(var + eps);
  return centred * scale.view({1, channels, 1, 1}) + bias.view({1, channels, 1, 1});
}

SyncBatchNorm2dImpl::SyncBatchNorm2dImpl(int64_t num_features, std::shared_ptr<ranks::RankSum> sync)
    : options(num_features), sync_(std::move(sync)) {
  reset();
}

void SyncBatchNorm2dImpl::reset() {
  weight = register_parameter("weight", torch::ones({options.num_features()}));
  bias = register_parameter("bias", torch::zeros({options.num_features()}));
  running_mean = register_buffer("running_mean", torch::zeros({options.num_features()}));
  running_var = register_buffer("running_var", torch::ones({options.num_features()}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::dtype(torch::kLong)));
}

at::Tensor SyncBatchNorm2dImpl::forward(const at::Tensor& x) {
  return sync_batch_norm(x, weight, bias, running_mean, running_var, num_batches_tracked, is_training(),
                         options.momentum().value_or(0.1), options.eps(), *sync_);
}

void SyncBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "da::models::SyncBatchNorm2d(" << options.num_features() << ", eps=" << options.eps() << ")";
}

}  // namespace da::models
