// Collective order under mpirun -np 2, with dist.sync_bn and a branch one
// rank skips. SyncBatchNorm all-reduces inside backward, and the reducer
// launches a bucket as soon as its gradients are ready: rank 0 uses a head
// whose gradient is ready before SyncBN's backward collectives, rank 1 skips
// it, so rank 0 launches that bucket before them and rank 1 only in
// finalize(), after them. MPI and NCCL pair collectives by their order on a
// communicator: on one communicator these would pair crosswise (here all of
// C doubles: silently wrong sums, or a hang). The reducer runs on a
// duplicate communicator (as the trainer's), where buckets always start in
// index order, and SyncBN on the world's, in the graph's order; so every
// rank issues each communicator's collectives in the same order. Checked
// against one process computing both ranks' losses with BatchNorm over the
// whole batch.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>

#include <memory>

#include "dist/grad_reducer.h"
#include "dist/mpi_communicator.h"
#include "models/sync_batch_norm.h"
#include "setup/communicator_rank_sum.h"

namespace da::dist {
namespace {

constexpr std::int64_t kChannels = 4;
constexpr double kEps = 1e-5;

const at::TensorOptions kF64 = at::TensorOptions().dtype(at::kDouble);

at::Tensor input_of(int rank) { return at::sin(at::arange(2 * 3 * 5 * 5, kF64) * (rank + 1.0)).reshape({2, 3, 5, 5}); }

// A rank's loss from its normalised features; only rank 0 runs the head.
at::Tensor loss_of(const at::Tensor& z, const at::Tensor& head, bool with_head) {
  at::Tensor loss = z.sin().sum() * 0.1;
  if (with_head) loss = loss + (z.mean({0, 2, 3}) * head).sum();
  return loss;
}

struct Params {
  at::Tensor conv = at::sin(at::arange(kChannels * 3, kF64) + 0.5).reshape({kChannels, 3, 1, 1});
  at::Tensor weight = at::cos(at::arange(kChannels, kF64)) + 1.5;
  at::Tensor bias = at::sin(at::arange(kChannels, kF64) + 2.0);
  at::Tensor head = at::cos(at::arange(kChannels, kF64) + 1.0);
};

// The reducer's buckets progressing on the caller's MPI calls or on the
// duplicate's own thread (dist.mpi_progress), beside SyncBN's collectives.
class CollectiveOrder : public ::testing::TestWithParam<Progress> {};

TEST_P(CollectiveOrder, SyncBatchNormWithABranchOneRankSkips) {
  MpiCommunicator world(60);
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const std::unique_ptr<Communicator> grads = world.duplicate(GetParam());
  const int rank = world.rank();
  const Params init;

  const at::Tensor conv = init.conv.clone().requires_grad_();
  const at::Tensor head = init.head.clone().requires_grad_();
  models::SyncBatchNorm2d bn(kChannels, std::make_shared<setup::CommunicatorRankSum>(world));
  bn->to(at::kDouble);
  {
    at::NoGradGuard no_grad;
    bn->weight.copy_(init.weight);
    bn->bias.copy_(init.bias);
  }
  // One bucket per parameter; "head" (registered last) is bucket 0.
  GradReducer reducer(*grads, {{"conv", conv}, {"bn.weight", bn->weight}, {"bn.bias", bn->bias}, {"head", head}},
                      ReducerOptions{1e-9, 1e-9});
  reducer.prepare_for_backward();
  loss_of(bn->forward(at::conv2d(input_of(rank), conv)), head, rank == 0).backward();
  reducer.finalize();

  // One process, both ranks' halves of the batch, BatchNorm over all of it:
  // the gradient of the mean of the two ranks' losses.
  Params ref;
  for (at::Tensor* p : {&ref.conv, &ref.weight, &ref.bias, &ref.head}) p->requires_grad_();
  const at::Tensor z = at::batch_norm(at::conv2d(at::cat({input_of(0), input_of(1)}), ref.conv), ref.weight, ref.bias,
                                      {}, {}, /*training=*/true, 0.1, kEps, /*cudnn_enabled=*/false);
  ((loss_of(z.slice(0, 0, 2), ref.head, true) + loss_of(z.slice(0, 2, 4), ref.head, false)) / 2).backward();

  EXPECT_LT((conv.grad() - ref.conv.grad()).abs().max().item<double>(), 1e-10);
  EXPECT_LT((bn->weight.grad() - ref.weight.grad()).abs().max().item<double>(), 1e-10);
  EXPECT_LT((bn->bias.grad() - ref.bias.grad()).abs().max().item<double>(), 1e-10);
  ASSERT_TRUE(head.grad().defined());
  EXPECT_LT((head.grad() - ref.head.grad()).abs().max().item<double>(), 1e-10);
}

INSTANTIATE_TEST_SUITE_P(Progress, CollectiveOrder, ::testing::Values(Progress::kCaller, Progress::kThread),
                         [](const auto& info) { return info.param == Progress::kThread ? "Thread" : "Caller"; });

}  // namespace
}  // namespace da::dist
