// The GPU path on a GPU (ctest label cuda). Every test skips, saying why,
// where no CUDA device is visible: on CPU machines, and for the rest of the
// suite, which runs with CUDA_VISIBLE_DEVICES empty so that it means the same
// on a GPU machine. tools/gpu/ runs these on a borrowed GPU.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/nn/modules/linear.h>

#include <filesystem>
#include <vector>

#include "dist/communicator.h"
#include "dist/errors.h"
#include "models/segmentation_model.h"
#include "support/process.h"
#include "trainer/checkpoint.h"

namespace da {
namespace {

namespace fs = std::filesystem;

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) {
      GTEST_SKIP() << "no CUDA device visible (torch::cuda::device_count() is 0, or CUDA_VISIBLE_DEVICES hides "
                      "them): the cuda tests need a GPU";
    }
  }
  static at::TensorOptions on_gpu(at::ScalarType dtype) { return at::TensorOptions().dtype(dtype).device(at::kCUDA, 0); }
};

// NCCL at world size 1: a sum, min and max of one rank is the rank's tensor,
// in every dtype training uses and in channels-last layout; a non-dense
// tensor is refused rather than reduced wrongly.
TEST_F(Cuda, NcclCommunicatorWorldOfOneEveryDtypeAndLayout) {
  dist::CommunicatorOptions options;
  options.backend = "nccl";
  options.cuda_tensors = true;
  const auto comm = dist::make_communicator(options);
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
  std::vector<trainer::WeightedMethod> methods;
  trainer::save_checkpoint(dir + "/gpu.pt", trainer::CheckpointParts{*model, methods, nullptr},
                           trainer::TrainingProgress{}, "run: {}\n");
  const models::StateDict state = trainer::read_checkpoint_model(dir + "/gpu.pt");
  EXPECT_TRUE(state.at("weight").device().is_cpu());
  EXPECT_TRUE(at::equal(state.at("weight"), model->weight.detach().cpu()));
  fs::remove_all(dir);
}

// bf16 and fp16 autocast forwards of the U-Net agree with fp32 within the
// precision of their 8- and 11-bit mantissas over a few hundred
// accumulations (relative to the logits' spread).
TEST_F(Cuda, AutocastForwardsAgreeWithFp32) {
  models::ModelSpec spec;
  spec.encoder = "tiny";
  spec.in_channels = 3;
  spec.classes = 4;
  models::SegmentationModel model = models::make_segmentation_model(spec);
  model->to(at::Device(at::kCUDA, 0));
  model->eval();
  const at::Tensor x = at::randn({2, 3, 64, 64}, at::TensorOptions().device(at::kCUDA, 0));
  const at::Tensor fp32 = model->forward(x).logits.detach();
  const double spread = fp32.std().item<double>();
  for (const auto& [dtype, tolerance] : {std::pair{at::kBFloat16, 0.05}, std::pair{at::kHalf, 0.01}}) {
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    const at::Tensor low = model->forward(x).logits.detach().to(at::kFloat);
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    at::autocast::clear_cache();
    EXPECT_LT((low - fp32).abs().max().item<double>(), tolerance * spread * 10) << dtype;
    EXPECT_LT((low - fp32).abs().mean().item<double>(), tolerance * spread) << dtype;
  }
}

}  // namespace
}  // namespace da
