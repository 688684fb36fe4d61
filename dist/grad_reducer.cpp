#include "dist/grad_reducer.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <exception>
#include <numeric>

#include "dist/errors.h"

namespace da::dist {
namespace {

// The dims of `t` from the largest stride to the smallest. Permuted so, a
// dense tensor (contiguous, channels-last or any other dense layout) is
// contiguous: its elements in memory order.
std::vector<std::int64_t> memory_order(const at::Tensor& t) {
  std::vector<std::int64_t> dims(static_cast<std::size_t>(t.dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::stable_sort(dims.begin(), dims.end(), [&](std::int64_t a, std::int64_t b) { return t.stride(a) > t.stride(b); });
  return dims;
}

// A parameter's place in its bucket, shaped as the parameter permuted to
// its memory order.
at::Tensor slot_view(const at::Tensor& flat, std::int64_t offset, const at::Tensor& param,
                     const std::vector<std::int64_t>& order) {
  std::vector<std::int64_t> sizes;
  for (const auto d : order) sizes.push_back(param.size(d));
  return flat.narrow(0, offset, param.numel()).view(sizes);
}

// The same place with the parameter's own sizes and strides (channels-last
// stays channels-last): what its .grad becomes with gradient_as_bucket_view.
at::Tensor gradient_view(const at::Tensor& flat, std::int64_t offset, const at::Tensor& param) {
  const auto order = memory_order(param);
  std::vector<std::int64_t> inverse(order.size());
  for (std::size_t k = 0; k < order.size(); ++k)
    inverse[static_cast<std::size_t>(order[k])] = static_cast<std::int64_t>(k);
  return slot_view(flat, offset, param, order).permute(inverse);
}

struct AbandonedCollective {
  std::unique_ptr<Work> work;
  at::Tensor buffer;
};

// Collectives left running by a reducer destroyed during a failure; never
// freed (see ~GradReducer).
std::vector<AbandonedCollective>& abandoned_collectives() {
  static auto* list = new std::vector<AbandonedCollective>;
  return *list;
}

}  // namespace

// Shared with the hooks so that a hook firing after the reducer is gone does
// nothing instead of touching freed memory.
struct GradReducer::HookState {
  GradReducer* reducer = nullptr;
};

class GradReducer::ReadyHook : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(std::shared_ptr<HookState> state, std::size_t param) : state_(std::move(state)), param_(param) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    if (state_->reducer != nullptr) state_->reducer->mark_ready(param_);
    return outputs;
  }

 private:
  std::shared_ptr<HookState> state_;
  std::size_t param_;
};

GradReducer::GradReducer(Communicator& comm, std::vector<std::pair<std::string, at::Tensor>> named_params,
                         const ReducerOptions& options)
    : comm_(comm),
      mask_comm_(options.mask_comm != nullptr ? *options.mask_comm : comm),
      bucket_mb_(options.bucket_mb),
      first_bucket_mb_(options.first_bucket_mb),
      as_view_(options.gradient_as_bucket_view),
      compression_(options.compression),
      hook_state_(std::make_shared<HookState>()) {
  hook_state_->reducer = this;
  for (auto& [name, param] : named_params) {
    if (!param.requires_grad()) continue;  // frozen: never synchronised
    names_.push_back(name);
    params_.push_back(param);
  }
  location_.resize(params_.size());
  ready_.assign(params_.size(), false);
  used_in_window_.assign(params_.size(), false);
  preassigned_.assign(params_.size(), false);

  mask_on_change_ = options.used_mask == UsedMask::kOnChange ||
                    (options.used_mask == UsedMask::kAuto && !params_.empty() && params_.front().is_cpu());
  // Reverse registration order until the first step shows the real one.
  std::vector<std::size_t> order(params_.size());
  std::iota(order.rbegin(), order.rend(), std::size_t{0});
  build_buckets(order);

  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto accumulator = torch::autograd::impl::grad_accumulator(params_[i]);
    hook_keys_.push_back(accumulator->add_post_hook(std::make_unique<ReadyHook>(hook_state_, i)));
    accumulators_.push_back(std::move(accumulator));  // the parameter only holds a weak reference
  }
}

