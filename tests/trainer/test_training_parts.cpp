// Pieces of the training loop on their own: callbacks, the loss scaler, the
// metrics log line, validation padding, BatchNorm modes of a step,
// checkpoint errors and the host allocator setting.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/cuda.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>

#include <malloc.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>

#include "callbacks/da_monitor.h"
#include "callbacks/early_stopping.h"
#include "callbacks/model_checkpoint.h"
#include "log/metrics_log.h"
#include "methods/registry.h"
#include "setup/checkpoint.h"
#include "setup/host_allocator.h"
#include "support/process.h"
#include "trainer/loss_scaler.h"
#include "trainer/step_log_sums.h"
#include "trainer/training_step.h"
#include "trainer/validation.h"

namespace da {
namespace {

namespace fs = std::filesystem;

callbacks::EpochContext context_for(std::int64_t epoch, std::vector<std::string>* written) {
  callbacks::EpochContext c;
  c.epoch = epoch;
  c.validated = true;
  c.save_checkpoint = [written](const std::string& path) {
    written->push_back(fs::path(path).filename().string());
    test::write_text(path, "x");
  };
  return c;
}

TEST(Callbacks, CheckpointWritesLastBestAndKeepsTheNewestK) {
  const std::string dir = test::make_temp_dir("da_ckpt");
  config::CheckpointOptions options;
  options.monitor = "iou/target_val";
  options.every_n_epochs = 2;
  options.keep = 2;
  callbacks::ModelCheckpoint checkpoint(options, dir);
  const std::vector<double> scores{0.3, 0.5, 0.4, 0.6, 0.2, 0.1};
  std::vector<std::string> written;
  for (std::size_t e = 0; e < scores.size(); ++e) {
    checkpoint.on_epoch_end(context_for(static_cast<std::int64_t>(e), &written), {{"iou/target_val", scores[e]}});
  }
  const std::vector<std::string> expected{"last.pt", "best.pt", "last.pt", "epoch-0002.pt", "best.pt",
                                          "last.pt", "last.pt", "epoch-0004.pt", "best.pt", "last.pt",
                                          "last.pt", "epoch-0006.pt"};
  EXPECT_EQ(written, expected);
  EXPECT_DOUBLE_EQ(checkpoint.best(), 0.6);
  EXPECT_FALSE(fs::exists(dir + "/epoch-0002.pt"));  // keep 2: the oldest went
  EXPECT_TRUE(fs::exists(dir + "/epoch-0004.pt"));
  EXPECT_TRUE(fs::exists(dir + "/epoch-0006.pt"));

  // Its state survives a checkpoint: a resumed callback keeps the best value and the kept files.
  callbacks::Metrics scalars;
  checkpoint.save_state(scalars);
  callbacks::ModelCheckpoint resumed(options, dir);
  resumed.load_state(scalars);
  std::vector<std::string> later;
  resumed.on_epoch_end(context_for(6, &later), {{"iou/target_val", 0.55}});
  resumed.on_epoch_end(context_for(7, &later), {{"iou/target_val", 0.65}});
  EXPECT_EQ(later, (std::vector<std::string>{"last.pt", "last.pt", "epoch-0008.pt", "best.pt"}));
  EXPECT_FALSE(fs::exists(dir + "/epoch-0004.pt"));
  fs::remove_all(dir);
}

TEST(Callbacks, EarlyStoppingCountsValidationsWithoutImprovement) {
  config::EarlyStoppingOptions options;
  options.enabled = true;
  options.monitor = "loss";
  options.mode = "min";
  options.patience = 2;
  options.min_delta = 0.01;
  callbacks::EarlyStopping stopping(options);
  std::vector<std::string> unused;
  const std::vector<double> values{1.0, 0.95, 0.945, 0.96};  // 0.945 is within min_delta: no improvement
  for (std::size_t e = 0; e < values.size(); ++e) {
    callbacks::Metrics m{{"loss", values[e]}};
    stopping.on_validation_end(context_for(static_cast<std::int64_t>(e), &unused), m);
    EXPECT_EQ(stopping.should_stop(), e == 3) << "after epoch " << e;
  }
  callbacks::Metrics wrong{{"other", 1.0}};
  EXPECT_THROW(stopping.on_validation_end(context_for(4, &unused), wrong), std::runtime_error);
}

TEST(Callbacks, DaMonitorGapAndDropFromTheBaseline) {
  config::DaMonitorOptions options;
  callbacks::DaMonitor monitor(options);
  std::vector<std::string> unused;
  callbacks::Metrics first{{"iou/source_val", 0.8}, {"iou/target_val", 0.3}};
  monitor.on_validation_end(context_for(0, &unused), first);
  EXPECT_DOUBLE_EQ(first.at("da_monitor/gap"), 0.5);
  EXPECT_DOUBLE_EQ(first.at("da_monitor/source_drop"), 0.0);
  callbacks::Metrics second{{"iou/source_val", 0.7}, {"iou/target_val", 0.5}};
  monitor.on_validation_end(context_for(1, &unused), second);
  EXPECT_NEAR(second.at("da_monitor/source_drop"), 0.1, 1e-12);
  EXPECT_NEAR(second.at("da_monitor/gap"), 0.2, 1e-12);
  callbacks::DaMonitor warm(options);
  warm.set_baseline(0.9);
  callbacks::Metrics third{{"iou/source_val", 0.7}, {"iou/target_val", 0.5}};
  warm.on_validation_end(context_for(0, &unused), third);
  EXPECT_NEAR(third.at("da_monitor/source_drop"), 0.2, 1e-12);
}

TEST(Callbacks, ImprovesHandlesModesDeltaAndNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(callbacks::improves(0.5, nan, "max"));
  EXPECT_FALSE(callbacks::improves(nan, 0.5, "max"));
  EXPECT_TRUE(callbacks::improves(0.6, 0.5, "max"));
  EXPECT_FALSE(callbacks::improves(0.6, 0.5, "min"));
  EXPECT_FALSE(callbacks::improves(0.505, 0.5, "max", 0.01));
}

TEST(LossScaler, SkipsOverflowHalvesAndGrows) {
  trainer::LossScaler scaler(8.0, 2);
  at::Tensor p = at::zeros({2}).requires_grad_();
  p.mutable_grad() = at::tensor({8.0f, 16.0f});
  EXPECT_TRUE(scaler.unscale({p}));
  EXPECT_TRUE(at::equal(p.grad(), at::tensor({1.0f, 2.0f})));
  scaler.update(true);
  scaler.update(true);
  EXPECT_DOUBLE_EQ(scaler.scale(), 16.0);  // two clean steps: doubled
  p.mutable_grad() = at::tensor({std::numeric_limits<float>::infinity(), 1.0f});
  EXPECT_FALSE(scaler.unscale({p}));
  scaler.update(false);
  EXPECT_DOUBLE_EQ(scaler.scale(), 8.0);
  EXPECT_EQ(scaler.good_steps(), 0);
  EXPECT_DOUBLE_EQ(scaler.scale_loss(at::tensor(2.0)).item<double>(), 16.0);
}

TEST(MetricsLog, JsonLineEscapesAndWritesNaNAsNull) {
  const std::string line = log::metrics_json(
      "epoch", 2, 40, {{"iou/target_val", 0.25}, {"odd\"key", 1.5}, {"f1/x", std::nan("")}});
  EXPECT_EQ(line,
            "{\"kind\": \"epoch\", \"epoch\": 2, \"step\": 40, \"f1/x\": null, \"iou/target_val\": 0.25, "
            "\"odd\\\"key\": 1.5}");
}

TEST(Validation, OwnTilesLeaveOutThePadding) {
  // 5 tiles on 2 ranks with batch 2: rank 0 visits 0 2 4 | 0 (batch wrap), rank 1 visits 1 3 0 (padding) | 1.
  const std::vector<std::int64_t> rank0{0, 2, 4, 0};
  const std::vector<std::int64_t> rank1{1, 3, 0, 1};
  std::set<std::int64_t> seen;
  for (const auto& [rank, order] : {std::pair{0, rank0}, std::pair{1, rank1}}) {
    std::int64_t last = -1;
    for (const std::int64_t tile : order) {
      if (trainer::is_own_tile(tile, last, rank, 2)) {
        EXPECT_TRUE(seen.insert(tile).second) << "tile " << tile << " counted twice";
        last = tile;
      }
    }
  }
  EXPECT_EQ(seen, (std::set<std::int64_t>{0, 1, 2, 3, 4}));
}

class StepBatchNorm : public ::testing::Test {
 protected:
  // Two domains with very different statistics.
  io::PairedBatch batch() const {
    at::manual_seed(5);
    io::PairedBatch b;
    b.source.image = at::randn({2, 3, 32, 32});
    b.source.mask = at::randint(0, 3, {2, 32, 32}, at::kLong);
    b.target.image = at::randn({2, 3, 32, 32}) * 3 + 2;
    return b;
  }
  models::SegmentationModel model(bool dsbn) const {
    at::manual_seed(1);
    return models::make_segmentation_model({"tiny", 3, 3, dsbn, nullptr});
  }
  std::vector<setup::WeightedMethod> entropy() const {
    methods::Params params({}, "method");
    std::vector<setup::WeightedMethod> m;
    m.push_back({methods::Registry::instance().create("entropy", params, {3, {}, nullptr}), 1.0});
    return m;
  }
};

TEST_F(StepBatchNorm, JointNormalisesBothDomainsTogether) {
  auto methods = entropy();
  auto m = model(false);
  trainer::TrainingStep step(m, methods, {255, 0.0}, "joint");
  const io::PairedBatch b = batch();
  const auto losses = step.forward(b, 1.0, 0, true);
  auto reference = model(false);
  const at::Tensor logits = reference->forward(at::cat({b.source.image, b.target.image})).logits;
  const trainer::SegmentationLoss loss{255, 0.0};
  EXPECT_NEAR(losses.logs.at("loss/seg"), loss(logits.narrow(0, 0, 2), b.source.mask).item<double>(), 1e-6);
  // The step's losses stay tensors (read once per log interval, not each step).
  for (const char* key : {"loss/seg", "loss/da", "loss/total", "da/entropy/entropy_loss"}) {
    EXPECT_FALSE(losses.logs.at(key).on_host()) << key;
  }
  EXPECT_TRUE(losses.logs.at("lambda").on_host());
}

TEST_F(StepBatchNorm, SeparateNormalisesEachDomainAlone) {
  auto methods = entropy();
  auto m = model(false);
  trainer::TrainingStep step(m, methods, {255, 0.0}, "separate");
  const io::PairedBatch b = batch();
  const auto losses = step.forward(b, 1.0, 0, true);
  auto reference = model(false);
  const at::Tensor logits = reference->forward(b.source.image).logits;
  const trainer::SegmentationLoss loss{255, 0.0};
  EXPECT_NEAR(losses.logs.at("loss/seg"), loss(logits, b.source.mask).item<double>(), 1e-6);
  // The running statistics saw both domains, one forward each (momentum 0.1 twice).
  const at::Tensor mean = m->named_buffers()["encoder.bn1.running_mean"];
  const at::Tensor one_pass = reference->named_buffers()["encoder.bn1.running_mean"];
  EXPECT_FALSE(at::allclose(mean, one_pass));
}

TEST_F(StepBatchNorm, DsbnRoutesTheTargetThroughItsOwnBranch) {
  auto methods = entropy();
  auto m = model(true);
  trainer::TrainingStep step(m, methods, {255, 0.0}, "dsbn");
  const io::PairedBatch b = batch();
  step.forward(b, 1.0, 0, true);
  auto buffers = m->named_buffers();
  // Source branch: one update from the source batch alone, as a plain model's.
  auto plain = model(false);
  plain->forward(b.source.image);
  EXPECT_TRUE(at::allclose(buffers["encoder.bn1.running_mean"], plain->named_buffers()["encoder.bn1.running_mean"]));
  // Target branch: one update from the target batch alone.
  auto target_only = model(false);
  target_only->forward(b.target.image);
  EXPECT_TRUE(at::allclose(buffers["encoder.bn1.target.running_mean"],
                           target_only->named_buffers()["encoder.bn1.running_mean"]));
  EXPECT_EQ(m->domain(), models::Domain::kSource);
}

TEST(Checkpoint, MissingAndCorruptFilesAreNamed) {
  const std::string dir = test::make_temp_dir("da_ckpt_err");
  try {
    setup::read_checkpoint_model(dir + "/none.pt");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "checkpoint " + dir + "/none.pt: no such file");
  }
  test::write_text(dir + "/bad.pt", "not a checkpoint");
  try {
    setup::read_checkpoint_model(dir + "/bad.pt");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("checkpoint " + dir + "/bad.pt is not a readable da_dist checkpoint", 0), 0u)
        << e.what();
  }
  fs::remove_all(dir);
}

