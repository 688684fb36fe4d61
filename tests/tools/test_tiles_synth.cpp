// da_tiles synth as a process, its output read back with the io reader:
// the requested counts, valid masks and stored statistics, the same tiles
// for the same seed, and a measurable per-class domain shift that costs a
// source classifier accuracy on the target.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/tile_archive.h"
#include "tools/tiles_fixture.h"

namespace {

using da::io::TileArchive;
using da::test::all_images;
using da::test::all_masks;
using da::test::synth;
using da::test::TempDir;

TEST(DaTilesSynth, WritesRequestedCountsWithValidMasksAndStats) {
  TempDir dir;
  synth(dir.path(), 1);
  for (const auto& [name, count] : std::vector<std::pair<std::string, int64_t>>{
           {"source_train.h5", 40}, {"source_val.h5", 12}, {"target_train.h5", 40}, {"target_val.h5", 12}}) {
    const TileArchive archive(dir / name);
    const auto& info = archive.info();
    EXPECT_EQ(archive.size(), count) << name;
    EXPECT_EQ(info.height, 32);
    EXPECT_EQ(info.width, 32);
    EXPECT_EQ(info.pixel_type, da::io::PixelType::kUint8);
    EXPECT_EQ(info.bands, (std::vector<std::string>{"red", "green", "blue"}));
    EXPECT_EQ(info.classes, (std::vector<std::string>{"background", "building", "road", "water"}));
    EXPECT_EQ(info.domain, name.rfind("source", 0) == 0 ? "source" : "target");
    ASSERT_TRUE(info.has_masks);
    ASSERT_TRUE(info.band_mean && info.band_std);
    std::array<int64_t, 4> seen{};
    for (uint8_t value : all_masks(archive)) {
      ASSERT_LT(value, 4) << name;
      ++seen[value];
    }
    for (int k = 0; k < 4; ++k) EXPECT_GT(seen[k], 0) << name << " class " << k;
    // The stored statistics are those of the stored pixels.
    const std::vector<uint8_t> images = all_images(archive);
    const size_t band_pixels = 32 * 32;
    double sum = 0;
    for (int64_t t = 0; t < count; ++t) {
      for (size_t i = 0; i < band_pixels; ++i) sum += images[t * archive.image_bytes() + i];  // red
    }
    EXPECT_NEAR((*info.band_mean)[0], sum / (count * band_pixels), 1e-6);
  }
}

TEST(DaTilesSynth, SameSeedGivesIdenticalTilesAndOtherSeedDiffers) {
  TempDir first, second, third;
  synth(first.path(), 7);
  synth(second.path(), 7);
  synth(third.path(), 8);
  for (const char* name : {"source_train.h5", "target_val.h5"}) {
    const TileArchive a(first / name), b(second / name), c(third / name);
    EXPECT_EQ(all_images(a), all_images(b)) << name;
    EXPECT_EQ(all_masks(a), all_masks(b)) << name;
    EXPECT_NE(all_images(a), all_images(c)) << name;
  }
}

// Per-class mean colour of every labelled pixel in an archive.
std::array<std::array<double, 3>, 4> class_means(const TileArchive& archive) {
  const std::vector<uint8_t> images = all_images(archive), masks = all_masks(archive);
  const size_t pixels = archive.mask_bytes();
  std::array<std::array<double, 3>, 4> sums{};
  std::array<double, 4> counts{};
  for (int64_t t = 0; t < archive.size(); ++t) {
    for (size_t i = 0; i < pixels; ++i) {
      const uint8_t k = masks[t * pixels + i];
      for (int b = 0; b < 3; ++b) sums[k][b] += images[t * archive.image_bytes() + b * pixels + i];
      ++counts[k];
    }
  }
  for (int k = 0; k < 4; ++k) {
    for (int b = 0; b < 3; ++b) sums[k][b] /= counts[k];
  }
  return sums;
}

// Pixel accuracy of the nearest-class-mean-colour classifier with `means`.
double nearest_mean_accuracy(const TileArchive& archive, const std::array<std::array<double, 3>, 4>& means) {
  const std::vector<uint8_t> images = all_images(archive), masks = all_masks(archive);
  const size_t pixels = archive.mask_bytes();
  int64_t correct = 0;
  for (int64_t t = 0; t < archive.size(); ++t) {
    for (size_t i = 0; i < pixels; ++i) {
      int best = 0;
      double best_distance = 1e300;
      for (int k = 0; k < 4; ++k) {
        double distance = 0;
        for (int b = 0; b < 3; ++b) {
          const double d = images[t * archive.image_bytes() + b * pixels + i] - means[k][b];
          distance += d * d;
        }
        if (distance < best_distance) best_distance = distance, best = k;
      }
      correct += best == masks[t * pixels + i];
    }
  }
  return static_cast<double>(correct) / static_cast<double>(archive.size() * pixels);
}

TEST(DaTilesSynth, TargetIsShiftedPerClassAndSourceClassifierLosesAccuracy) {
  TempDir dir;
  synth(dir.path(), 3);
  const TileArchive source_train(dir / "source_train.h5"), source_val(dir / "source_val.h5");
  const TileArchive target_val(dir / "target_val.h5");
  const auto source_means = class_means(source_train);
  const auto target_means = class_means(target_val);
  std::array<double, 3> shift_first{};
  for (int k = 0; k < 4; ++k) {
    double distance = 0;
    std::array<double, 3> shift{};
    for (int b = 0; b < 3; ++b) {
      shift[b] = target_means[k][b] - source_means[k][b];
      distance += shift[b] * shift[b];
    }
    EXPECT_GT(std::sqrt(distance), 20.0) << "class " << k;
    // Not one constant offset: some class moves differently from class 0.
    if (k == 0) shift_first = shift;
  }
  double spread = 0;
  for (int k = 1; k < 4; ++k) {
    for (int b = 0; b < 3; ++b) {
      spread = std::max(spread, std::abs((target_means[k][b] - source_means[k][b]) - shift_first[b]));
    }
  }
  EXPECT_GT(spread, 20.0);
  const double on_source = nearest_mean_accuracy(source_val, source_means);
  const double on_target = nearest_mean_accuracy(target_val, source_means);
  EXPECT_GT(on_source, 0.9);
  EXPECT_LT(on_target, on_source - 0.3) << "source " << on_source << ", target " << on_target;
  // The target stays learnable: its own class means classify it well.
  EXPECT_GT(nearest_mean_accuracy(target_val, target_means), 0.7);
}

}  // namespace
