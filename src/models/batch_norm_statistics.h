// Re-estimation of BatchNorm running statistics on a data set (AdaBN, Li et
// al., "Revisiting Batch Normalization for Practical Domain Adaptation").
//
// What the result is, exactly: the running_mean / running_var that every
// BatchNorm layer in use (the `domain` branch of a DSBN model, every layer of
// a plain one) would hold after ONE forward in train mode, with momentum 1, of
// the whole data set of all ranks concatenated into a single batch: per
// channel, the mean and the unbiased variance of the layer's input over every
// pixel of every tile, where each earlier layer normalises with the data set's
// own statistics (mean, biased variance, as train-mode BatchNorm does). Being
// defined on the whole set, it does not depend on the batch size or on the
// number of ranks (up to float rounding).
//
// How: that full batch does not fit in memory, so the layers are re-estimated
// one at a time, in the order the forward calls them. Pass l runs every batch
// up to layer l only: layers before l normalise with their already
// re-estimated statistics (a per-tile operation, so the batching does not
// matter), layer l accumulates sum(x), sum(x^2) (in double) and the pixel
// count, and the forward stops there. The sums are then added over the ranks
// through a ranks::RankSum, turned into mean / unbiased variance, and the next
// pass starts. Cost: one partial forward per layer per batch (about half the
// layer count in full forwards over the set), no backward, no gradients.
// Only running_mean and running_var change; weights, biases,
// num_batches_tracked and the other domain's branch are left alone.
//
// How the layers are reached: the model's blocks call their BatchNorms
// through forward_batch_norm / forward_sequential below, which hand the call
// to the active BatchNormInterceptor (a thread-local pointer set only for the
// duration of a re-estimation) and otherwise run the module's own forward.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <functional>

#include "models/domain_batch_norm.h"
#include "models/sync_batch_norm.h"

namespace da::models {

class SegmentationModelImpl;

// The branch of a batch norm module a forward uses now: a BatchNorm2d, a
// SyncBatchNorm2d, or the current domain's branch of a DomainBatchNorm2d.
struct BatchNormBranch {
  const void* id = nullptr;  // identifies the branch (its module)
  at::Tensor weight, bias, running_mean, running_var;
  double eps = 1e-5;
};

// Whether `module` is a batch norm (is_batch_norm); if so, its branch in use.
bool batch_norm_branch(torch::nn::Module& module, BatchNormBranch& branch);

class BatchNormInterceptor {
 public:
  virtual ~BatchNormInterceptor() = default;
  // Replaces the batch norm's forward of x [N,C,H,W].
  virtual at::Tensor forward(const BatchNormBranch& branch, const at::Tensor& x) = 0;
};

// `bn.forward<at::Tensor>(x)`, or the active interceptor's forward when `bn` is a batch norm.
at::Tensor forward_batch_norm(torch::nn::AnyModule& bn, const at::Tensor& x);
// Sequential::forward, with each batch norm child through forward_batch_norm.
at::Tensor forward_sequential(torch::nn::Sequential& sequential, at::Tensor x);

// While alive, this thread's batch norm calls go to `interceptor`.
class BatchNormInterceptScope {
 public:
  explicit BatchNormInterceptScope(BatchNormInterceptor* interceptor);
  ~BatchNormInterceptScope();
  BatchNormInterceptScope(const BatchNormInterceptScope&) = delete;
  BatchNormInterceptScope& operator=(const BatchNormInterceptScope&) = delete;

 private:
  BatchNormInterceptor* previous_;
};

struct BatchNormReestimate {
  std::int64_t layers = 0;  // batch norm layers re-estimated
  double tiles = 0;         // tiles used, all ranks
};

// Re-estimates, as described above, the running statistics of the `domain`
// branch of every batch norm of `model`. `for_each_batch(visit)` calls
// visit(images [B,C,H,W] on the model's device) once for each of this rank's
// batches; it is called once per layer and must give the same tiles each time
// (a rank may have none). `probe` is any input of the model's shape (e.g.
// zeros [1,C,H,W]); one forward of it finds the layers and their order.
// `sync` adds the per-layer sums over the ranks (nullptr: one process). Every
// rank must call this together. Throws std::runtime_error when no rank has a
// tile, or when one batch norm runs twice in a forward. The model's train /
// eval mode is kept; its domain is left at kSource.
BatchNormReestimate reestimate_batch_norm(
    SegmentationModelImpl& model, Domain domain,
    const std::function<void(const std::function<void(const at::Tensor&)>&)>& for_each_batch,
    const at::Tensor& probe, ranks::RankSum* sync);

}  // namespace da::models