// A checkpoint saved on a GPU loads on a CPU-only machine and onto the
// device of the model it is restored into. The "GPU" checkpoint is a CPU one
// whose recorded storage locations are rewritten to cuda:0
// (tests/support/relocate_checkpoint.py): Torch refuses it here without a map
// location, as it refuses a real one.
TEST(Checkpoint, GpuSavedCheckpointLoadsOntoTheModelsDevice) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "needs a machine without CUDA (the cuda tests cover GPU loads)";
  const std::string dir = test::make_temp_dir("da_ckpt_device");
  torch::nn::Linear saved_model(3, 2);
  torch::optim::SGD saved_optimizer(saved_model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  saved_model(at::ones({4, 3})).sum().backward();
  saved_optimizer.step();  // momentum buffers: optimizer state to restore
  std::vector<setup::WeightedMethod> methods;
  setup::TrainingProgress progress;
  progress.global_step = 7;
  setup::save_checkpoint(dir + "/cpu.pt", setup::CheckpointParts{*saved_model, methods, &saved_optimizer},
                           progress, "run: {}\n");
  const auto relocated = test::run_process(
      test::python_path(),
      {test::source_path("tests/support/relocate_checkpoint.py"), dir + "/cpu.pt", dir + "/gpu.pt", "cuda:0"});
  ASSERT_EQ(relocated.exit_code, 0) << relocated.err;
  ASSERT_GT(std::stoi(relocated.out), 0);
  torch::serialize::InputArchive unmapped;
  EXPECT_ANY_THROW(unmapped.load_from(dir + "/gpu.pt"));  // what a load without a map location does

  const models::StateDict state = setup::read_checkpoint_model(dir + "/gpu.pt");
  EXPECT_TRUE(state.at("weight").device().is_cpu());
  EXPECT_TRUE(at::equal(state.at("weight"), saved_model->weight.detach()));

  torch::nn::Linear model(3, 2);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const setup::TrainingProgress loaded =
      setup::load_checkpoint(dir + "/gpu.pt", setup::CheckpointParts{*model, methods, &optimizer});
  EXPECT_EQ(loaded.global_step, 7);
  EXPECT_TRUE(at::equal(model->weight, saved_model->weight));
  EXPECT_TRUE(at::equal(model->bias, saved_model->bias));
  const auto& buffer = static_cast<const torch::optim::SGDParamState&>(
      *optimizer.state().at(model->weight.unsafeGetTensorImpl()));
  const auto& saved_buffer = static_cast<const torch::optim::SGDParamState&>(
      *saved_optimizer.state().at(saved_model->weight.unsafeGetTensorImpl()));
  EXPECT_TRUE(buffer.momentum_buffer().device().is_cpu());
  EXPECT_TRUE(at::equal(buffer.momentum_buffer(), saved_buffer.momentum_buffer()));
  fs::remove_all(dir);
}

