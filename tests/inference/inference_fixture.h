// Shared by the inference tests (predict and evaluate, export, test-time
// augmentation, scene maps): tile archives with reproducible pixels and
// labels, a tiny model with non-default BatchNorm statistics saved as a
// training checkpoint, its logits computed here, da_dist run as a process,
// and the Inference fixture that writes two archives and a checkpoint for
// each test.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "models/segmentation_model.h"
#include "support/process.h"

namespace da::test {

constexpr std::int64_t kSize = 32;
constexpr std::int64_t kBands = 3;
constexpr std::int64_t kClasses = 3;
inline const std::vector<std::string> kClassNames = {"background", "building", "road"};

// The WKT of EPSG:32632, the CRS of archives written with `geo`.
std::string utm32_wkt();

// The geotransform of tile n of an archive written with `geo`.
std::array<double, 6> geotransform_of(std::int64_t n);

struct ArchiveSpec {
  std::int64_t tiles = 4;
  std::int64_t bands = kBands;
  std::int64_t seed = 0;
  bool masks = true;
  bool geo = false;
};

// An archive of `spec.tiles` kSize x kSize tiles of reproducible pixels with
// some structure (so a random model does not predict one class everywhere),
// labels with a few ignored pixels, origins, source ids, band statistics and,
// with `geo`, geotransforms and a CRS.
void write_archive(const std::string& path, const ArchiveSpec& spec);

// A tiny model whose BN running statistics are not the defaults (and differ
// between the DSBN branches), saved as a training checkpoint.
models::SegmentationModel make_model(bool dsbn);

// Saves `model` as a training checkpoint whose configuration trains on
// `source` and normalises by `normalize`.
void save_checkpoint(const std::string& path, models::SegmentationModel& model, const std::string& source, bool dsbn,
                     const std::string& normalize = "dtype");

// The eval-mode logits of `model` on `normalised`, through `domain`'s BatchNorm branch.
at::Tensor logits_of(models::SegmentationModel& model, const at::Tensor& normalised, models::Domain domain);

// The message of the exception `action` throws, or "no error".
template <class Action>
std::string error_of(Action&& action) {
  try {
    action();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

// da_dist predict / evaluate as processes.
ProcessResult da_dist(const std::vector<std::string>& args);

class Inference : public testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::string dir_, geo_, plain_, checkpoint_;
  models::SegmentationModel model_{nullptr};
};

}  // namespace da::test
