// The gradient reducer under mpirun -np 2: averaged gradients equal the mean
// of the two ranks' local gradients (each rank computes both locally as the
// reference), for several bucket layouts, parameters used twice in the graph,
// parameters used on one rank only or on none, frozen parameters, and
// accumulation over micro-batches; with gradients as bucket views (the
// default) and copied in and out.
#include <gtest/gtest.h>

#include <algorithm>

#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include "dist/grad_reducer.h"
#include "dist/mpi_communicator.h"

namespace da::dist {
namespace {

struct Net {
  torch::nn::Linear first{4, 3};
  torch::nn::Linear second{3, 2};
  at::Tensor only_on_rank1 = at::ones({2}, at::kDouble).requires_grad_();
  at::Tensor never_used = at::ones({5}, at::kDouble).requires_grad_();
  at::Tensor frozen = at::ones({3}, at::kDouble);

  Net() {
    first->to(at::kDouble);
    second->to(at::kDouble);
    at::NoGradGuard no_grad;
    first->weight.copy_(at::sin(at::arange(12, at::kDouble)).reshape({3, 4}));
    first->bias.copy_(at::cos(at::arange(3, at::kDouble)));
    second->weight.copy_(at::sin(at::arange(6, at::kDouble) + 1.0).reshape({2, 3}));
    second->bias.copy_(at::cos(at::arange(2, at::kDouble) + 2.0));
  }

  std::vector<std::pair<std::string, at::Tensor>> named() {
    return {{"first.weight", first->weight}, {"first.bias", first->bias}, {"second.weight", second->weight},
            {"second.bias", second->bias},  {"only_on_rank1", only_on_rank1}, {"never_used", never_used},
            {"frozen", frozen}};
  }
  std::vector<at::Tensor> trainable() {
    return {first->weight, first->bias, second->weight, second->bias, only_on_rank1};
  }