// Logged values summed over steps without reading the device: tensor and
// host values alike come out as the sums of what was added, and one step's
// values read as doubles.
TEST(StepLogSums, SumTensorAndHostValues) {
  trainer::StepLogSums sums;
  const std::vector<float> seg{0.5F, 0.25F, 0.125F};
  for (std::size_t i = 0; i < seg.size(); ++i) {
    trainer::StepLogs logs;
    logs["loss/seg"] = at::full({}, seg[i], at::kFloat);
    logs["acc"] = at::full({1}, static_cast<double>(i), at::kDouble);  // one element, any shape
    logs["lr"] = 0.1 * static_cast<double>(i + 1);
    sums.add(logs);
    const auto read = trainer::read_logs(logs);
    EXPECT_EQ(read.at("loss/seg"), static_cast<double>(seg[i]));
    EXPECT_EQ(read.at("acc"), static_cast<double>(i));
    EXPECT_DOUBLE_EQ(read.at("lr"), 0.1 * static_cast<double>(i + 1));
  }
  const auto total = sums.read();
  EXPECT_EQ(total.size(), 3u);
  EXPECT_DOUBLE_EQ(total.at("loss/seg"), 0.875);
  EXPECT_DOUBLE_EQ(total.at("acc"), 3.0);
  EXPECT_NEAR(total.at("lr"), 0.6, 1e-15);
  EXPECT_THROW(methods::LogValue(at::zeros({2})), std::invalid_argument);
}

}  // namespace
}  // namespace da

