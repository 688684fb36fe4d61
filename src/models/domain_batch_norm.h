// Domain-specific BatchNorm (DSBN, Chang et al. 2019): one BatchNorm2d per
// domain around shared convolutions.
//
// A DomainBatchNorm2d holds the source branch itself: its own weight, bias,
// running_mean, running_var and num_batches_tracked, under exactly the names a
// plain torch::nn::BatchNorm2d has, so smp / torchvision weights load 1:1.
// The target branch is a child torch::nn::BatchNorm2d named "target" (e.g.
// "encoder.bn1.target.weight"). Both start as BatchNorm2d does (weight 1,
// bias 0, mean 0, var 1, count 0).
//
// forward() uses the branch of the current domain (set_domain): in train mode
// it normalises with batch statistics and updates that branch's running stats
// only; in eval mode it uses that branch's running stats. Gradients reach that
// branch's weight and bias only. The source branch runs exactly the code of
// BatchNorm2d::forward (same numbers as a plain BatchNorm2d).
//
// Note for code that looks for BN layers with `as<torch::nn::BatchNorm2d>()`
// (initialisation, BN freezing, SyncBN): a DomainBatchNorm2d is not a
// BatchNorm2d (libtorch does not export what deriving from it needs); such a
// search finds only the "target" children. Match `as<DomainBatchNorm2d>()` too
// for the source branch (see resnet_encoder.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>

#include <ATen/core/Tensor.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/options/batchnorm.h>
#include <torch/nn/pimpl.h>

#include "models/sync_batch_norm.h"

namespace da::models {

// The domain a forward pass belongs to (selects the BN branch of a DSBN model).
enum class Domain { kSource, kTarget };

// "source" / "target".
const char* domain_name(Domain domain);

class DomainBatchNorm2dImpl : public torch::nn::Cloneable<DomainBatchNorm2dImpl> {
 public:
  // Default BatchNorm2d options (eps 1e-5, momentum 0.1, affine, running stats), for both branches.
  explicit DomainBatchNorm2dImpl(int64_t num_features);

  // [B, C, H, W] -> [B, C, H, W] with the branch of domain().
  at::Tensor forward(const at::Tensor& x);

  void set_domain(Domain domain) { domain_ = domain; }
  Domain domain() const { return domain_; }

  // The target branch (its parameters and buffers are "target.*").
  torch::nn::BatchNorm2d& target() { return target_; }

  // Copies the source weight, bias, running_mean, running_var and num_batches_tracked into the target branch.
  void copy_source_to_target();

  // Synchronise both branches' training statistics across ranks (nullptr: local).
  void set_sync(std::shared_ptr<ranks::RankSum> sync) { sync_ = std::move(sync); }

  // Registers both branches afresh (Cloneable).
  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  torch::nn::BatchNormOptions options;
  // The source branch.
  at::Tensor weight;
  at::Tensor bias;
  at::Tensor running_mean;
  at::Tensor running_var;
  at::Tensor num_batches_tracked;

 private:
  torch::nn::BatchNorm2d target_{nullptr};
  Domain domain_ = Domain::kSource;
  std::shared_ptr<ranks::RankSum> sync_;
};
TORCH_MODULE(DomainBatchNorm2d);

// A BatchNorm2d over `num_features` channels: a plain torch::nn::BatchNorm2d, or a DomainBatchNorm2d when
// `domain_specific`; inside a BatchNormSyncScope a SyncBatchNorm2d, or a DomainBatchNorm2d whose branches
// are synchronised. Register it with register_module(name, bn.ptr()); call it with forward_batch_norm(bn, x)
// (batch_norm_statistics.h; inside a Sequential: forward_sequential), so AdaBN's re-estimation reaches it.
torch::nn::AnyModule make_batch_norm(int64_t num_features, bool domain_specific);

// While alive (on this thread), make_batch_norm builds batch norms synchronised through `sync` (nullptr:
// plain ones). The model constructor opens one for ModelSpec::batch_stats_sync, so the synchronisation
// choice reaches every BatchNorm without threading it through each block's constructor.
class BatchNormSyncScope {
 public:
  explicit BatchNormSyncScope(std::shared_ptr<ranks::RankSum> sync);
  ~BatchNormSyncScope();
  BatchNormSyncScope(const BatchNormSyncScope&) = delete;
  BatchNormSyncScope& operator=(const BatchNormSyncScope&) = delete;

 private:
  std::shared_ptr<ranks::RankSum> previous_;
};

// Whether `module` is one of the batch norms above (for freezing or inspecting them).
bool is_batch_norm(torch::nn::Module& module);

// BN initialisation of smp / torchvision (weight 1, bias 0) for every BatchNorm2d, SyncBatchNorm2d and both
// branches of every DomainBatchNorm2d in `module` (itself excluded).
void init_batch_norms(torch::nn::Module& module);

// Calls set_domain on every DomainBatchNorm2d in `module` (itself included); returns how many there are.
size_t set_bn_domain(torch::nn::Module& module, Domain domain);

// copy_source_to_target on every DomainBatchNorm2d in `module` (itself included); returns how many there are.
size_t copy_source_bn_to_target_in(torch::nn::Module& module);

}  // namespace da::models