GradReducer::~GradReducer() {
  hook_state_->reducer = nullptr;
  for (std::size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
  const bool failing = std::uncaught_exceptions() > 0;
  for (auto& bucket : buckets_) {
    if (!bucket.work) continue;
    if (failing) {
      // Destroyed while an error unwinds (a rank failed): the job is about
      // to be aborted, and a collective whose peer is gone would end only at
      // dist.timeout_s. Keep its memory alive for the rest of the process
      // instead of waiting for it.
      abandoned_collectives().push_back({std::move(bucket.work), bucket.wire.defined() ? bucket.wire : bucket.flat});
      continue;
    }
    // Never leave a collective writing into a bucket being freed.
    try {
      bucket.work->wait();
    } catch (const DistError&) {
    }
  }
}

void GradReducer::build_buckets(const std::vector<std::size_t>& order) {
  // In `order`; a new bucket when the dtype changes or the cap is reached.
  const auto cap_bytes = [&](std::size_t index) {
    return static_cast<std::int64_t>((index == 0 ? first_bucket_mb_ : bucket_mb_) * 1024 * 1024);
  };
  std::vector<std::vector<std::size_t>> groups;
  std::int64_t bytes = 0;
  for (const std::size_t i : order) {
    const auto& p = params_[i];
    const std::int64_t size = p.numel() * static_cast<std::int64_t>(p.element_size());
    const bool new_bucket = groups.empty() || bytes + size > cap_bytes(groups.size() - 1) ||
                            params_[groups.back().front()].scalar_type() != p.scalar_type();
    if (new_bucket) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(i);
    bytes += size;
  }
  buckets_.clear();
  flag_offset_ = -1;
  for (const auto& group : groups) {
    Bucket bucket;
    std::int64_t offset = 0;
    for (std::size_t param : group) {
      location_[param] = {buckets_.size(), bucket.slots.size()};
      bucket.slots.push_back({param, offset, params_[param].numel()});
      offset += params_[param].numel();
    }
    const bool last = buckets_.size() + 1 == groups.size();
    if (last && mask_on_change_) flag_offset_ = offset;  // one more element: the used-set flag
    bucket.flat =
        at::zeros({offset + (flag_offset_ == offset ? 1 : 0)}, params_[group.front()].options().requires_grad(false));
    if (compression_ != GradCompression::kNone && bucket.flat.scalar_type() == at::kFloat) {
      bucket.wire = at::empty_like(
          bucket.flat, bucket.flat.options().dtype(compression_ == GradCompression::kFp16 ? at::kHalf : at::kBFloat16));
    }
    buckets_.push_back(std::move(bucket));
  }
}

void GradReducer::rebuild_from_observed_order() {
  // Rank 0's order, so that every rank builds the same buckets; parameters
  // rank 0 saw no gradient for follow in reverse registration order.
  std::vector<bool> placed(params_.size(), false);
  auto order = at::empty({static_cast<std::int64_t>(params_.size())}, at::kLong);
  auto* data = order.data_ptr<std::int64_t>();
  std::size_t n = 0;
  for (const std::size_t i : ready_order_) {
    data[n++] = static_cast<std::int64_t>(i);
    placed[i] = true;
  }
  for (std::size_t i = params_.size(); i-- > 0;) {
    if (!placed[i]) data[n++] = static_cast<std::int64_t>(i);
  }
  comm_.broadcast(order, 0);
  build_buckets(std::vector<std::size_t>(data, data + n));
  ready_order_.clear();
  rebuilt_ = true;
  if (!as_view_) return;
  // This step's gradients are views into the old buckets: move them into
  // the new ones (once, like c10d's initialize_bucket_views after a rebuild).
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].grad().defined()) set_gradient_view(i, /*copy=*/true);
  }
}

at::Tensor GradReducer::view_of(std::size_t param) const {
  const auto [b, s] = location_[param];
  return gradient_view(buckets_[b].flat, buckets_[b].slots[s].offset, params_[param]);
}

