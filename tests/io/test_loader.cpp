// TileLoader: values of normalised and augmented batches, sharding across
// ranks, determinism across worker counts, errors from worker threads.
// Longer than 400 lines on purpose: one class under test with one fixture,
// where a split would cut the loader's tests into two arbitrary halves.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <set>
#include <stdexcept>

#include "io/archive_fixtures.h"
#include "io/batch_normalize.h"
#include "io/distributed_sampler.h"
#include "io/loader_fixtures.h"
#include "io/tile_loader.h"
#include "support/process.h"

namespace da::io {
namespace {

namespace fs = std::filesystem;
using test::archive_error_of;
using test::epoch_batches;
using test::raw_mask;
using test::raw_tile;

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = da::test::make_temp_dir("da_loader"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

LoaderOptions plain_options(int64_t batch_size) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  return options;
}

std::string invalid_argument_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "no error";
}

class LoaderValueTest : public LoaderTest, public ::testing::WithParamInterface<PixelType> {};

TEST_P(LoaderValueTest, BatchIsRawTilesNormalisedByDtype) {
  const TileArchiveLayout layout = test::small_layout(GetParam());
  test::write_archive(path("a.h5"), layout, 10);
  TileLoader loader(plain_options(4), {path("a.h5")});
  ASSERT_EQ(loader.batches_per_epoch(), 3);
  const double scale = GetParam() == PixelType::kUint8 ? 255.0 : GetParam() == PixelType::kUint16 ? 65535.0 : 1.0;
  const std::vector<Batch> batches = epoch_batches(loader, 0);
  ASSERT_EQ(batches.size(), 3U);
  EXPECT_EQ(batches[2].indices, (std::vector<int64_t>{8, 9, 0, 1}));  // wrap fills the last batch
  for (const Batch& batch : batches) {
    ASSERT_EQ(batch.image.sizes(), (at::IntArrayRef{4, 3, 5, 7}));
    ASSERT_EQ(batch.image.scalar_type(), at::kFloat);
    ASSERT_EQ(batch.mask.sizes(), (at::IntArrayRef{4, 5, 7}));
    ASSERT_EQ(batch.mask.scalar_type(), at::kLong);
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_TRUE(at::allclose(batch.image[i], raw_tile(layout, batch.indices[i]) / scale, 1e-6, 1e-7));
      EXPECT_TRUE(at::equal(batch.mask[i], raw_mask(layout, batch.indices[i])));
    }
  }
  EXPECT_FALSE(loader.next().has_value());
}

// normalize = false delivers the stored pixels (augmented); BatchNormalizer
// then gives bit for bit what the normalising loader delivers: with flips,
// rotations and crops (pixels mapped), and without (tiles read straight into
// their batch rows).
TEST_P(LoaderValueTest, StoredPixelsNormalisedLaterEqualTheNormalisedBatch) {
  TileArchiveLayout layout = test::small_layout(GetParam());
  layout.height = layout.width = 6;
  test::write_archive(path("a.h5"), layout, 10);
  const at::ScalarType stored = GetParam() == PixelType::kUint8    ? at::kByte
                                : GetParam() == PixelType::kUint16 ? at::kShort
                                                                   : at::kFloat;
  for (const bool augment : {false, true}) {
    LoaderOptions options = plain_options(4);
    options.normalization = {NormalizationMode::kConfig, {1.0, 2.0, 3.0}, {0.5, 0.25, 3.0}};
    if (augment) options.augmentation = {true, true, true, 4};
    TileLoader normalising(options, {path("a.h5")});
    options.normalize = false;
    TileLoader storing(options, {path("a.h5")});
    const std::vector<Batch> expected = epoch_batches(normalising, 2);
    std::vector<Batch> stored_batches = epoch_batches(storing, 2);
    BatchNormalizer normalizer(storing.normalization());
    ASSERT_EQ(stored_batches.size(), expected.size());
    for (size_t b = 0; b < expected.size(); ++b) {
      Batch& batch = stored_batches[b];
      ASSERT_EQ(batch.image.scalar_type(), stored);
      ASSERT_EQ(batch.mask.scalar_type(), at::kByte);
      EXPECT_EQ(batch.indices, expected[b].indices);
      if (!augment) {
        for (int64_t i = 0; i < batch.image.size(0); ++i) {
          EXPECT_TRUE(at::equal(stored_pixels_as_float(batch.image[i]), raw_tile(layout, batch.indices[i])));
        }
      }
      normalizer(batch);
      EXPECT_TRUE(at::equal(batch.image, expected[b].image)) << "augment " << augment << " batch " << b;
      EXPECT_TRUE(at::equal(batch.mask, expected[b].mask)) << "augment " << augment << " batch " << b;
    }
  }
}

