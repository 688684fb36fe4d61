// PairedLoader: steps per epoch by EpochLength, the other domain cycling
// through its own epochs.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/archive_fixtures.h"
#include "io/loader_fixtures.h"
#include "io/paired_loader.h"
#include "support/process.h"

namespace da::io {
namespace {

namespace fs = std::filesystem;

class PairedLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = da::test::make_temp_dir("da_paired");
    TileArchiveLayout target = test::small_layout();
    target.domain = "vaihingen";
    test::write_archive(source_path(), test::small_layout(), 10);  // 5 batches of 2
    test::write_archive(target_path(), target, 4);                 // 2 batches of 2
    source_options_.batch_size = target_options_.batch_size = 2;
    source_options_.seed = 1;
    target_options_.seed = 2;
    target_options_.load_masks = false;
    target_options_.workers = 1;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string source_path() const { return dir_ + "/source.h5"; }
  std::string target_path() const { return dir_ + "/target.h5"; }
  PairedLoader make(EpochLength length) const {
    return PairedLoader(source_options_, {source_path()}, target_options_, {target_path()}, length);
  }

  std::string dir_;
  LoaderOptions source_options_;
  LoaderOptions target_options_;
};

TEST_F(PairedLoaderTest, EpochLengthPicksTheDomain) {
  EXPECT_EQ(make(EpochLength::kSource).steps_per_epoch(), 5);
  EXPECT_EQ(make(EpochLength::kTarget).steps_per_epoch(), 2);
  EXPECT_EQ(make(EpochLength::kMax).steps_per_epoch(), 5);
  EXPECT_EQ(make(EpochLength::kMin).steps_per_epoch(), 2);
}

TEST_F(PairedLoaderTest, TargetCyclesThroughItsOwnEpochs) {
  PairedLoader paired = make(EpochLength::kSource);
  TileLoader source(source_options_, {source_path()});
  TileLoader target(target_options_, {target_path()});
  const std::vector<Batch> source_epoch3 = test::epoch_batches(source, 3);
  const std::vector<Batch> source_epoch4 = test::epoch_batches(source, 4);
  // Two paired epochs of 5 steps use 10 target batches: target epochs 0..4.
  std::vector<Batch> target_stream;
  for (int64_t epoch = 0; epoch < 5; ++epoch) {
    for (Batch& batch : test::epoch_batches(target, epoch)) target_stream.push_back(std::move(batch));
  }
  size_t t = 0;
  for (const int64_t epoch : {3, 4}) {
    paired.start_epoch(epoch);
    const std::vector<Batch>& expected_source = epoch == 3 ? source_epoch3 : source_epoch4;
    for (int64_t step = 0; step < 5; ++step, ++t) {
      std::optional<PairedBatch> pair = paired.next();
      ASSERT_TRUE(pair.has_value()) << "epoch " << epoch << " step " << step;
      EXPECT_EQ(pair->source.indices, expected_source[step].indices);
      EXPECT_TRUE(at::equal(pair->source.image, expected_source[step].image));
      EXPECT_EQ(pair->target.indices, target_stream[t].indices) << "target batch " << t;
      EXPECT_TRUE(at::equal(pair->target.image, target_stream[t].image));
      EXPECT_FALSE(pair->target.mask.defined());
      EXPECT_TRUE(pair->source.mask.defined());
    }
    EXPECT_FALSE(paired.next().has_value());
  }
  EXPECT_EQ(paired.target().epoch(), 4);
}

TEST_F(PairedLoaderTest, TargetLedEpochCyclesTheSource) {
  PairedLoader paired = make(EpochLength::kMin);
  TileLoader source(source_options_, {source_path()});
  const std::vector<Batch> source_epoch0 = test::epoch_batches(source, 0);
  paired.start_epoch(0);
  ASSERT_TRUE(paired.next().has_value());
  ASSERT_TRUE(paired.next().has_value());
  EXPECT_FALSE(paired.next().has_value());
  paired.start_epoch(1);
  // The source goes on where it stopped: its third batch of epoch 0.
  EXPECT_EQ(paired.next()->source.indices, source_epoch0[2].indices);
  EXPECT_EQ(paired.source().epoch(), 0);
}

TEST_F(PairedLoaderTest, ResumeFromAPositionGivesTheSamePairs) {
  source_options_.workers = 2;  // the resumed start must hand out batches in order with several workers
  // The straight run: epochs 0 and 1 (5 steps each); remember where it stood after 7 pairs.
  PairedLoader straight = make(EpochLength::kSource);
  std::vector<PairedBatch> after;
  PairedPosition position;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    straight.start_epoch(epoch);
    for (int64_t step = 0; step < 5; ++step) {
      if (epoch == 1 && step == 2) position = straight.position();
      std::optional<PairedBatch> pair = straight.next();
      ASSERT_TRUE(pair.has_value());
      if (epoch == 1 && step >= 2) after.push_back(std::move(*pair));
    }
  }
  EXPECT_EQ(position.epoch, 1);
  EXPECT_EQ(position.step, 2);
  EXPECT_EQ(position.cycling_epoch, 3);  // 7 target batches taken from 2-batch epochs: epoch 3, batch 1
  EXPECT_EQ(position.cycling_batch, 1);

  PairedLoader resumed = make(EpochLength::kSource);
  resumed.resume(position);
  for (const PairedBatch& expected : after) {
    std::optional<PairedBatch> pair = resumed.next();
    ASSERT_TRUE(pair.has_value());
    EXPECT_EQ(pair->source.indices, expected.source.indices);
    EXPECT_TRUE(at::equal(pair->source.image, expected.source.image));
    EXPECT_EQ(pair->target.indices, expected.target.indices);
    EXPECT_TRUE(at::equal(pair->target.image, expected.target.image));
  }
  EXPECT_FALSE(resumed.next().has_value());
}

TEST_F(PairedLoaderTest, ResumeOutsideTheEpochIsRefused) {
  PairedLoader paired = make(EpochLength::kSource);
  EXPECT_THROW(paired.resume({0, 6, 0, 0}), std::invalid_argument);
}

}  // namespace
}  // namespace da::io
