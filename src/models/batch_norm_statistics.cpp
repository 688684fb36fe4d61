#include "models/batch_norm_statistics.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/modules/batchnorm.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/segmentation_model.h"

namespace da::models {
namespace {

thread_local BatchNormInterceptor* t_interceptor = nullptr;

// Ends a forward once the layer being re-estimated has seen its input.
struct StopForward {};

// A layer's statistics over the whole set.
struct LayerStats {
  at::Tensor mean;         // float, the layer's dtype
  at::Tensor biased_var;   // what train-mode BatchNorm normalises with
  at::Tensor unbiased_var; // what it stores in running_var
};

class Reestimator : public BatchNormInterceptor {
 public:
  enum class Mode { kDiscover, kCollect };

  at::Tensor forward(const BatchNormBranch& branch, const at::Tensor& x) override {
    if (x.dim() != 4) throw std::invalid_argument("adabn: expected 4D BatchNorm input, got " + std::to_string(x.dim()) + "D");
    const std::size_t index = calls_++;
    if (mode_ == Mode::kDiscover) {
      for (const auto& b : order) {
        if (b.id == branch.id) throw std::runtime_error("adabn: a BatchNorm layer runs twice in one forward");
      }
      order.push_back(branch);
      return at::batch_norm(x, branch.weight, branch.bias, branch.running_mean, branch.running_var, false, 0.0,
                            branch.eps, at::globalContext().userEnabledCuDNN());
    }
    if (index >= order.size() || order[index].id != branch.id) {
      throw std::runtime_error("adabn: the BatchNorm layers ran in a different order than in the probe forward");
    }
    if (index < layer) {
      const LayerStats& s = stats[index];
      return at::batch_norm(x, branch.weight, branch.bias, s.mean, s.biased_var, false, 0.0, branch.eps,
                            at::globalContext().userEnabledCuDNN());
    }
    // index == layer: accumulate its input, then stop the forward.
    const at::Tensor xd = x.to(at::kDouble);
    sum += xd.sum({0, 2, 3}).cpu();
    sum_sq += (xd * xd).sum({0, 2, 3}).cpu();
    count += static_cast<double>(x.numel() / std::max<std::int64_t>(x.size(1), 1));
    throw StopForward{};
  }

  void start_forward() { calls_ = 0; }

  Mode mode_ = Mode::kDiscover;
  std::vector<BatchNormBranch> order;
  std::vector<LayerStats> stats;
  std::size_t layer = 0;
  at::Tensor sum, sum_sq;
  double count = 0;

 private:
  std::size_t calls_ = 0;
};

}  // namespace

bool batch_norm_branch(torch::nn::Module& module, BatchNormBranch& branch) {
  if (auto* b = module.as<torch::nn::BatchNorm2d>()) {
    branch = {b, b->weight, b->bias, b->running_mean, b->running_var, b->options.eps()};
    return true;
  }
  if (auto* s = module.as<SyncBatchNorm2d>()) {
    branch = {s, s->weight, s->bias, s->running_mean, s->running_var, s->options.eps()};
    return true;
  }
  if (auto* d = module.as<DomainBatchNorm2d>()) {
    if (d->domain() == Domain::kTarget) return batch_norm_branch(*d->target(), branch);
    branch = {d, d->weight, d->bias, d->running_mean, d->running_var, d->options.eps()};
    return true;
  }
  return false;
}

at::Tensor forward_batch_norm(torch::nn::AnyModule& bn, const at::Tensor& x) {
  if (t_interceptor) {
    BatchNormBranch branch;
    if (batch_norm_branch(*bn.ptr(), branch)) return t_interceptor->forward(branch, x);
  }
  return bn.forward<at::Tensor>(x);
}

at::Tensor forward_sequential(torch::nn::Sequential& sequential, at::Tensor x) {
  if (!t_interceptor) return sequential->forward(x);
  for (auto& module : *sequential) x = forward_batch_norm(module, x);
  return x;
}

BatchNormInterceptScope::BatchNormInterceptScope(BatchNormInterceptor* interceptor) : previous_(t_interceptor) {
  t_interceptor = interceptor;
}

BatchNormInterceptScope::~BatchNormInterceptScope() { t_interceptor = previous_; }

BatchNormReestimate reestimate_batch_norm(
    SegmentationModelImpl& model, Domain domain,
    const std::function<void(const std::function<void(const at::Tensor&)>&)>& for_each_batch,
    const at::Tensor& probe, ranks::RankSum* sync) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  model.set_domain(domain);
  struct Restore {
    SegmentationModelImpl& model;
    bool training;
    ~Restore() {
      model.set_domain(Domain::kSource);
      model.train(training);
    }
  } restore{model, was_training};

  Reestimator r;
  BatchNormInterceptScope scope(&r);
  r.start_forward();
  model.forward(probe);
  r.mode_ = Reestimator::Mode::kCollect;
  // Every batch norm must have been reached (a DomainBatchNorm2d holds exactly one BatchNorm2d, its target).
  std::size_t modules = 0;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    modules += m->as<torch::nn::BatchNorm2d>() != nullptr || m->as<SyncBatchNorm2d>() != nullptr;
  }
  if (r.order.size() != modules) {
    throw std::runtime_error("adabn: the forward reached " + std::to_string(r.order.size()) + " of the model's " +
                             std::to_string(modules) +
                             " BatchNorm layers (call them through forward_batch_norm / forward_sequential)");
  }

  BatchNormReestimate result;
  for (r.layer = 0; r.layer < r.order.size(); ++r.layer) {
    const BatchNormBranch& branch = r.order[r.layer];
    const std::int64_t channels = branch.running_mean.size(0);
    r.sum = at::zeros({channels}, at::kDouble);
    r.sum_sq = at::zeros({channels}, at::kDouble);
    r.count = 0;
    double tiles = 0;
    for_each_batch([&](const at::Tensor& images) {
      tiles += static_cast<double>(images.size(0));
      r.start_forward();
      try {
        model.forward(images);
      } catch (const StopForward&) {
        return;
      }
      throw std::runtime_error("adabn: a forward ended before reaching BatchNorm layer " + std::to_string(r.layer));
    });
    at::Tensor packed = at::cat({r.sum, r.sum_sq, at::tensor({r.count, tiles}, at::kDouble)});
    if (sync) sync->all_reduce_sum(packed);
    const double n = packed[2 * channels].item<double>();
    if (n <= 0) throw std::runtime_error("adabn: no tiles to re-estimate BatchNorm statistics on");
    const at::Tensor mean = packed.narrow(0, 0, channels) / n;
    const at::Tensor biased = (packed.narrow(0, channels, channels) / n - mean * mean).clamp_min(0);
    const auto options = branch.running_mean.options();
    r.stats.push_back({mean.to(options), biased.to(options), (biased * (n / std::max(n - 1, 1.0))).to(options)});
    result.tiles = packed[2 * channels + 1].item<double>();
  }
  for (std::size_t i = 0; i < r.order.size(); ++i) {
    r.order[i].running_mean.copy_(r.stats[i].mean);
    r.order[i].running_var.copy_(r.stats[i].unbiased_var);
  }
  result.layers = static_cast<std::int64_t>(r.order.size());
  return result;
}

}  // namespace da::models