// uint16 pixels travel as their bits in int16 (Torch 1.13 has no uint16):
// read back as 0..65535, also above 32767, and normalised from those values.
TEST(StoredPixels, Uint16BitsInInt16ReadBackUnsigned) {
  const at::Tensor bits = at::tensor(std::vector<int16_t>{0, 1, 32767, -32768, -1}, at::kShort);
  const at::Tensor values = stored_pixels_as_float(bits);
  EXPECT_TRUE(at::equal(values, at::tensor(std::vector<float>{0, 1, 32767, 32768, 65535})));
  const at::Tensor image = bits.view({1, 1, 1, 5});
  const at::Tensor normalised = normalize_image(image, {{1000.0F}, {2.0F}});
  EXPECT_EQ(normalised[0][0][0][4].item<float>(), (65535.0F - 1000.0F) / 2.0F);
}

INSTANTIATE_TEST_SUITE_P(PixelTypes, LoaderValueTest,
                         ::testing::Values(PixelType::kUint8, PixelType::kUint16, PixelType::kFloat32));

TEST_F(LoaderTest, MasksOnlyWhenAsked) {
  test::write_archive(path("a.h5"), test::small_layout(), 4);
  LoaderOptions options = plain_options(2);
  options.load_masks = false;
  TileLoader loader(options, {path("a.h5")});
  EXPECT_FALSE(epoch_batches(loader, 0)[0].mask.defined());

  TileArchiveLayout no_masks = test::small_layout();
  no_masks.with_masks = false;
  test::write_archive(path("b.h5"), no_masks, 4);
  EXPECT_EQ(archive_error_of([&] { TileLoader bad(plain_options(2), {path("b.h5")}); }),
            path("b.h5") + ": /masks: masks requested but the archive has none");
}

// Pinned batches: with CUDA they are page-locked and hold the same values;
// without it (CI) asking for them is a clear error rather than Torch's.
TEST_F(LoaderTest, PinnedMemoryNeedsCudaAndKeepsValues) {
  test::write_archive(path("a.h5"), test::small_layout(), 4);
  LoaderOptions options = plain_options(2);
  options.pin_memory = true;
  if (!at::hasCUDA()) {
    EXPECT_EQ(invalid_argument_of([&] { TileLoader loader(options, {path("a.h5")}); }),
              "LoaderOptions::pin_memory: pinned host memory needs a CUDA build of Torch and a GPU, and this process "
              "has none");
    return;
  }
  TileLoader pinned(options, {path("a.h5")});
  TileLoader plain(plain_options(2), {path("a.h5")});
  const auto a = epoch_batches(pinned, 0);
  const auto b = epoch_batches(plain, 0);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(a[i].image.is_pinned());
    EXPECT_TRUE(at::equal(a[i].image, b[i].image));
    EXPECT_TRUE(at::equal(a[i].mask, b[i].mask));
  }
}

TEST_F(LoaderTest, ArchiveAndConfigNormalisation) {
  const TileArchiveLayout layout = test::small_layout();
  {
    TileArchiveWriter writer(path("stats.h5"), layout);
    for (int64_t n = 0; n < 3; ++n) {
      const std::vector<char> image = test::expected_image(layout, n);
      const std::vector<uint8_t> mask = test::expected_mask(5, 7, n, 4);
      writer.append(image.data(), mask.data());
    }
    writer.set_band_stats({10.0, 20.0, 30.0}, {2.0, 4.0, 8.0});
    writer.close();
  }
  const at::Tensor mean = at::tensor({10.0F, 20.0F, 30.0F}).view({3, 1, 1});
  const at::Tensor std = at::tensor({2.0F, 4.0F, 8.0F}).view({3, 1, 1});
  LoaderOptions options = plain_options(1);
  options.normalization.mode = NormalizationMode::kArchive;
  TileLoader archive_loader(options, {path("stats.h5")});
  EXPECT_TRUE(at::allclose(epoch_batches(archive_loader, 0)[1].image[0], (raw_tile(layout, 1) - mean) / std));

  options.normalization = {NormalizationMode::kConfig, {1.0, 2.0, 3.0}, {0.5, 0.25, 2.0}};
  TileLoader config_loader(options, {path("stats.h5")});
  EXPECT_TRUE(at::allclose(epoch_batches(config_loader, 0)[2].image[0],
                           (raw_tile(layout, 2) - at::tensor({1.0F, 2.0F, 3.0F}).view({3, 1, 1})) /
                               at::tensor({0.5F, 0.25F, 2.0F}).view({3, 1, 1})));

  test::write_archive(path("plain.h5"), layout, 3);
  options.normalization = {NormalizationMode::kArchive, {}, {}};
  EXPECT_EQ(archive_error_of([&] { TileLoader bad(options, {path("plain.h5")}); }),
            path("plain.h5") + ": normalization mode 'archive' needs the band_mean and band_std attributes");
  options.normalization = {NormalizationMode::kConfig, {1.0, 2.0}, {1.0, 1.0}};
  EXPECT_EQ(invalid_argument_of([&] { TileLoader bad(options, {path("plain.h5")}); }),
            "normalization mean and std need one value per band (3), got 2 and 2");
  options.normalization = {NormalizationMode::kConfig, {1.0, 2.0, 3.0}, {1.0, 0.0, 1.0}};
  EXPECT_EQ(invalid_argument_of([&] { TileLoader bad(options, {path("plain.h5")}); }),
            "normalization std of band 'green' is 0.000000, must be positive");
}

