// `da_dist predict --scene`: whole rasters (GeoTIFF, VRT, anything GDAL
// reads) mapped with the sliding window of sliding_window.h, strip by strip,
// so memory is bounded by one band of windows, not by the scene.
//
// For each scene: bands checked against the model (count) and the training
// archives (pixel type); pixels normalised as in training (the checkpoint's
// data.normalize, resolved on the domain's training archives named in the
// checkpoint, the source's when it names no target ones); the scene reflection-padded by overlap/2 on every side (and to
// at least one window) so border pixels get context; windows blended; the
// argmax written as a single-band uint8 GeoTIFF (tiled, deflate) with the
// scene's geotransform and CRS, and pixels that are nodata in any input band
// written as nodata (255). Optionally the winning class's softmax probability
// as a float32 GeoTIFF. Files are written under temporary names and renamed
// when complete.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "inference/checkpoint_model.h"
#include "inference/sliding_window.h"

namespace da::inference {

struct ScenePredictOptions {
  std::string checkpoint;
  std::vector<std::string> scenes;
  std::string output_dir;                           // <dir>/<scene stem>_classes.tif (and _confidence.tif)
  bool confidence = false;
  models::Domain domain = models::Domain::kTarget;  // DSBN branch and the training archives for normalisation
  SlidingWindowOptions window;
};

inline constexpr int kSceneNodata = 255;

// "<output_dir>/<stem>_classes.tif" for a scene path.
std::string scene_output_path(const std::string& output_dir, const std::string& scene, const std::string& suffix);

// Predicts one scene; throws std::runtime_error naming the scene (band count
// or pixel type that does not fit the model, unreadable raster) or the output.
void predict_scene(CheckpointModel& model, const ScenePredictOptions& options, const std::string& scene);

// Predicts the scenes with index % ranks == rank (each output is written by
// exactly one rank). Returns how many this rank wrote.
std::int64_t predict_scenes(const ScenePredictOptions& options, int rank, int ranks);

}  // namespace da::inference
