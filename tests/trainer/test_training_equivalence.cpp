// Training runs that must come out the same whichever way they are
// computed: normalising on the device or in the loader, channels-last or
// contiguous memory, two accumulated half batches or one full batch.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "config/loader.h"
#include "dist/local_communicator.h"
#include "run/run_directory.h"
#include "trainer/trainer.h"
#include "trainer/training_fixture.h"
#include "trainer/training_run.h"

namespace da {
namespace {

using test::expect_identical;
using test::kDann;
using test::RunResult;
using test::train;
using test::TrainingTest;

// data.normalize.on: device makes the loaders deliver the stored pixels,
// normalised in the training step after the copy to the device: the same
// values as the loader's own normalisation, so the same training, bit for bit.
TEST_F(TrainingTest, NormalisingOnTheDeviceTrainsLikeNormalisingInTheLoader) {
  config::Config in_loader = test::training_config(dir_ + "/a", kDann);
  in_loader.data.normalize.on = "loader";
  config::Config on_device = test::training_config(dir_ + "/b", kDann);
  on_device.data.normalize.on = "device";
  const RunResult a = train(in_loader);
  const RunResult b = train(on_device);
  ASSERT_EQ(a.status, 0);
  ASSERT_EQ(b.status, 0);
  expect_identical(a, b);
  EXPECT_EQ(a.metrics.at("train/loss/seg"), b.metrics.at("train/loss/seg"));
}

// run.memory_format channels_last (the CUDA default): weights and batches
// NHWC in memory. The same training as contiguous up to the summation order
// of the convolution kernels. With SGD: AdamW's first steps would magnify
// that rounding in near-zero gradients into full-size updates.
TEST_F(TrainingTest, ChannelsLastTrainsLikeContiguous) {
  config::Config contiguous = test::training_config(dir_ + "/a", kDann);
  contiguous.run.max_epochs = 2;
  contiguous.run.memory_format = "contiguous";
  contiguous.optimizer.name = "sgd";
  config::Config channels_last = contiguous;
  channels_last.run.output_dir = dir_ + "/b";
  channels_last.run.memory_format = "channels_last";
  {
    config::Config probe = channels_last;
    probe.run.output_dir = dir_ + "/probe";
    run::prepare_run_directory(probe);
    dist::LocalCommunicator comm;
    trainer::Trainer trainer(probe, config::to_yaml(probe), comm, dist::WorldInfo{}, run::run_directory(probe));
    const at::Tensor conv = trainer.model()->named_parameters()["encoder.conv1.weight"];
    EXPECT_TRUE(conv.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_FALSE(conv.is_contiguous());
  }
  const RunResult a = train(contiguous);
  const RunResult b = train(channels_last);
  ASSERT_EQ(a.status, 0);
  ASSERT_EQ(b.status, 0);
  ASSERT_EQ(a.state.size(), b.state.size());
  for (const auto& [name, tensor] : a.state) {
    const at::Tensor other = b.state.at(name);
    if (tensor.dim() == 4) {
      EXPECT_TRUE(other.is_contiguous(at::MemoryFormat::ChannelsLast)) << name;
    }
    if (tensor.is_floating_point()) {
      EXPECT_TRUE(at::allclose(tensor, other, 1e-3, 1e-4)) << name << " max abs diff "
                                                          << (tensor - other).abs().max().item<double>();
    } else {
      EXPECT_TRUE(at::equal(tensor, other)) << name;
    }
  }
  for (const char* key : {"train/loss/seg", "train/loss/da"}) {
    EXPECT_NEAR(a.metrics.at(key), b.metrics.at(key), 1e-4 * std::abs(a.metrics.at(key))) << key;
  }
}

TEST_F(TrainingTest, AccumulatingTwoHalfBatchesEqualsOneFullBatch) {
  // Same tiles per optimizer step (the shuffled order cut in 2s or 4s), loss
  // divided by k; constant lambda so the batch-counted schedule cannot differ;
  // frozen BatchNorm so batch statistics of 2 and 4 tiles cannot differ.
  const std::vector<std::string> common{"run.max_epochs=2", "model.freeze_bn=true", "optimizer.name=sgd",
                                        "domain_adaptation.lambda_schedule.name=constant"};
  auto full = common;
  full.push_back("data.batch_size=4");
  auto halves = common;
  halves.insert(halves.end(), {"data.batch_size=2", "run.accumulate_grad_batches=2"});
  const RunResult a = train(test::training_config(dir_ + "/a", kDann, full));
  const RunResult b = train(test::training_config(dir_ + "/b", kDann, halves));
  ASSERT_EQ(a.state.size(), b.state.size());
  for (const auto& [name, tensor] : a.state) {
    if (!tensor.is_floating_point()) continue;
    const double scale = std::max(tensor.norm().item<double>(), 1e-12);
    EXPECT_LE((tensor - b.state.at(name)).norm().item<double>() / scale, 1e-5) << name;
  }
}

}  // namespace
}  // namespace da