TEST_F(LoaderTest, FlipsAndRotationsApplyToImageAndMaskAlike) {
  TileArchiveLayout layout = test::small_layout();
  layout.height = layout.width = 6;
  test::write_archive(path("square.h5"), layout, 24);
  LoaderOptions options = plain_options(8);
  options.augmentation = {true, true, true, 0};
  TileLoader loader(options, {path("square.h5")});
  std::set<int> seen;
  for (const Batch& batch : epoch_batches(loader, 3)) {
    for (int64_t i = 0; i < batch.image.size(0); ++i) {
      const at::Tensor image = raw_tile(layout, batch.indices[i]) / 255.0;
      const at::Tensor mask = raw_mask(layout, batch.indices[i]);
      int found = -1;
      for (int t = 0; t < 16 && found < 0; ++t) {
        at::Tensor candidate = image;
        at::Tensor candidate_mask = mask;
        if (t & 1) candidate = at::flip(candidate, {2}), candidate_mask = at::flip(candidate_mask, {1});
        if (t & 2) candidate = at::flip(candidate, {1}), candidate_mask = at::flip(candidate_mask, {0});
        candidate = at::rot90(candidate, t >> 2, {1, 2});
        candidate_mask = at::rot90(candidate_mask, t >> 2, {0, 1});
        if (at::allclose(batch.image[i], candidate) && at::equal(batch.mask[i], candidate_mask)) found = t;
      }
      ASSERT_GE(found, 0) << "tile " << batch.indices[i]
                          << ": image and mask are not one flip/rotation of the raw tile";
      seen.insert(found);
    }
  }
  EXPECT_GE(seen.size(), 6U) << "24 tiles should see many of the 16 transforms";
}

TEST_F(LoaderTest, RandomCropIsTheSameWindowOfImageAndMask) {
  const TileArchiveLayout layout = test::small_layout();
  test::write_archive(path("a.h5"), layout, 12);
  LoaderOptions options = plain_options(4);
  options.augmentation.crop_size = 4;
  TileLoader loader(options, {path("a.h5")});
  std::set<std::pair<int64_t, int64_t>> offsets;
  for (const Batch& batch : epoch_batches(loader, 0)) {
    ASSERT_EQ(batch.image.sizes(), (at::IntArrayRef{4, 3, 4, 4}));
    ASSERT_EQ(batch.mask.sizes(), (at::IntArrayRef{4, 4, 4}));
    for (int64_t i = 0; i < 4; ++i) {
      const at::Tensor image = raw_tile(layout, batch.indices[i]) / 255.0;
      const at::Tensor mask = raw_mask(layout, batch.indices[i]);
      // Windows whose offsets have equal 3y + x hold equal image values, so
      // the mask decides which one it is; both must agree on one window.
      bool found = false;
      for (int64_t y = 0; y <= 1 && !found; ++y) {
        for (int64_t x = 0; x <= 3 && !found; ++x) {
          if (at::allclose(batch.image[i], image.narrow(1, y, 4).narrow(2, x, 4)) &&
              at::equal(batch.mask[i], mask.narrow(0, y, 4).narrow(1, x, 4))) {
            found = true;
            offsets.insert({y, x});
          }
        }
      }
      EXPECT_TRUE(found) << "tile " << batch.indices[i] << ": image and mask are not the same window";
    }
  }
  EXPECT_GE(offsets.size(), 3U);
}

