// Gradient synchronisation in the spirit of PyTorch DDP's reducer.
//
// Parameters (of the model and of the methods' auxiliary nets) are packed in
// reverse registration order — roughly the order backward produces their
// gradients — into flat buckets: a small first bucket so communication
// starts early, `bucket_mb` after that. After the first synchronised step
// the buckets are rebuilt once in the order the gradients actually became
// ready on rank 0 (broadcast, so every rank builds the same buckets), as
// c10d's rebuild_buckets does. A post-hook on each parameter's
// gradient accumulator marks the finished gradient ready in its bucket; a
// full bucket starts its asynchronous all-reduce at once, so communication
// overlaps the rest of backward.
//
// Gradients as bucket views (gradient_as_bucket_view, c10d's option of that
// name, on by default): each .grad is a view into its bucket, strided as its
// parameter (channels-last included), so the averaged result needs no copy
// out. When an accumulation window begins (the trainer has set the
// gradients to none), every parameter used in the last synchronised step is
// handed a zeroed view as its .grad, and backward accumulates into the
// bucket in place: no copy in either. A gradient that arrives without one
// (the first step, a parameter newly used) is copied in once and its .grad
// becomes the view. A handed-out view that no rank used is set back to
// none, so .grad ends exactly as without views. Off: each gradient is
// copied into its bucket and the average copied back into .grad. Buckets always start in index order, so
// every rank issues the same bucket collectives in the same order. Where a
// bucket starts relative to other collectives inside backward (SyncBN's, the
// methods') moves with the parameters a rank leaves unused, so the reducer
// must have a communicator of its own (Communicator::duplicate(); tested in
// tests/dist/test_collective_order.cpp).
//
// finalize() starts what is left (parameters that got no gradient this step
// contribute zeros, consistently on every rank), waits for everything,
// averages over the world and writes the result into each .grad. A
// parameter that got no gradient on any rank keeps an undefined .grad, as in
// a single process.
//
// Which parameters got a gradient on any rank (the used mask) needs the
// ranks to agree. UsedMask::kEveryStep all-reduces the mask every step.
// UsedMask::kOnChange (CPU tensors) adds one element to the last bucket:
// each rank writes 1 there when its own used set differs from the one it
// had at the last agreement (or there was none), else 0. The last bucket
// starts only once every parameter's fate is known (buckets start in index
// order, the last after all others), and every rank sums the same flags,
// so all ranks decide alike: a sum of 0 means no rank's set changed, so the
// union is the last agreed one; otherwise the mask is all-reduced this step.
// It can neither hang (the flag rides in a collective every rank runs) nor
// average wrongly (the union is exact either way).
//
// Gradient accumulation: prepare_for_backward(false) for the micro-batches
// that must not communicate (DDP's no_sync); the accumulated gradient is
// reduced on the last one. A parameter used in an earlier micro-batch of the
// window but not in the last counts as used (DDP records use across no_sync
// too), so its accumulated gradient is averaged, not dropped.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"

namespace torch::autograd {
struct Node;
}

namespace da::dist {

// How the ranks agree on which parameters got a gradient (see above).
// kAuto: kOnChange for CPU parameters; kEveryStep for GPU ones, where
// reading the flag back would make the host wait for the GPU.
enum class UsedMask { kAuto, kEveryStep, kOnChange };

// The precision float32 gradient buckets travel in (DDP's fp16_compress_hook
// and bf16_compress_hook): each rank divides its bucket by the world size in
// that precision, the all-reduce sums in it, and the result is widened back
// into the bucket. Half the bytes on the wire; the rounding of each
// gradient to 11 (fp16) or 8 (bf16) significant bits is the price. fp16's
// range ends at 65504: the division before the sum keeps the sum in range
// (as DDP does), a single gradient above it still overflows.
enum class GradCompression { kNone, kFp16, kBf16 };

struct ReducerOptions {
  double bucket_mb = 25.0;
  double first_bucket_mb = 1.0;
  // Where the used-parameter mask (host knowledge: which hooks fired) is
  // all-reduced; null: the reducer's communicator. On GPUs the trainer
  // passes its host (MPI) communicator, so the mask never goes through the
  // device and the host never waits for the GPU to read the result.
  Communicator* mask_comm = nullptr;
  UsedMask used_mask = UsedMask::kAuto;
  // Gradients as views into their bucket (see the header).
  bool gradient_as_bucket_view = true;
  GradCompression compression = GradCompression::kNone;
};

class GradReducer {
 public:
  GradReducer(Communicator& comm, std::vector<std::pair<std::string, at::Tensor>> named_params,
              const ReducerOptions& options);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before each backward. sync=false: this backward only accumulates locally.
  void prepare_for_backward(bool sync = true);
  // After backward, before the optimizer step (no-op after sync=false).
  void finalize();