namespace da {
namespace {

// glibc's own accounting of where a block came from: bytes in mmapped
// blocks, and the main arena's heap size and free bytes (mallinfo2). Unlike
// page-fault counts, these mean the same on every kernel.
struct HeapUse {
  std::size_t mmapped;
  std::size_t heap;
  std::size_t heap_free;
};

HeapUse heap_use() {
  const struct mallinfo2 m = mallinfo2();
  return {m.hblkhd, m.arena, m.fordblks};
}

constexpr std::size_t k64MiB = 64UL << 20;

// Allocates and touches a 64 MiB tensor (above glibc's largest dynamic mmap
// threshold, 32 MiB), frees it, and reports glibc's accounting before,
// while it lived, and after.
struct BlockHistory {
  HeapUse before, during, after;
};

BlockHistory history_of_64MiB_tensor() {
  BlockHistory h{};
  h.before = heap_use();
  {
    const auto t = at::empty({static_cast<std::int64_t>(k64MiB / sizeof(float))}, at::kFloat).fill_(1.0F);
    h.during = heap_use();
  }
  h.after = heap_use();
  return h;
}

// mallopt is process-wide and cannot be undone, so each mode runs in a child
// process and reports by its exit code. "threadsafe" death tests re-execute
// the binary for the one test, so the child does not inherit a setting that
// an earlier test's Trainer made in this process.
TEST(HostAllocator, RetainServesLargeBlocksFromTheHeapAndKeepsThemAfterFree) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setup::configure_host_allocator("retain");
        const BlockHistory h = history_of_64MiB_tensor();
        std::fprintf(stderr, "retain: mmapped +%zu, heap +%zu, heap free after %zu\n",
                     h.during.mmapped - h.before.mmapped, h.during.heap - h.before.heap, h.after.heap_free);
        const bool from_heap = h.during.mmapped == h.before.mmapped && h.during.heap >= h.before.heap + k64MiB;
        const bool kept = h.after.heap >= h.before.heap + k64MiB && h.after.heap_free >= k64MiB;
        std::exit(from_heap && kept ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "retain: mmapped \\+0, heap \\+[0-9]+");
}

TEST(HostAllocator, SystemMapsLargeBlocksAndReturnsThemOnFree) {
  // The other side of the test above: glibc's defaults give the block its own
  // mapping and unmap it on free (so the test above measures something).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setup::configure_host_allocator("system");
        const BlockHistory h = history_of_64MiB_tensor();
        std::fprintf(stderr, "system: mmapped +%zu, mmapped after %zu (before %zu)\n",
                     h.during.mmapped - h.before.mmapped, h.after.mmapped, h.before.mmapped);
        const bool mapped = h.during.mmapped >= h.before.mmapped + k64MiB;
        const bool returned = h.after.mmapped == h.before.mmapped && h.after.heap < h.before.heap + k64MiB;
        std::exit(mapped && returned ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "system: mmapped \\+[0-9]+");
  EXPECT_THROW(setup::configure_host_allocator("jemalloc"), std::invalid_argument);
}

}  // namespace
}  // namespace da
