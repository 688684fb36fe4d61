// Training on a GPU (ctest label cuda; skipped without one, see
// cuda_fixture.h): steps that never make the host wait for the GPU, and
// da_dist at one rank on NCCL against two ranks sharing the GPU over MPI.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "cuda/cuda_fixture.h"
#include "dist/local_communicator.h"
#include "io/tile_loader.h"
#include "setup/loader_setup.h"
#include "support/process.h"
#include "trainer/data_parallel_check.h"
#include "trainer/trainer.h"
#include "trainer/training_fixture.h"

namespace da {
namespace {

namespace fs = std::filesystem;
using test::Cuda;

// The first training batch of a domain as the trainer's loader delivers it
// on a GPU: stored pixels in page-locked memory (copied out of the loader's
// reused buffers).
io::Batch first_batch(const config::Config& config, bool source) {
  io::LoaderOptions options = setup::loader_options(config.data, config.run.seed + (source ? 0 : 1),
                                                      setup::LoaderRole::kTraining, source, 0, 1);
  options.normalize = setup::training_loader_normalizes(config.data, /*on_gpu=*/true);
  io::TileLoader loader(options, source ? config.data.source.train : config.data.target.train);
  loader.start_epoch(0);
  std::optional<io::Batch> batch = loader.next();
  if (!batch) throw std::runtime_error("no training batch");
  io::Batch copy = *batch;
  copy.image = batch->image.clone().pin_memory();
  if (batch->mask.defined()) copy.mask = batch->mask.clone().pin_memory();
  return copy;
}

// c10's sync-debug mode turns every host synchronisation Torch makes
// (blocking copies, item(), stream and device synchronisation) into an
// error. Training steps (feed, normalisation on the device, autocast,
// channels-last, DANN, AdamW with clipping) run under it after one warm-up
// step: none may wait for the GPU. fp16 is left out: its loss scaler reads
// one overflow flag per step, as PyTorch's GradScaler does.
TEST_F(Cuda, TrainingStepsNeverSynchroniseTheHost) {
  for (const std::string precision : {"fp32", "bf16"}) {
    const std::string dir = test::make_temp_dir("da_cuda_sync");
    const config::Config config = test::training_config(
        dir + "/run", "{name: dann, hidden_size: 8}",
        {"run.device=cuda", "run.precision=" + precision, "run.memory_format=channels_last",
         "data.normalize.on=device", "optimizer.grad_clip_norm=1.0"});
    dist::LocalCommunicator comm;
    trainer::Trainer trainer(config, config::to_yaml(config), comm, dist::WorldInfo{}, dir + "/run");
    const io::PairedBatch pair{first_batch(config, true), first_batch(config, false)};
    trainer.train_on_fixed_pair(pair, 1);
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
    try {
      trainer.train_on_fixed_pair(pair, 3);
    } catch (const std::exception& e) {
      ADD_FAILURE() << precision << ": a training step synchronised the host: " << e.what();
    }
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
    torch::cuda::synchronize();
    for (const at::Tensor& p : trainer.parameters()) {
      ASSERT_TRUE(p.is_cuda());
      EXPECT_TRUE(at::isfinite(p).all().item<bool>()) << precision;
    }
    fs::remove_all(dir);
  }
}

// da_dist itself: one rank on NCCL with batch 4 trains the model that two
// ranks sharing the one GPU, over the MPI backend (GPU tensors staged through
// page-locked memory), train with batch 2 each. cuDNN's backward sums in no
// fixed order, so the tolerance is wider than the CPU's 1e-5.
TEST_F(Cuda, OneRankOnNcclEqualsTwoRanksSharingTheGpuOverMpi) {
  const std::string dir = test::make_temp_dir("da_cuda_dp");
  test::RankComparison how;
  how.one_rank_sets = {"run.device=cuda", "dist.backend=nccl"};
  how.two_rank_sets = {"run.device=cuda", "dist.backend=mpi"};
  how.tolerance = 1e-4;
  how.iou_tolerance = 2e-3;
  EXPECT_GT(test::expect_two_ranks_equal_one_rank(dir, "{name: dann, hidden_size: 8}", how), 0u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace da