void GradReducer::set_gradient_view(std::size_t param, bool copy) {
  at::Tensor view = view_of(param);
  if (copy) view.copy_(params_[param].grad());
  params_[param].mutable_grad() = std::move(view);
}

void GradReducer::prepare_for_backward(bool sync) {
  if (in_backward_ && sync_) throw DistError("prepare_for_backward called twice without finalize");
  sync_ = sync;
  in_backward_ = true;
  if (!window_open_) {
    // The first backward of an accumulation window (of one, without
    // accumulation): the trainer has just set the gradients to none.
    std::fill(used_in_window_.begin(), used_in_window_.end(), false);
    std::fill(preassigned_.begin(), preassigned_.end(), false);
    window_open_ = true;
    if (as_view_ && !agreed_used_.empty()) {
      // Hand each parameter used in the last synchronised step a zeroed
      // bucket view as its gradient, so that backward accumulates straight
      // into the bucket and nothing is copied. finalize() sets the ones no
      // rank used back to none, as if this had not happened.
      for (std::size_t i = 0; i < params_.size(); ++i) {
        if (agreed_used_[i] == 0 || params_[i].grad().defined()) continue;
        at::Tensor view = view_of(i);
        view.zero_();
        params_[i].mutable_grad() = std::move(view);
        preassigned_[i] = true;
      }
    }
  }
  std::fill(ready_.begin(), ready_.end(), false);
  for (auto& bucket : buckets_) bucket.pending = bucket.slots.size();
  next_to_launch_ = 0;
}

void GradReducer::mark_ready(std::size_t param) {
  if (!in_backward_) return;
  used_in_window_[param] = true;
  if (!sync_ || ready_[param]) return;
  ready_[param] = true;
  if (!rebuilt_) ready_order_.push_back(param);
  ever_used_.insert(param);
  const auto [b, s] = location_[param];
  auto& bucket = buckets_[b];
  place_gradient(param);
  --bucket.pending;
  launch_ready_buckets();
  // Open MPI progresses non-blocking collectives only inside MPI calls.
  for (std::size_t i = 0; i < next_to_launch_; ++i) buckets_[i].work->test();
}

void GradReducer::place_gradient(std::size_t param) {
  const at::Tensor& grad = params_[param].grad();
  const auto [b, s] = location_[param];
  auto& bucket = buckets_[b];
  if (as_view_) {
    // Already the bucket view (handed out before backward, or since an
    // earlier micro-batch): backward wrote into the bucket itself.
    if (grad.is_alias_of(bucket.flat)) return;
    set_gradient_view(param, /*copy=*/true);
    return;
  }
  // In the parameter's memory order: a channels-last gradient is copied
  // straight, not first reshaped into a contiguous temporary.
  const auto order = memory_order(params_[param]);
  slot_view(bucket.flat, bucket.slots[s].offset, params_[param], order).copy_(grad.permute(order));
}

void GradReducer::launch_ready_buckets() {
  while (next_to_launch_ < buckets_.size() && buckets_[next_to_launch_].pending == 0) launch(next_to_launch_++);
}

void GradReducer::launch(std::size_t index) {
  if (flag_offset_ >= 0 && index + 1 == buckets_.size()) {
    // Every parameter's fate is known now (see the header): has this rank's
    // used set changed since the last agreement?
    const bool changed = agreed_used_.empty() || ready_ != used_at_agreement_;
    buckets_[index].flat.narrow(0, flag_offset_, 1).fill_(changed ? 1.0 : 0.0);
  }
  Bucket& bucket = buckets_[index];
  if (bucket.wire.defined()) {
    // As DDP's compression hooks: narrowed first, then divided, then summed.
    bucket.wire.copy_(bucket.flat).div_(comm_.size());
    bucket.work = comm_.all_reduce_async(bucket.wire, ReduceOp::kSum);
    return;
  }
  bucket.work = comm_.all_reduce_async(bucket.flat, ReduceOp::kSum);
}

