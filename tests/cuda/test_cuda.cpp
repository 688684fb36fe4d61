// The GPU path's parts on a GPU (ctest label cuda; cuda_fixture.h says when
// and why they skip): the NCCL communicator and the reducer over it, the
// device feed, the loss scaler, SyncBN, autocast and GPU checkpoints.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>

#include <filesystem>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include "cuda/cuda_fixture.h"
#include "dist/communicator.h"
#include "dist/errors.h"
#include "dist/grad_reducer.h"
#include "models/segmentation_model.h"
#include "models/sync_batch_norm.h"
#include "setup/checkpoint.h"
#include "setup/communicator_rank_sum.h"
#include "support/process.h"
#include "trainer/device_feed.h"
#include "trainer/loss_scaler.h"

namespace da {
namespace {

namespace fs = std::filesystem;
using test::Cuda;

std::unique_ptr<dist::Communicator> nccl_world_of_one() {
  dist::CommunicatorOptions options;
  options.backend = "nccl";
  options.cuda_tensors = true;
  return dist::make_communicator(options);
}

// NCCL at world size 1: a sum, min and max of one rank is the rank's tensor,
// in every dtype training uses and in channels-last layout; a non-dense
// tensor is refused rather than reduced wrongly.
TEST_F(Cuda, NcclCommunicatorWorldOfOneEveryDtypeAndLayout) {
  const auto comm = nccl_world_of_one();
  EXPECT_EQ(comm->backend(), "nccl");
  for (const auto dtype : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16, at::kInt, at::kLong}) {
    const at::Tensor expected = at::arange(24, on_gpu(dtype)).reshape({2, 3, 2, 2});
    for (const auto op : {dist::ReduceOp::kSum, dist::ReduceOp::kMin, dist::ReduceOp::kMax}) {
      at::Tensor t = expected.clone();
      comm->all_reduce(t, op);
      EXPECT_TRUE(at::equal(t, expected)) << dtype;
    }
    at::Tensor channels_last = expected.contiguous(at::MemoryFormat::ChannelsLast);
    comm->all_reduce(channels_last);
    EXPECT_TRUE(channels_last.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(at::equal(channels_last, expected)) << dtype;
  }
  at::Tensor strided = at::ones({4, 6}, on_gpu(at::kFloat)).slice(1, 0, 6, 2);
  EXPECT_THROW(comm->all_reduce(strided), dist::DistError);
  const at::Tensor gathered = comm->all_gather(at::full({3}, 2.0, on_gpu(at::kFloat)));
  EXPECT_EQ(gathered.sizes(), (std::vector<std::int64_t>{1, 3}));
  EXPECT_TRUE(at::equal(gathered[0], at::full({3}, 2.0, on_gpu(at::kFloat))));
}

// A checkpoint saved from GPU tensors loads on the CPU, values unchanged.
TEST_F(Cuda, GpuSavedCheckpointLoadsOnTheCpu) {
  const std::string dir = test::make_temp_dir("da_cuda_ckpt");
  torch::nn::Linear model(3, 2);
  model->to(at::Device(at::kCUDA, 0));
  std::vector<setup::WeightedMethod> methods;
  setup::save_checkpoint(dir + "/gpu.pt", setup::CheckpointParts{*model, methods, nullptr},
                           setup::TrainingProgress{}, "run: {}\n");
  const models::StateDict state = setup::read_checkpoint_model(dir + "/gpu.pt");
  EXPECT_TRUE(state.at("weight").device().is_cpu());
  EXPECT_TRUE(at::equal(state.at("weight"), model->weight.detach().cpu()));
  fs::remove_all(dir);
}

// A bf16 and an fp16 autocast step of the U-Net against fp32: the logits
// within the precision of 8- and 11-bit mantissas over a few hundred
// accumulations (relative to the logits' spread), and the parameters'
// gradient of the cross-entropy within 10 % (bf16) and 3 % (fp16) of the
// fp32 gradient's norm (backward adds the rounding of every layer again).
TEST_F(Cuda, AutocastStepsAgreeWithFp32) {
  models::ModelSpec spec;
  spec.encoder = "tiny";
  spec.in_channels = 3;
  spec.classes = 4;
  models::SegmentationModel model = models::make_segmentation_model(spec);
  model->to(at::Device(at::kCUDA, 0));
  model->eval();  // BatchNorm's running statistics stay as they are between the passes
  at::manual_seed(7);
  const at::Tensor x = at::randn({2, 3, 64, 64}, on_gpu(at::kFloat));
  const at::Tensor mask = at::randint(0, 4, {2, 64, 64}, on_gpu(at::kLong));
  // The logits and the flattened parameter gradient of one step.
  const auto step = [&] {
    model->zero_grad();
    const at::Tensor logits = model->forward(x).logits;
    at::cross_entropy_loss(logits.to(at::kFloat), mask).backward();
    std::vector<at::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().reshape({-1}));
    return std::pair{logits.detach().to(at::kFloat), at::cat(grads)};
  };
  const auto [fp32, grad32] = step();
  const double spread = fp32.std().item<double>();
  for (const auto& [dtype, tolerance, grad_tolerance] :
       {std::tuple{at::kBFloat16, 0.05, 0.10}, std::tuple{at::kHalf, 0.01, 0.03}}) {
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    const auto [low, grad] = step();
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    at::autocast::clear_cache();
    EXPECT_LT((low - fp32).abs().max().item<double>(), tolerance * spread * 10) << dtype;
    EXPECT_LT((low - fp32).abs().mean().item<double>(), tolerance * spread) << dtype;
    EXPECT_LT((grad - grad32).norm().item<double>(), grad_tolerance * grad32.norm().item<double>()) << dtype;
  }
}

// The reducer over NCCL (on a duplicate communicator, as in training):
// gradients accumulated over three micro-batches, the last one reduced, equal
// the summed local gradients; a channels-last weight keeps its layout and a
// parameter nobody used keeps no gradient.
TEST_F(Cuda, ReducerOverNcclAccumulatesMicroBatches) {
  const auto world = nccl_world_of_one();
  const auto grads = world->duplicate(dist::Progress::kCaller);
  const auto f32 = on_gpu(at::kFloat);
  const at::Tensor weight0 = at::sin(at::arange(2 * 3 * 3 * 3, f32)).reshape({2, 3, 3, 3});
  const at::Tensor bias0 = at::cos(at::arange(2, f32));
  const auto micro_loss = [](const at::Tensor& w, const at::Tensor& b, int m) {
    const at::Tensor x = at::sin(at::arange(2 * 3 * 6 * 6, w.options()) * (m + 1.0)).reshape({2, 3, 6, 6});
    return (at::conv2d(x, w) + b.view({1, 2, 1, 1})).pow(2).mean();
  };
  at::Tensor weight = weight0.contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
  at::Tensor bias = bias0.clone().requires_grad_();
  at::Tensor unused = at::ones({3}, f32).requires_grad_();
  dist::GradReducer reducer(*grads, {{"weight", weight}, {"bias", bias}, {"unused", unused}},
                            dist::ReducerOptions{1e-6, 1e-6});
  for (int m = 0; m < 3; ++m) {
    reducer.prepare_for_backward(/*sync=*/m == 2);
    micro_loss(weight, bias, m).backward();
    reducer.finalize();
  }
  at::Tensor weight_ref = weight0.clone().requires_grad_();
  at::Tensor bias_ref = bias0.clone().requires_grad_();
  for (int m = 0; m < 3; ++m) micro_loss(weight_ref, bias_ref, m).backward();
  EXPECT_TRUE(weight.grad().is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(at::allclose(weight.grad(), weight_ref.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(bias.grad(), bias_ref.grad(), 1e-5, 1e-6));
  EXPECT_FALSE(unused.grad().defined());
}

// The reducer's NCCL path with bf16 all-reduces and gradients as bucket
// views: each step's gradient is the float32 one rounded to bf16 (one rank:
// the sum is the rank's own), in the bucket's memory, and from the second
// step on the gradients keep that memory.
TEST_F(Cuda, ReducerOverNcclCompressesToBf16IntoBucketViews) {
  const auto world = nccl_world_of_one();
  const auto grads = world->duplicate(dist::Progress::kCaller);
  const auto f32 = on_gpu(at::kFloat);
  at::Tensor weight = at::sin(at::arange(6, f32) * 0.3).requires_grad_();
  at::Tensor bias = at::cos(at::arange(2, f32)).requires_grad_();
  dist::ReducerOptions options;
  options.compression = dist::GradCompression::kBf16;
  dist::GradReducer reducer(*grads, {{"weight", weight}, {"bias", bias}}, options);
  const void* memory = nullptr;
  for (int step = 0; step < 3; ++step) {
    weight.mutable_grad() = at::Tensor();
    bias.mutable_grad() = at::Tensor();
    const auto loss_of = [&](const at::Tensor& w, const at::Tensor& b) {
      return (w.pow(2) * (step + 1.1)).sum() + (b * w.narrow(0, 0, 2)).sum();
    };
    reducer.prepare_for_backward();
    loss_of(weight, bias).backward();
    reducer.finalize();
    const at::Tensor w = weight.detach().clone().requires_grad_(), b = bias.detach().clone().requires_grad_();
    loss_of(w, b).backward();
    EXPECT_TRUE(at::equal(weight.grad(), w.grad().to(at::kBFloat16).to(at::kFloat))) << "step " << step;
    EXPECT_TRUE(at::equal(bias.grad(), b.grad().to(at::kBFloat16).to(at::kFloat))) << "step " << step;
    EXPECT_TRUE(weight.grad().is_alias_of(bias.grad())) << "step " << step;
    if (step == 1) memory = weight.grad().storage().data();
    if (step == 2) {
      EXPECT_EQ(weight.grad().storage().data(), memory);
    }
  }
}

// Pairs pushed from page-locked memory come out on the GPU in push order
// with their values, several in flight at once.
TEST_F(Cuda, DeviceFeedKeepsOrderAndValuesOfPinnedPairs) {
  const auto feed = trainer::make_device_feed(at::Device(at::kCUDA, 0));
  std::vector<io::PairedBatch> pushed;
  for (int i = 0; i < 3; ++i) {
    io::PairedBatch pair;
    pair.source.image = (at::arange(2 * 3 * 8 * 8, at::kFloat).reshape({2, 3, 8, 8}) + 100 * i).pin_memory();
    pair.source.mask = at::full({2, 8, 8}, i, at::kByte).pin_memory();
    pair.target.image = at::full({2, 3, 8, 8}, i + 10, at::kByte).pin_memory();
    pair.source.indices = {2 * i, 2 * i + 1};
    ASSERT_TRUE(pair.source.image.is_pinned());
    pushed.push_back(pair);
    feed->push(pair);
  }
  for (int i = 0; i < 3; ++i) {
    const io::PairedBatch taken = feed->take();
    ASSERT_TRUE(taken.source.image.is_cuda() && taken.source.mask.is_cuda() && taken.target.image.is_cuda());
    EXPECT_FALSE(taken.target.mask.defined());
    EXPECT_TRUE(at::equal(taken.source.image.cpu(), pushed[i].source.image)) << i;
    EXPECT_TRUE(at::equal(taken.source.mask.cpu(), pushed[i].source.mask)) << i;
    EXPECT_TRUE(at::equal(taken.target.image.cpu(), pushed[i].target.image)) << i;
    EXPECT_EQ(taken.source.indices, pushed[i].source.indices);
  }
}

// fp16's loss scaler on GPU gradients: unscaled exactly (a power of two),
// an Inf or a NaN anywhere skips the step and halves the scale, two clean
// steps double it.
TEST_F(Cuda, LossScalerSkipsAnOverflowOnTheGpu) {
  trainer::LossScaler scaler(1024.0, 2);
  at::Tensor a = at::zeros({3}, on_gpu(at::kFloat)).requires_grad_();
  at::Tensor b = at::zeros({2}, on_gpu(at::kFloat)).requires_grad_();
  a.mutable_grad() = at::full({3}, 2048.0, on_gpu(at::kFloat));
  b.mutable_grad() = at::full({2}, -512.0, on_gpu(at::kFloat));
  EXPECT_TRUE(scaler.unscale({a, b}));
  EXPECT_TRUE(at::equal(a.grad().cpu(), at::full({3}, 2.0)));
  EXPECT_TRUE(at::equal(b.grad().cpu(), at::full({2}, -0.5)));
  scaler.update(true);
  scaler.update(true);
  EXPECT_DOUBLE_EQ(scaler.scale(), 2048.0);
  for (const float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    b.mutable_grad() = at::full({2}, 1.0, on_gpu(at::kFloat));
    b.mutable_grad()[1] = bad;
    EXPECT_FALSE(scaler.unscale({a, b})) << bad;
    scaler.update(false);
  }
  EXPECT_DOUBLE_EQ(scaler.scale(), 512.0);
  EXPECT_EQ(scaler.good_steps(), 0);
}

// SyncBatchNorm2d over NCCL (a world of one) equals BatchNorm2d on the GPU:
// output, input and parameter gradients, running statistics; channels-last
// input as in training.
TEST_F(Cuda, SyncBatchNormOverNcclEqualsBatchNorm) {
  const auto comm = nccl_world_of_one();
  at::manual_seed(6);
  const at::Tensor input =
      (at::randn({4, 5, 6, 7}, on_gpu(at::kFloat)) * 3 + 1).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor upstream = at::randn({4, 5, 6, 7}, on_gpu(at::kFloat));
  torch::nn::BatchNorm2d plain(5);
  models::SyncBatchNorm2d synced(5, std::make_shared<setup::CommunicatorRankSum>(*comm));
  plain->to(at::Device(at::kCUDA, 0));
  synced->to(at::Device(at::kCUDA, 0));
  const at::Tensor x1 = input.clone().requires_grad_();
  const at::Tensor x2 = input.clone().requires_grad_();
  const at::Tensor y1 = plain->forward(x1);
  const at::Tensor y2 = synced->forward(x2);
  EXPECT_TRUE(at::allclose(y1, y2, 1e-4, 1e-5));
  (y1 * upstream).sum().backward();
  (y2 * upstream).sum().backward();
  EXPECT_TRUE(at::allclose(x1.grad(), x2.grad(), 1e-3, 1e-4)) << (x1.grad() - x2.grad()).abs().max();
  EXPECT_TRUE(at::allclose(plain->weight.grad(), synced->weight.grad(), 1e-3, 1e-4));
  EXPECT_TRUE(at::allclose(plain->bias.grad(), synced->bias.grad(), 1e-3, 1e-4));
  EXPECT_TRUE(at::allclose(plain->running_mean, synced->running_mean, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(plain->running_var, synced->running_var, 1e-4, 1e-6));
}

}  // namespace
}  // namespace da