void expect_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].indices, b[i].indices) << "batch " << i;
    EXPECT_TRUE(at::equal(a[i].image, b[i].image)) << "batch " << i;
    EXPECT_TRUE(at::equal(a[i].mask, b[i].mask)) << "batch " << i;
  }
}

TEST_F(LoaderTest, SameSeedSameBatchesForAnyWorkerCount) {
  TileArchiveLayout layout = test::small_layout();
  layout.height = layout.width = 6;
  test::write_archive(path("a.h5"), layout, 9);
  test::write_archive(path("b.h5"), layout, 14);
  LoaderOptions options;
  options.batch_size = 3;
  options.seed = 42;
  options.augmentation = {true, true, true, 4};
  std::vector<std::vector<Batch>> runs;
  for (const int workers : {0, 1, 2, 3}) {
    options.workers = workers;
    options.prefetch = workers == 3 ? 1 : 2;  // fewer queue places than workers must still work
    TileLoader loader(options, {path("a.h5"), path("b.h5")});
    std::vector<Batch> both = epoch_batches(loader, 0);
    for (Batch& batch : epoch_batches(loader, 1)) both.push_back(std::move(batch));
    runs.push_back(std::move(both));
  }
  for (size_t run = 1; run < runs.size(); ++run) expect_same_batches(runs[0], runs[run]);

  ASSERT_EQ(runs[0].size(), 16U);  // 23 tiles: 8 batches of 3 per epoch
  std::vector<int64_t> epoch0, epoch1;
  for (size_t b = 0; b < 8; ++b) {
    epoch0.insert(epoch0.end(), runs[0][b].indices.begin(), runs[0][b].indices.end());
    epoch1.insert(epoch1.end(), runs[0][b + 8].indices.begin(), runs[0][b + 8].indices.end());
  }
  EXPECT_NE(epoch0, epoch1);
  EXPECT_EQ(std::set<int64_t>(epoch0.begin(), epoch0.end()).size(), 23U);

  options.seed = 43;
  TileLoader other_seed(options, {path("a.h5"), path("b.h5")});
  EXPECT_NE(epoch_batches(other_seed, 0)[0].indices, runs[0][0].indices);
}

TEST_F(LoaderTest, RanksSeeDisjointTilesAndTheSameStepCount) {
  test::write_archive(path("a.h5"), test::small_layout(), 11);
  for (const Remainder remainder : {Remainder::kWrap, Remainder::kDrop}) {
    std::vector<int64_t> all;
    std::vector<int64_t> steps;
    for (int rank = 0; rank < 2; ++rank) {
      LoaderOptions options;
      options.batch_size = 2;
      options.seed = 7;
      options.remainder = remainder;
      options.rank = rank;
      options.world_size = 2;
      options.workers = rank;  // the rank's loader threads do not matter
      TileLoader loader(options, {path("a.h5")});
      const std::vector<Batch> batches = epoch_batches(loader, 5);
      steps.push_back(loader.batches_per_epoch());
      EXPECT_EQ(static_cast<int64_t>(batches.size()), loader.batches_per_epoch());
      const std::vector<int64_t> expected = shard_indices(11, 5, {rank, 2, 7, true, remainder});
      std::vector<int64_t> seen;
      for (const Batch& batch : batches) seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
      if (remainder == Remainder::kWrap) {
        // 6 tiles per rank: 3 whole batches.
        EXPECT_EQ(seen, expected);
      } else {
        // 5 tiles per rank: 2 whole batches, the fifth tile dropped.
        EXPECT_EQ(seen, std::vector<int64_t>(expected.begin(), expected.begin() + 4));
      }
      all.insert(all.end(), expected.begin(), expected.end());
    }
    EXPECT_EQ(steps[0], steps[1]);
    EXPECT_EQ(steps[0], remainder == Remainder::kWrap ? 3 : 2);
    const std::set<int64_t> distinct(all.begin(), all.end());
    if (remainder == Remainder::kWrap) {
      EXPECT_EQ(distinct.size(), 11U) << "together the ranks cover the epoch";
    } else {
      EXPECT_EQ(distinct.size(), all.size()) << "the ranks' tiles are disjoint";
    }
  }
}

