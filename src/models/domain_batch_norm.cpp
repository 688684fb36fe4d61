#include "models/domain_batch_norm.h"

#include <stdexcept>
#include <string>

#include <ATen/ATen.h>
#include <torch/nn/functional/batchnorm.h>
#include <torch/nn/init.h>
#include <torch/utils.h>

namespace da::models {
namespace {

// Calls `fn` on `module` if it is a DomainBatchNorm2d and on every such descendant; returns how many.
template <typename Fn>
size_t for_each_domain_bn(torch::nn::Module& module, Fn&& fn) {
  size_t n = 0;
  if (auto* self = module.as<DomainBatchNorm2d>()) {
    fn(*self);
    ++n;
  }
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* bn = m->as<DomainBatchNorm2d>()) {
      fn(*bn);
      ++n;
    }
  }
  return n;
}

thread_local std::shared_ptr<ranks::RankSum> t_sync;  // the innermost BatchNormSyncScope's

}  // namespace

BatchNormSyncScope::BatchNormSyncScope(std::shared_ptr<ranks::RankSum> sync) : previous_(std::move(t_sync)) {
  t_sync = std::move(sync);
}

BatchNormSyncScope::~BatchNormSyncScope() { t_sync = std::move(previous_); }

const char* domain_name(Domain domain) { return domain == Domain::kSource ? "source" : "target"; }

DomainBatchNorm2dImpl::DomainBatchNorm2dImpl(int64_t num_features) : options(num_features) { reset(); }

void DomainBatchNorm2dImpl::reset() {
  // As BatchNorm2d (NormImplBase::reset + reset_parameters) with the default options.
  weight = register_parameter("weight", torch::ones({options.num_features()}));
  bias = register_parameter("bias", torch::zeros({options.num_features()}));
  running_mean = register_buffer("running_mean", torch::zeros({options.num_features()}));
  running_var = register_buffer("running_var", torch::ones({options.num_features()}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::dtype(torch::kLong)));
  target_ = register_module("target", torch::nn::BatchNorm2d(options));
  copy_source_to_target();
}

at::Tensor DomainBatchNorm2dImpl::forward(const at::Tensor& x) {
  const double momentum = options.momentum().value_or(0.1);
  if (sync_) {
    if (domain_ == Domain::kTarget) {
      return sync_batch_norm(x, target_->weight, target_->bias, target_->running_mean, target_->running_var,
                             target_->num_batches_tracked, is_training(), momentum, options.eps(), *sync_);
    }
    return sync_batch_norm(x, weight, bias, running_mean, running_var, num_batches_tracked, is_training(), momentum,
                           options.eps(), *sync_);
  }
  if (domain_ == Domain::kTarget) return target_->forward(x);
  // BatchNormImplBase::forward with momentum 0.1 and running stats.
  if (x.dim() != 4) {
    throw std::invalid_argument("DomainBatchNorm2d: expected 4D input, got " + std::to_string(x.dim()) + "D");
  }
  if (is_training()) num_batches_tracked += 1;
  return torch::nn::functional::detail::batch_norm(x, running_mean, running_var, weight, bias, is_training(),
                                                   momentum, options.eps());
}

void DomainBatchNorm2dImpl::copy_source_to_target() {
  torch::NoGradGuard no_grad;
  target_->weight.copy_(weight);
  target_->bias.copy_(bias);
  target_->running_mean.copy_(running_mean);
  target_->running_var.copy_(running_var);
  target_->num_batches_tracked.copy_(num_batches_tracked);
}

void DomainBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "da::models::DomainBatchNorm2d(" << options.num_features() << ", eps=" << options.eps()
         << ", momentum=" << options.momentum().value_or(0.1) << ", domain=" << domain_name(domain_) << ")";
}

torch::nn::AnyModule make_batch_norm(int64_t num_features, bool domain_specific) {
  if (domain_specific) {
    DomainBatchNorm2d bn(num_features);
    bn->set_sync(t_sync);
    return torch::nn::AnyModule(bn);
  }
  if (t_sync) return torch::nn::AnyModule(SyncBatchNorm2d(num_features, t_sync));
  return torch::nn::AnyModule(torch::nn::BatchNorm2d(num_features));
}

bool is_batch_norm(torch::nn::Module& module) {
  return module.as<torch::nn::BatchNorm2d>() || module.as<DomainBatchNorm2d>() || module.as<SyncBatchNorm2d>();
}

void init_batch_norms(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* b = m->as<torch::nn::BatchNorm2d>()) {  // plain BNs and the target branches
      torch::nn::init::ones_(b->weight);
      torch::nn::init::zeros_(b->bias);
    } else if (auto* d = m->as<DomainBatchNorm2d>()) {  // source branches
      torch::nn::init::ones_(d->weight);
      torch::nn::init::zeros_(d->bias);
    } else if (auto* sb = m->as<SyncBatchNorm2d>()) {
      torch::nn::init::ones_(sb->weight);
      torch::nn::init::zeros_(sb->bias);
    }
  }
}

size_t set_bn_domain(torch::nn::Module& module, Domain domain) {
  return for_each_domain_bn(module, [&](DomainBatchNorm2dImpl& bn) { bn.set_domain(domain); });
}

size_t copy_source_bn_to_target_in(torch::nn::Module& module) {
  return for_each_domain_bn(module, [](DomainBatchNorm2dImpl& bn) { bn.copy_source_to_target(); });
}

}  // namespace da::models
