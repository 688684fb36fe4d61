// Synchronised BatchNorm: in training, the batch statistics of every
// BatchNorm layer are the mean and variance over the batches of all ranks
// (like torch.nn.SyncBatchNorm), so N ranks with batch b normalise exactly as
// one process with batch N*b. The models know nothing of communicators: the
// set-up passes a ranks::RankSum that sums tensors over the ranks.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/options/batchnorm.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <ostream>

#include "ranks/rank_sum.h"

namespace da::models {

// Batch norm of x [N,C,H,W]. Training: per-channel mean and (biased)
// variance over all ranks' pixels, differentiable (the backward sums the
// statistics' gradients over the ranks too), running statistics updated with
// the unbiased variance and `momentum`. Eval: the running statistics.
at::Tensor sync_batch_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           at::Tensor& running_mean, at::Tensor& running_var, at::Tensor& num_batches_tracked,
                           bool training, double momentum, double eps, ranks::RankSum& sync);

// A BatchNorm2d (same parameter and buffer names) whose training statistics
// are synchronised through `sync`.
class SyncBatchNorm2dImpl : public torch::nn::Cloneable<SyncBatchNorm2dImpl> {
 public:
  SyncBatchNorm2dImpl(int64_t num_features, std::shared_ptr<ranks::RankSum> sync);
  at::Tensor forward(const at::Tensor& x);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  torch::nn::BatchNormOptions options;
  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  std::shared_ptr<ranks::RankSum> sync_;
};
TORCH_MODULE(SyncBatchNorm2d);

}  // namespace da::models