TEST_F(LoaderTest, WrapFillsTheLastBatchFromTheRanksStartDropLeavesItOut) {
  test::write_archive(path("a.h5"), test::small_layout(), 6);
  LoaderOptions options;
  options.batch_size = 4;
  options.seed = 3;
  TileLoader wrap(options, {path("a.h5")});
  const std::vector<int64_t> order = shard_indices(6, 0, {0, 1, 3, true, Remainder::kWrap});
  const std::vector<Batch> batches = epoch_batches(wrap, 0);
  ASSERT_EQ(batches.size(), 2U);
  EXPECT_EQ(batches[1].indices, (std::vector<int64_t>{order[4], order[5], order[0], order[1]}));

  options.remainder = Remainder::kDrop;
  TileLoader drop(options, {path("a.h5")});
  EXPECT_EQ(drop.batches_per_epoch(), 1);
  EXPECT_EQ(epoch_batches(drop, 0).size(), 1U);

  options.batch_size = 8;
  EXPECT_EQ(invalid_argument_of([&] { TileLoader none(options, {path("a.h5")}); }),
            "loader: 6 tile(s) per rank make no whole batch of 8 with remainder 'drop'");
}

TEST_F(LoaderTest, NonFiniteTileRefusedFromEveryThreadOrSkipped) {
  const TileArchiveLayout layout = test::small_layout(PixelType::kFloat32);
  test::write_archive(path("nan.h5"), layout, 8);
  test::poke_nan(path("nan.h5"), 3);
  const std::string message =
      path("nan.h5") + ": /images tile 3: 1 NaN or infinite value(s), first at channel 1, row 2, column 3";
  for (const int workers : {0, 1, 2}) {
    LoaderOptions options = plain_options(2);
    options.workers = workers;
    TileLoader loader(options, {path("nan.h5")});
    loader.start_epoch(0);
    EXPECT_TRUE(loader.next().has_value());
    EXPECT_EQ(archive_error_of([&] { loader.next(); }), message) << workers << " workers";
    EXPECT_EQ(archive_error_of([&] { loader.next(); }), message) << "the failed epoch stays failed";
    loader.start_epoch(1);
    EXPECT_TRUE(loader.next().has_value()) << "a new epoch starts afresh";
  }
  LoaderOptions options = plain_options(2);
  options.skip_non_finite = true;
  options.workers = 2;
  TileLoader loader(options, {path("nan.h5")});
  const std::vector<Batch> batches = epoch_batches(loader, 0);
  ASSERT_EQ(batches.size(), 4U);
  EXPECT_EQ(batches[1].indices, std::vector<int64_t>{2});
  EXPECT_EQ(batches[1].image.size(0), 1);
  EXPECT_EQ(batches[1].mask.size(0), 1);
  EXPECT_EQ(batches[1].skipped, 1);
  EXPECT_EQ(loader.skipped_tiles(), 1);
}

TEST_F(LoaderTest, DestroyedMidEpochJoinsItsWorkers) {
  test::write_archive(path("a.h5"), test::small_layout(), 20);
  LoaderOptions options = plain_options(1);
  options.workers = 3;
  options.prefetch = 2;
  {
    TileLoader loader(options, {path("a.h5")});
    loader.start_epoch(0);
    EXPECT_TRUE(loader.next().has_value());
    loader.start_epoch(1);  // abandons epoch 0 with batches in flight
    EXPECT_EQ(loader.next()->indices, std::vector<int64_t>{0});
  }
  TileLoader never_read(options, {path("a.h5")});
  never_read.start_epoch(0);
}

TEST_F(LoaderTest, BadOptionsRefused) {
  test::write_archive(path("a.h5"), test::small_layout(), 4);  // 5 x 7 tiles
  LoaderOptions options = plain_options(0);
  EXPECT_EQ(invalid_argument_of([&] { TileLoader bad(options, {path("a.h5")}); }),
            "loader batch_size must be at least 1");
  options = plain_options(1);
  options.augmentation.rot90 = true;
  EXPECT_EQ(invalid_argument_of([&] { TileLoader bad(options, {path("a.h5")}); }),
            "augmentation rot90 needs square tiles, got 5 x 7");
  options = plain_options(1);
  options.augmentation.crop_size = 6;
  EXPECT_EQ(invalid_argument_of([&] { TileLoader bad(options, {path("a.h5")}); }),
            "augmentation crop_size 6 outside [0, 5]");
  options = plain_options(1);
  options.rank = 2;
  options.world_size = 2;
  EXPECT_THROW(TileLoader bad(options, {path("a.h5")}), std::invalid_argument);
}

}  // namespace
}  // namespace da::io
