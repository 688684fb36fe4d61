// A scene (any raster GDAL reads) checked against a model and read as the
// sliding window wants it: bands checked against the model (count) and the
// training archives (pixel type); pixels normalised as in training (the
// checkpoint's data.normalize, resolved on the domain's training archives,
// inference/training_input.h); rows of the scene reflection-padded by
// overlap/2 on every side (and to at least one window) so border pixels get
// context. Reads go through GDAL row by row band, never the whole scene.
#pragma once

#include <gdal.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "inference/checkpoint_model.h"
#include "inference/sliding_window.h"

namespace da::inference {

// The most one padded row of a scene (every band, as float) may take: 1 GiB,
// 67 million pixels of 4 bands, wider than any real scene; also the most one
// block (strip or tile, every band) of the scene may take.
inline constexpr std::int64_t kMaxRowBytes = std::int64_t{1} << 30;

class SceneReader {
 public:
  // Throws std::runtime_error naming the scene: unreadable raster, band count
  // or pixel type that does not fit the model, training archives missing, a
  // row or a block over kMaxRowBytes.
  SceneReader(const std::string& scene, const CheckpointModel& model, models::Domain domain,
              const SlidingWindowOptions& window);
  ~SceneReader();
  SceneReader(const SceneReader&) = delete;
  SceneReader& operator=(const SceneReader&) = delete;

  const std::string& path() const { return scene_; }
  std::int64_t height() const { return height_; }
  std::int64_t width() const { return width_; }
  // The padded scene: scene row y is padded row y + margin().
  std::int64_t margin() const { return margin_; }
  std::int64_t padded_height() const { return padded_height_; }
  std::int64_t padded_width() const { return padded_width_; }

  // The geotransform (identity-like when the scene has none) and CRS WKT.
  const std::array<double, 6>& transform() const { return transform_; }
  bool georeferenced() const { return georeferenced_; }
  const std::string& crs() const { return crs_; }
  bool has_nodata() const { return has_nodata_; }

  // Padded rows [y, y + n), normalised, float [C, n, padded_width()].
  at::Tensor padded_rows(std::int64_t y, std::int64_t n);
  // Scene rows [y, y + n): true where any band is its nodata value, bool [n, width()].
  at::Tensor nodata_mask(std::int64_t y, std::int64_t n);

 private:
  at::Tensor scene_rows(std::int64_t y, std::int64_t n);  // float [C, n, width], as stored

  std::string scene_;
  GDALDatasetH dataset_ = nullptr;
  std::int64_t height_ = 0, width_ = 0, bands_ = 0;
  std::int64_t margin_ = 0, padded_height_ = 0, padded_width_ = 0;
  std::array<double, 6> transform_{0, 1, 0, 0, 0, 1};
  bool georeferenced_ = false;
  std::string crs_;
  std::vector<std::optional<double>> nodata_;  // per band
  bool has_nodata_ = false;
  at::Tensor mean_, std_;  // [C, 1, 1]
  at::Tensor columns_;     // padded column -> scene column
};

}  // namespace da::inference