  // The first layer is applied twice (two inputs), so its accumulator sums
  // two contributions before the reducer sees the gradient.
  at::Tensor loss(int rank, int micro = 0) {
    const auto x = at::sin(at::arange(8, at::kDouble) * (rank + 1.5) + micro).reshape({2, 4});
    const auto y = at::cos(at::arange(8, at::kDouble) * (rank + 0.5) + micro).reshape({2, 4});
    auto out = second(at::relu(first(x))) + second(at::tanh(first(y)));
    auto loss = (out * out).mean() + (frozen.sum() * 0.1);
    if (rank == 1) loss = loss + (only_on_rank1 * out.mean(0)).sum();
    return loss;
  }
};

// Local gradients of `rank`'s loss (micro-batches summed), no communication.
std::vector<at::Tensor> local_grads(int rank, int micro_batches) {
  Net net;
  for (int m = 0; m < micro_batches; ++m) net.loss(rank, m).backward();
  std::vector<at::Tensor> grads;
  for (auto& p : net.trainable()) grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return grads;
}

void check_reduced(double first_bucket_mb, double bucket_mb, int micro_batches, bool as_view = true) {
  MpiCommunicator comm(60);
  Net net;
  ReducerOptions options{bucket_mb, first_bucket_mb};
  options.gradient_as_bucket_view = as_view;
  GradReducer reducer(comm, net.named(), options);
  for (int m = 0; m < micro_batches; ++m) {
    reducer.prepare_for_backward(m == micro_batches - 1);
    net.loss(comm.rank(), m).backward();
    reducer.finalize();
  }
  const auto g0 = local_grads(0, micro_batches), g1 = local_grads(1, micro_batches);
  const auto params = net.trainable();
  for (std::size_t i = 0; i < params.size(); ++i) {
    ASSERT_TRUE(params[i].grad().defined()) << i;
    EXPECT_TRUE(at::allclose(params[i].grad(), (g0[i] + g1[i]) / 2, 1e-12, 1e-14)) << "parameter " << i;
  }
  EXPECT_FALSE(net.never_used.grad().defined());  // unused on every rank: like one process
  const auto unused = reducer.take_unused_parameters();
  if (comm.rank() == 0) {
    EXPECT_EQ(unused, (std::vector<std::string>{"only_on_rank1", "never_used"}));
  } else {
    EXPECT_EQ(unused, (std::vector<std::string>{"never_used"}));
  }
}

TEST(GradReducer, OneBucketPerParameter) { check_reduced(1e-7, 1e-7, 1); }

TEST(GradReducer, AllInOneBucket) { check_reduced(25, 25, 1); }

TEST(GradReducer, MixedBucketsAndAccumulation) { check_reduced(1e-4, 2e-4, 3); }

TEST(GradReducer, MixedBucketsAndAccumulationCopyingGradients) { check_reduced(1e-4, 2e-4, 3, /*as_view=*/false); }

// A parameter used in the first micro-batch of an accumulation window but
// not in the last still has its accumulated gradient averaged (DDP records
// use across no_sync too), in both steps of the run, views or copies.
void check_used_early_in_window(bool as_view) {
  MpiCommunicator comm(60);
  const int rank = comm.rank();
  const at::Tensor weight = at::cos(at::arange(4, at::kDouble)).requires_grad_();
  const at::Tensor early = at::sin(at::arange(3, at::kDouble) + 1.0).requires_grad_();
  ReducerOptions options{25.0, 1.0};
  options.gradient_as_bucket_view = as_view;
  GradReducer reducer(comm, {{"weight", weight}, {"early", early}}, options);
  for (int step = 0; step < 2; ++step) {
    weight.mutable_grad() = at::Tensor();
    early.mutable_grad() = at::Tensor();
    for (int micro = 0; micro < 2; ++micro) {
      reducer.prepare_for_backward(micro == 1);
      at::Tensor loss = (weight * weight * (rank + 1.0 + micro)).sum();
      if (micro == 0) loss = loss + (early * early * (rank + 2.0 + step)).sum();
      loss.backward();
      reducer.finalize();
    }
    // Means over the ranks of the summed micro-batch gradients.
    const at::Tensor w = weight.detach(), e = early.detach();
    const at::Tensor weight_mean = (2 * w * (1.0 + 2.0) + 2 * w * (2.0 + 3.0)) / 2;
    const at::Tensor early_mean = (2 * e * (2.0 + step) + 2 * e * (3.0 + step)) / 2;
    ASSERT_TRUE(early.grad().defined()) << "step " << step;
    EXPECT_TRUE(at::allclose(weight.grad(), weight_mean, 1e-12, 1e-14)) << "step " << step;
    EXPECT_TRUE(at::allclose(early.grad(), early_mean, 1e-12, 1e-14)) << "step " << step;
  }
}

TEST(GradReducer, UsedEarlyInAnAccumulationWindowIsAveraged) { check_used_early_in_window(true); }

TEST(GradReducer, UsedEarlyInAnAccumulationWindowIsAveragedCopyingGradients) { check_used_early_in_window(false); }

// After the first step the buckets follow the order the gradients became
// ready (rank 0's, the same on both ranks) instead of reverse registration,
// and the following steps still average the ranks' gradients exactly.
TEST(GradReducer, BucketsRebuiltInTheObservedReadyOrder) {
  MpiCommunicator comm(60);
  const auto kF64 = at::TensorOptions().dtype(at::kDouble);
  // Registered first, second, scale; `scale` is applied first in forward,
  // so its gradient is ready last: backward's order is second, first, scale.
  const at::Tensor first = at::sin(at::arange(12, kF64)).reshape({3, 4}).requires_grad_();
  const at::Tensor second = at::cos(at::arange(6, kF64)).reshape({2, 3}).requires_grad_();
  const at::Tensor scale = at::full({4}, 1.5, kF64).requires_grad_();
  const auto loss_of = [](int r, int step, const at::Tensor& f, const at::Tensor& s, const at::Tensor& c) {
    const at::Tensor x = at::sin(at::arange(4, at::TensorOptions().dtype(at::kDouble)) * (r + 1.0) + step).view({1, 4});
    return at::tanh((x * c).matmul(f.t())).matmul(s.t()).pow(2).sum();
  };
  GradReducer reducer(comm, {{"first", first}, {"second", second}, {"scale", scale}}, ReducerOptions{1e-9, 1e-9});
  using Layout = std::vector<std::vector<std::string>>;
  EXPECT_EQ(reducer.bucket_layout(), (Layout{{"scale"}, {"second"}, {"first"}}));  // reverse registration
  for (int step = 0; step < 3; ++step) {
    for (const at::Tensor& p : {first, second, scale}) p.mutable_grad() = at::Tensor();
    reducer.prepare_for_backward();
    loss_of(comm.rank(), step, first, second, scale).backward();
    reducer.finalize();
    if (step == 0) EXPECT_EQ(reducer.bucket_layout(), (Layout{{"second"}, {"first"}, {"scale"}}));
    // The mean of both ranks' gradients, computed locally.
    std::vector<at::Tensor> mean(3);
    for (int r = 0; r < 2; ++r) {
      std::vector<at::Tensor> copies{first.detach().clone().requires_grad_(), second.detach().clone().requires_grad_(),
                                     scale.detach().clone().requires_grad_()};
      loss_of(r, step, copies[0], copies[1], copies[2]).backward();
      for (int i = 0; i < 3; ++i) mean[i] = r == 0 ? copies[i].grad() / 2 : mean[i] + copies[i].grad() / 2;
    }
    EXPECT_TRUE(at::allclose(first.grad(), mean[0], 1e-12, 1e-14)) << "step " << step;
    EXPECT_TRUE(at::allclose(second.grad(), mean[1], 1e-12, 1e-14)) << "step " << step;
    EXPECT_TRUE(at::allclose(scale.grad(), mean[2], 1e-12, 1e-14)) << "step " << step;
  }
}

// The used mask is all-reduced only in steps where some rank's used set
// changed (UsedMask::kOnChange, the CPU default), every step with
// kEveryStep; the gradients (defined or not, and their values) are the same
// either way. `extra` is used by the ranks that the step's pattern says.
void check_used_mask(UsedMask mode) {
  MpiCommunicator comm(60);
  const int rank = comm.rank();
  const at::Tensor weight = at::cos(at::arange(6, at::kDouble)).requires_grad_();
  const at::Tensor extra = at::sin(at::arange(3, at::kDouble)).requires_grad_();
  ReducerOptions options{25.0, 1.0};
  options.used_mask = mode;
  GradReducer reducer(comm, {{"weight", weight}, {"extra", extra}}, options);
  // Per step: does rank 0 / rank 1 use `extra`? And does a mask all-reduce
  // happen with kOnChange (first step; then only when a rank's set changed)?
  struct Step {
    bool rank0, rank1, reduces;
  };
  const std::vector<Step> steps{{false, true, true},   {false, true, false}, {false, false, true},
                                {false, false, false}, {true, false, true},  {true, false, false}};
  std::int64_t expected_reductions = 0;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const bool uses[2] = {steps[k].rank0, steps[k].rank1};
    weight.mutable_grad() = at::Tensor();  // what the optimizer's zero_grad(set_to_none) leaves
    extra.mutable_grad() = at::Tensor();
    reducer.prepare_for_backward();
    const auto loss_of = [&](int r) {
      at::Tensor loss = (weight * weight * (r + 1.0)).sum();
      if (uses[r]) loss = loss + (extra * weight.narrow(0, 0, 3) * (r + 2.0)).sum();
      return loss;
    };
    loss_of(rank).backward();
    reducer.finalize();
    expected_reductions += mode == UsedMask::kEveryStep || steps[k].reduces ? 1 : 0;
    EXPECT_EQ(reducer.mask_reductions(), expected_reductions) << "step " << k;
    // The mean of both ranks' gradients, computed locally.
    const at::Tensor w = weight.detach(), e = extra.detach();
    at::Tensor weight_mean = (2 * w * 1.0 + 2 * w * 2.0) / 2;
    at::Tensor extra_mean = at::zeros_like(e);
    for (int r = 0; r < 2; ++r) {
      if (!uses[r]) continue;
      weight_mean.narrow(0, 0, 3).add_(e * (r + 2.0) / 2);
      extra_mean.add_(w.narrow(0, 0, 3) * (r + 2.0) / 2);
    }
    ASSERT_TRUE(weight.grad().defined());
    EXPECT_TRUE(at::allclose(weight.grad(), weight_mean, 1e-12, 1e-14)) << "step " << k;
    if (uses[0] || uses[1]) {
      ASSERT_TRUE(extra.grad().defined()) << "step " << k;
      EXPECT_TRUE(at::allclose(extra.grad(), extra_mean, 1e-12, 1e-14)) << "step " << k;
    } else {
      EXPECT_FALSE(extra.grad().defined()) << "step " << k;  // no rank used it: like one process
    }
  }
}

TEST(GradReducer, UsedMaskAllReducedOnlyWhenAUsedSetChanges) { check_used_mask(UsedMask::kOnChange); }

TEST(GradReducer, UsedMaskAllReducedEveryStep) { check_used_mask(UsedMask::kEveryStep); }

// Compressed all-reduces (DDP's fp16/bf16 compression hooks): each rank's
// float gradient narrowed to the wire format and halved there, summed with
// one rounding, widened back. The used-set flag rides in the compressed
// last bucket too: `extra` is used by rank 1 in steps 0 and 1 only, so the
// mask is all-reduced in steps 0 and 2 (sets changed), not in 1 and 3.
void check_compressed(GradCompression compression, at::ScalarType wire) {
  MpiCommunicator comm(60);
  const int rank = comm.rank();
  const at::Tensor weight = at::cos(at::arange(6, at::kFloat) * 0.7f).requires_grad_();
  const at::Tensor extra = at::sin(at::arange(3, at::kFloat) + 0.3f).requires_grad_();
  ReducerOptions options{1e-9, 1e-9};  // a bucket each
  options.compression = compression;
  GradReducer reducer(comm, {{"weight", weight}, {"extra", extra}}, options);
  const auto narrowed_mean = [&](const at::Tensor& g0, const at::Tensor& g1) {
    const at::Tensor w0 = g0.to(wire).div(2), w1 = g1.to(wire).div(2);
    return (w0.to(at::kFloat) + w1.to(at::kFloat)).to(wire).to(at::kFloat);
  };
  const std::int64_t reductions[4] = {1, 1, 2, 2};
  for (int step = 0; step < 4; ++step) {
    weight.mutable_grad() = at::Tensor();
    extra.mutable_grad() = at::Tensor();
    const auto uses_extra = [&](int r) { return r == 1 && step < 2; };
    const auto loss_of = [&](int r, const at::Tensor& w, const at::Tensor& e) {
      at::Tensor loss = (w * w * (1.3f + r + step)).sum();
      if (uses_extra(r)) loss = loss + (e * w.narrow(0, 0, 3) * 2.1f).sum();
      return loss;
    };
    reducer.prepare_for_backward();
    loss_of(rank, weight, extra).backward();
    reducer.finalize();
    std::vector<at::Tensor> local[2];
    for (int r = 0; r < 2; ++r) {
      const at::Tensor w = weight.detach().clone().requires_grad_(), e = extra.detach().clone().requires_grad_();
      loss_of(r, w, e).backward();
      local[r] = {w.grad(), e.grad().defined() ? e.grad() : at::zeros_like(e)};
    }
    EXPECT_TRUE(at::equal(weight.grad(), narrowed_mean(local[0][0], local[1][0]))) << "step " << step;
    if (step < 2) {
      ASSERT_TRUE(extra.grad().defined()) << "step " << step;
      EXPECT_TRUE(at::equal(extra.grad(), narrowed_mean(local[0][1], local[1][1]))) << "step " << step;
    } else {
      EXPECT_FALSE(extra.grad().defined()) << "step " << step;
    }
    EXPECT_EQ(reducer.mask_reductions(), reductions[step]) << "step " << step;
  }
}

TEST(GradReducer, Fp16CompressedAllReduce) { check_compressed(GradCompression::kFp16, at::kHalf); }

TEST(GradReducer, Bf16CompressedAllReduce) { check_compressed(GradCompression::kBf16, at::kBFloat16); }

TEST(GradReducer, LayoutIsReverseOrderWithSmallFirstBucket) {
  MpiCommunicator comm(60);
  Net net;
  // first bucket: 16 bytes (two doubles); later buckets: 100 bytes.
  GradReducer reducer(comm, net.named(), ReducerOptions{100.0 / (1024 * 1024), 16.0 / (1024 * 1024)});
  const auto layout = reducer.bucket_layout();
  ASSERT_EQ(layout.size(), 4u);
  EXPECT_EQ(layout[0], (std::vector<std::string>{"never_used"}));  // 40 bytes, alone over the 16-byte cap
  EXPECT_EQ(layout[1], (std::vector<std::string>{"only_on_rank1", "second.bias", "second.weight"}));
  EXPECT_EQ(layout[2], (std::vector<std::string>{"first.bias"}));
  EXPECT_EQ(layout[3], (std::vector<std::string>{"first.weight"}));
}

// A communicator of one process that records what it was given and whose
// collectives never complete on their own (wait() only notes the call), for
// the reducer's local behaviour.
class RecordingCommunicator : public Communicator {
 public:
  struct RecordedWork : Work {
    explicit RecordedWork(bool* waited) : waited_(waited) {}
    void wait() override { *waited_ = true; }
    bool test() override { return false; }
    bool* waited_;
  };
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "recording"; }
  std::unique_ptr<Work> all_reduce_async(at::Tensor& tensor, ReduceOp) override {
    launched.push_back(tensor.clone());
    launched_memory.push_back(tensor.storage().data());
    return std::make_unique<RecordedWork>(&waited);
  }
  void broadcast(at::Tensor&, int) override {}
  at::Tensor all_gather(const at::Tensor& tensor) override { return tensor.unsqueeze(0).clone(); }
  void barrier() override {}
  std::unique_ptr<Communicator> duplicate(Progress) override { return std::make_unique<RecordingCommunicator>(); }
  std::vector<at::Tensor> launched;
  std::vector<const void*> launched_memory;  // each launch's storage
  bool waited = false;
};