  std::size_t num_buckets() const { return buckets_.size(); }
  // Parameter names per bucket, for logs and tests.
  std::vector<std::vector<std::string>> bucket_layout() const;
  // Names of parameters that got no gradient on this rank in any step since
  // the last call (e.g. once per epoch), then the record starts afresh.
  std::vector<std::string> take_unused_parameters();
  // How many steps all-reduced the used mask so far (for logs and tests).
  std::int64_t mask_reductions() const { return mask_reductions_; }

 private:
  struct Slot {
    std::size_t param;
    std::int64_t offset;
    std::int64_t numel;
  };
  struct Bucket {
    at::Tensor flat;
    std::vector<Slot> slots;
    std::size_t pending = 0;
    std::unique_ptr<Work> work;
    at::Tensor wire;  // the bucket compressed for the all-reduce (ReducerOptions::compression); else undefined
  };
  struct HookState;
  class ReadyHook;

  void build_buckets(const std::vector<std::size_t>& order);
  void rebuild_from_observed_order();
  void mark_ready(std::size_t param);
  // Puts the parameter's gradient into its bucket slot: a copy, or with
  // gradient_as_bucket_view nothing when it already is the slot's view.
  void place_gradient(std::size_t param);
  // The parameter's slot shaped and strided as the parameter.
  at::Tensor view_of(std::size_t param) const;
  // Makes the slot's view the parameter's .grad, first copying the current
  // .grad into it when `copy`.
  void set_gradient_view(std::size_t param, bool copy);
  void launch_ready_buckets();
  void launch(std::size_t bucket);
  // Sets agreed_used_ to this step's used mask, the same on all ranks (1
  // where any rank had a gradient): all-reduced, or kept when the last
  // bucket's flags say no rank's set changed (then after its wait).
  void agree_on_used();

  Communicator& comm_;
  Communicator& mask_comm_;
  double bucket_mb_;
  double first_bucket_mb_;
  bool as_view_;
  GradCompression compression_;
  std::vector<std::string> names_;
  std::vector<at::Tensor> params_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<std::uintptr_t> hook_keys_;
  std::shared_ptr<HookState> hook_state_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<std::size_t, std::size_t>> location_;  // param -> (bucket, slot)
  std::vector<bool> ready_;
  std::size_t next_to_launch_ = 0;
  bool sync_ = false;
  bool in_backward_ = false;
  bool window_open_ = false;          // an accumulation window has begun and not been synchronised
  std::vector<bool> used_in_window_;  // a gradient arrived in any backward of the window
  std::vector<bool> preassigned_;     // .grad handed out as a view when the window began
  std::set<std::size_t> ever_used_;
  std::vector<std::size_t> ready_order_;  // the first synchronised step's, until the rebuild
  bool rebuilt_ = false;
  bool mask_on_change_ = false;
  std::int64_t flag_offset_ = -1;        // kOnChange: the flag's index in the last bucket
  std::vector<bool> used_at_agreement_;  // this rank's used set at the last mask all-reduce
  std::vector<int> agreed_used_;         // the union then; empty before the first
  std::int64_t mask_reductions_ = 0;
};

}  // namespace da::dist
