// SyncBatchNorm: on one rank it equals BatchNorm2d, reduced-precision inputs
// get float32 statistics, two ranks (threads) equal BatchNorm2d over the
// whole batch in double, and a model built with it uses it in every layer
// under the plain model's names.
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/utils.h>

#include "models/segmentation_model.h"
#include "models/sync_batch_norm.h"
#include "ranks/rank_sum.h"
#include "support/thread_rank.h"
#include "support/two_thread_sum.h"

namespace da::models {
namespace {

TEST(SyncBatchNorm, OneRankEqualsBatchNorm) {
  at::manual_seed(3);
  const at::Tensor input = at::randn({4, 5, 6, 7}) * 3 + 1;
  const at::Tensor upstream = at::randn({4, 5, 6, 7});
  torch::nn::BatchNorm2d plain(5);
  SyncBatchNorm2d synced(5, ranks::single_rank());
  {
    torch::NoGradGuard no_grad;
    plain->weight.copy_(at::rand({5}) + 0.5);
    plain->bias.copy_(at::randn({5}));
    synced->weight.copy_(plain->weight);
    synced->bias.copy_(plain->bias);
  }
  const at::Tensor x1 = input.clone().requires_grad_();
  const at::Tensor x2 = input.clone().requires_grad_();
  const at::Tensor y1 = plain->forward(x1);
  const at::Tensor y2 = synced->forward(x2);
  EXPECT_TRUE(at::allclose(y1, y2, 1e-5, 1e-5));
  (y1 * upstream).sum().backward();
  (y2 * upstream).sum().backward();
  EXPECT_TRUE(at::allclose(x1.grad(), x2.grad(), 1e-4, 1e-5)) << (x1.grad() - x2.grad()).abs().max();
  EXPECT_TRUE(at::allclose(plain->weight.grad(), synced->weight.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(plain->bias.grad(), synced->bias.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(plain->running_mean, synced->running_mean, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(plain->running_var, synced->running_var, 1e-5, 1e-6));
  EXPECT_EQ(synced->num_batches_tracked.item<int64_t>(), 1);
  plain->eval();
  synced->eval();
  EXPECT_TRUE(at::allclose(plain->forward(input), synced->forward(input), 1e-5, 1e-5));
}

// Under autocast a BatchNorm input is bf16 or fp16; the batch statistics
// must still be summed in float32 (a bf16 sum of 2048 values near 100 is off
// by hundreds), as BatchNorm2d on the float values of the same input.
TEST(SyncBatchNorm, ReducedPrecisionInputGetsFloat32Statistics) {
  at::manual_seed(4);
  const at::Tensor input = (at::randn({8, 2, 16, 16}) + 100).to(at::kBFloat16);
  torch::nn::BatchNorm2d plain(torch::nn::BatchNorm2dOptions(2).momentum(1.0));
  SyncBatchNorm2d synced(2, ranks::single_rank());
  synced->options.momentum(1.0);
  const at::Tensor expected = plain->forward(input.to(at::kFloat));
  const at::Tensor output = synced->forward(input);
  EXPECT_EQ(output.scalar_type(), at::kFloat);
  EXPECT_LT((synced->running_mean - plain->running_mean).abs().max().item<double>(), 1e-3);
  EXPECT_LT((synced->running_var - plain->running_var).abs().max().item<double>(), 1e-3);
  EXPECT_LT((output - expected).abs().max().item<double>(), 1e-3);
}

using test::TwoThreadSum;

using test::ThreadRank;

// The formulas, free of float32 rounding: in double, two ranks with half the
// batch each give BatchNorm2d's output, input gradients, running statistics
// and (summed over the ranks, as the gradient all-reduce does) parameter
// gradients over the whole batch to 1e-10. So the residual np2-vs-np1
// differences of sync_bn training in float32 (test_data_parallel) are
// rounding, amplified by BatchNorm's backward on tiny feature maps.
TEST(SyncBatchNorm, TwoRanksEqualBatchNormOverTheWholeBatchInDouble) {
  at::manual_seed(5);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor input = at::randn({6, 3, 4, 5}, f64) * 2 + 0.5;
  const at::Tensor upstream = at::randn({6, 3, 4, 5}, f64);
  torch::nn::BatchNorm2d plain(3);
  plain->to(at::kDouble);
  {
    torch::NoGradGuard no_grad;
    plain->weight.copy_(at::rand({3}, f64) + 0.5);
    plain->bias.copy_(at::randn({3}, f64));
  }
  const at::Tensor whole = input.clone().requires_grad_();
  const at::Tensor expected = plain->forward(whole);
  (expected * upstream).sum().backward();

  TwoThreadSum sum;
  std::vector<SyncBatchNorm2d> ranks;
  std::vector<at::Tensor> inputs, outputs(2);
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back(3, std::make_shared<ThreadRank>(sum, r));
    ranks[r]->to(at::kDouble);
    torch::NoGradGuard no_grad;
    ranks[r]->weight.copy_(plain->weight);
    ranks[r]->bias.copy_(plain->bias);
    inputs.push_back(input.slice(0, 3 * r, 3 * r + 3).clone().requires_grad_());
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      outputs[r] = ranks[r]->forward(inputs[r]);
      (outputs[r] * upstream.slice(0, 3 * r, 3 * r + 3)).sum().backward();
    });
  }
  for (auto& t : threads) t.join();

  for (int r = 0; r < 2; ++r) {
    const auto half = [&](const at::Tensor& t) { return t.slice(0, 3 * r, 3 * r + 3); };
    EXPECT_LT((outputs[r] - half(expected)).abs().max().item<double>(), 1e-10);
    EXPECT_LT((inputs[r].grad() - half(whole.grad())).abs().max().item<double>(), 1e-10);
    EXPECT_LT((ranks[r]->running_mean - plain->running_mean).abs().max().item<double>(), 1e-12);
    EXPECT_LT((ranks[r]->running_var - plain->running_var).abs().max().item<double>(), 1e-12);
  }
  const at::Tensor weight_grad = ranks[0]->weight.grad() + ranks[1]->weight.grad();
  const at::Tensor bias_grad = ranks[0]->bias.grad() + ranks[1]->bias.grad();
  EXPECT_LT((weight_grad - plain->weight.grad()).abs().max().item<double>(), 1e-10);
  EXPECT_LT((bias_grad - plain->bias.grad()).abs().max().item<double>(), 1e-10);
}

TEST(SyncBatchNorm, ModelBuiltWithSyncUsesItEverywhere) {
  ModelSpec spec{"tiny", 3, 2, false, ranks::single_rank()};
  auto model = make_segmentation_model(spec);
  std::size_t synced = 0, plain = 0;
  for (const auto& m : model->modules()) {
    synced += m->as<SyncBatchNorm2d>() != nullptr;
    plain += m->as<torch::nn::BatchNorm2d>() != nullptr;
  }
  EXPECT_GT(synced, 10u);
  EXPECT_EQ(plain, 0u);
  // Same names as a plain model, so checkpoints and weights load either way.
  auto reference = make_segmentation_model({"tiny", 3, 2});
  EXPECT_EQ(model->named_parameters().keys(), reference->named_parameters().keys());
  EXPECT_EQ(model->named_buffers().keys(), reference->named_buffers().keys());
}

}  // namespace
}  // namespace da::models