void GradReducer::agree_on_used() {
  if (flag_offset_ >= 0) {
    const Bucket& last = buckets_.back();
    // A compressed bucket holds the mean already (the flags' sum / size).
    const double changed_ranks = last.flat[flag_offset_].item<double>() * (last.wire.defined() ? comm_.size() : 1);
    if (changed_ranks < 0.5) return;  // no rank's set changed: the union did not either
  }
  auto used = at::zeros({static_cast<std::int64_t>(params_.size())}, at::kInt);
  auto* used_data = used.data_ptr<int>();
  for (std::size_t i = 0; i < params_.size(); ++i) used_data[i] = ready_[i] ? 1 : 0;
  mask_comm_.all_reduce(used, ReduceOp::kMax);
  ++mask_reductions_;
  agreed_used_.assign(used_data, used_data + params_.size());
  used_at_agreement_.assign(ready_.begin(), ready_.end());
}

void GradReducer::finalize() {
  if (!in_backward_) throw DistError("finalize without prepare_for_backward");
  in_backward_ = false;
  if (!sync_) return;
  window_open_ = false;
  for (auto& bucket : buckets_) {
    for (const auto& slot : bucket.slots) {
      if (ready_[slot.param]) continue;
      if (used_in_window_[slot.param] && params_[slot.param].grad().defined()) {
        // Used in an earlier micro-batch of the window only (DDP keeps this
        // record across no_sync too): its accumulated gradient counts.
        ready_[slot.param] = true;
        ever_used_.insert(slot.param);
        place_gradient(slot.param);
      } else {
        // No gradient this window: zeros (a handed-out view already is).
        bucket.flat.narrow(0, slot.offset, slot.numel).zero_();
      }
    }
    bucket.pending = 0;
  }
  launch_ready_buckets();
  // Which parameters got a gradient anywhere decides between a defined
  // (averaged) gradient and an undefined one, the same on every rank. Every
  // step: agreed while the buckets are in flight; on change: after the last
  // bucket, which carries the flags.
  if (flag_offset_ < 0) agree_on_used();
  for (auto& bucket : buckets_) {
    bucket.work->wait();
    bucket.work.reset();
    if (bucket.wire.defined()) bucket.flat.copy_(bucket.wire);  // widened back: the mean
  }
  if (flag_offset_ >= 0) agree_on_used();
  const std::vector<int>& used = agreed_used_;

  const double scale = 1.0 / comm_.size();
  for (auto& bucket : buckets_) {
    if (!bucket.wire.defined()) bucket.flat.mul_(scale);
    if (as_view_) {
      for (const auto& slot : bucket.slots) {
        const std::size_t i = slot.param;
        if (used[i] == 0) {
          if (preassigned_[i]) params_[i].mutable_grad() = at::Tensor();  // no rank used it: none, as before
        } else if (!params_[i].grad().defined()) {
          set_gradient_view(i, /*copy=*/false);  // used on other ranks only
        }
      }
      continue;
    }
    for (const auto& slot : bucket.slots) {
      auto& param = params_[slot.param];
      if (used[slot.param] == 0) continue;
      const auto order = memory_order(param);
      if (!param.grad().defined()) param.mutable_grad() = at::empty_like(param);  // the parameter's layout
      param.mutable_grad().permute(order).copy_(slot_view(bucket.flat, slot.offset, param, order));
    }
  }
  // After the first step, buckets follow the order gradients became ready
  // (c10d's rebuild_buckets): each bucket fills, and can start, as early as
  // backward allows.
  if (!rebuilt_) rebuild_from_observed_order();
}

std::vector<std::vector<std::string>> GradReducer::bucket_layout() const {
  std::vector<std::vector<std::string>> layout;
  for (const auto& bucket : buckets_) {
    layout.emplace_back();
    for (const auto& slot : bucket.slots) layout.back().push_back(names_[slot.param]);
  }
  return layout;
}

std::vector<std::string> GradReducer::take_unused_parameters() {
  std::vector<std::string> unused;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!ever_used_.count(i)) unused.push_back(names_[i]);
  }
  ever_used_.clear();
  return unused;
}

}  // namespace da::dist