// A channels-last gradient goes into its bucket in its own memory order (no
// reshape into a contiguous temporary) and comes back channels-last with
// the same values.
TEST(GradReducerLocal, ChannelsLastGradientsKeepTheirMemoryOrder) {
  RecordingCommunicator comm;
  at::Tensor weight = at::sin(at::arange(2 * 3 * 4 * 5, at::kDouble)).reshape({2, 3, 4, 5});
  weight = weight.contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
  GradReducer reducer(comm, {{"weight", weight}}, ReducerOptions{});
  reducer.prepare_for_backward();
  const at::Tensor scale = at::cos(at::arange(2 * 3 * 4 * 5, at::kDouble)).reshape({2, 3, 4, 5});
  (weight * scale).sum().backward();
  ASSERT_EQ(comm.launched.size(), 1u);
  // The bucket holds the gradient (= scale) in NHWC memory order, then the
  // used-set flag (1: the first step, nothing agreed yet).
  const std::int64_t n = weight.numel();
  ASSERT_EQ(comm.launched[0].numel(), n + 1);
  EXPECT_TRUE(at::equal(comm.launched[0].narrow(0, 0, n), scale.permute({0, 2, 3, 1}).reshape({-1})));
  EXPECT_EQ(comm.launched[0][n].item<double>(), 1.0);
  reducer.finalize();
  EXPECT_TRUE(weight.grad().is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(at::equal(weight.grad(), scale));
}

// Gradients as bucket views: parameters sharing a bucket have gradients in
// one memory block; from the second step on (each parameter then gets its
// zeroed view before backward) backward writes into that block and no
// gradient is copied: the gradients stay in the memory that the all-reduce
// is handed, the same every step, with the right values. A
// parameter that got a view but no gradient ends the step with none, as
// without views.
TEST(GradReducerLocal, GradientsAreViewsIntoTheirBucket) {
  RecordingCommunicator comm;
  const at::Tensor weight = at::cos(at::arange(6, at::kDouble)).reshape({2, 3}).requires_grad_();
  const at::Tensor bias = at::sin(at::arange(2, at::kDouble)).requires_grad_();
  const at::Tensor sometimes = at::ones({4}, at::kDouble).requires_grad_();
  GradReducer reducer(comm, {{"weight", weight}, {"bias", bias}, {"sometimes", sometimes}}, ReducerOptions{});
  ASSERT_EQ(reducer.num_buckets(), 1u);
  const void* block = nullptr;
  for (int step = 0; step < 3; ++step) {
    for (const at::Tensor& p : {weight, bias, sometimes}) p.mutable_grad() = at::Tensor();
    const std::size_t launches_before = comm.launched_memory.size();
    reducer.prepare_for_backward();
    if (step == 2) {
      // Handed out before backward: views of the bucket, zeroed.
      ASSERT_TRUE(weight.grad().defined());
      EXPECT_TRUE(weight.grad().is_alias_of(bias.grad()));
      EXPECT_EQ(weight.grad().abs().sum().item<double>(), 0.0);
    }
    at::Tensor loss = (weight.sum(1) * bias * (step + 1.0)).sum();
    if (step != 1) loss = loss + (sometimes * 2.0).sum();
    loss.backward();
    reducer.finalize();
    EXPECT_TRUE(weight.grad().is_alias_of(bias.grad())) << "step " << step;
    EXPECT_EQ(std::count(comm.launched_memory.begin() + static_cast<std::ptrdiff_t>(launches_before),
                         comm.launched_memory.end(), weight.grad().storage().data()),
              step == 0 ? 0 : 1)  // step 0: moved to the rebuilt bucket after its all-reduce
        << "step " << step;
    if (step == 0) block = weight.grad().storage().data();
    if (step == 2) EXPECT_EQ(weight.grad().storage().data(), block) << "the gradients moved";
    EXPECT_TRUE(at::equal(weight.grad(), bias.detach().unsqueeze(1).expand({2, 3}) * (step + 1.0)));
    EXPECT_TRUE(at::equal(bias.grad(), weight.detach().sum(1) * (step + 1.0)));
    if (step == 1) {
      EXPECT_FALSE(sometimes.grad().defined());  // handed a view, got no gradient: none
    } else {
      EXPECT_TRUE(at::equal(sometimes.grad(), at::full({4}, 2.0, at::kDouble)));
    }
  }
}

// The used-parameter mask goes through ReducerOptions::mask_comm (the
// trainer's host communicator on GPUs), the gradients through the reducer's
// own: one int per parameter, 1 where a gradient arrived.
TEST(GradReducerLocal, UsedMaskGoesThroughTheMaskCommunicator) {
  RecordingCommunicator grads;
  RecordingCommunicator masks;
  const at::Tensor used = at::ones({3}, at::kDouble).requires_grad_();
  const at::Tensor unused = at::ones({2}, at::kDouble).requires_grad_();
  GradReducer reducer(grads, {{"used", used}, {"unused", unused}}, ReducerOptions{25.0, 1.0, &masks});
  reducer.prepare_for_backward();
  (used * 3.0).sum().backward();
  reducer.finalize();
  ASSERT_EQ(masks.launched.size(), 1u);
  EXPECT_TRUE(at::equal(masks.launched[0], at::tensor(std::vector<int>{1, 0}, at::kInt)));
  ASSERT_EQ(grads.launched.size(), 1u);
  EXPECT_EQ(grads.launched[0].scalar_type(), at::kDouble);
  EXPECT_TRUE(at::equal(used.grad(), at::full({3}, 3.0, at::kDouble)));
  EXPECT_FALSE(unused.grad().defined());
}

// Destroyed while an error unwinds (a failed rank), the reducer does not wait
// for collectives in flight, which would end only at dist.timeout_s; destroyed
// normally, it still waits so nothing writes into freed memory.
TEST(GradReducerLocal, DestroyedDuringAFailureDoesNotWaitForCollectives) {
  RecordingCommunicator comm;
  const at::Tensor weight = at::ones({4}, at::kDouble).requires_grad_();
  try {
    GradReducer reducer(comm, {{"weight", weight}}, ReducerOptions{});
    reducer.prepare_for_backward();
    (weight * 2.0).sum().backward();
    ASSERT_EQ(comm.launched.size(), 1u);
    throw std::runtime_error("rank 1 stopped answering");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(comm.waited);
  {
    GradReducer reducer(comm, {{"weight", weight}}, ReducerOptions{});
    reducer.prepare_for_backward();
    (weight * 2.0).sum().backward();
  }
  EXPECT_TRUE(comm.waited);
}

}  // namespace
}  // namespace da::dist
