// The outputs of one scene: <dir>/<stem>_classes.tif (uint8, nodata 255 when
// the scene has nodata) and optionally <dir>/<stem>_confidence.tif (float32,
// nodata -1), tiled and deflate-compressed, with the scene's geotransform and
// CRS. Rows arrive top to bottom and are written through GDAL in whole tile
// rows, so each compressed tile is written once and memory holds one tile
// row; the files have temporary names until publish() renames them.
#pragma once

#include <gdal.h>

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "inference/scene_reader.h"

namespace da::inference {

inline constexpr int kSceneNodata = 255;

// "<output_dir>/<stem>_<suffix>.tif" for a scene path.
std::string scene_output_path(const std::string& output_dir, const std::string& scene, const std::string& suffix);

class SceneWriter {
 public:
  // Creates the temporary files; throws std::runtime_error naming the output.
  SceneWriter(const SceneReader& scene, const std::string& output_dir, bool confidence);
  // Removes the temporary files unless published.
  ~SceneWriter();
  SceneWriter(const SceneWriter&) = delete;
  SceneWriter& operator=(const SceneWriter&) = delete;

  // The next scene rows [y, y + n): classes uint8 [n, width], confidence float
  // [n, width] (ignored without confidence output). Rows come in order.
  void write(std::int64_t y, const at::Tensor& classes, const at::Tensor& confidence);
  // Writes what is buffered, closes the files and renames them to their names.
  void publish();

  const std::string& classes_path() const { return classes_path_; }

 private:
  void flush();
  void close();

  std::int64_t height_ = 0, width_ = 0;
  std::string classes_path_, confidence_path_, classes_tmp_, confidence_tmp_;
  GDALDatasetH classes_ = nullptr, confidence_ = nullptr;
  std::int64_t tile_rows_ = 0;                     // GDAL block height
  at::Tensor classes_buffer_, confidence_buffer_;  // [tile_rows, width]
  std::int64_t buffer_y_ = 0, buffered_ = 0;       // scene rows [buffer_y_, buffer_y_ + buffered_) held
  bool published_ = false;
};

}  // namespace da::inference
