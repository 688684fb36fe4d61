// `da_dist predict --scene`: whole rasters (GeoTIFF, VRT, anything GDAL
// reads) mapped with the sliding window of sliding_window.h, strip by strip,
// so memory is bounded by one band of windows, not by the scene.
//
// For each scene (scene_reader.h): bands checked against the model, pixels
// normalised as in training, the scene reflection-padded by overlap/2 on
// every side; windows blended (optionally with test-time augmentation,
// tta.h); the argmax written as a single-band uint8 GeoTIFF with the scene's
// geotransform and CRS, pixels that are nodata in any input band written as
// nodata (255), and optionally the winning class's softmax probability as a
// float32 GeoTIFF (scene_writer.h), under temporary names renamed when
// complete. Under mpirun, scenes are predicted whole by one rank or split in
// strips across all ranks (scene_split.h); either way the outputs are
// bit-identical to those of a single process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "inference/checkpoint_model.h"
#include "inference/sliding_window.h"
#include "inference/tta.h"

namespace da::inference {

struct ScenePredictOptions {
  std::string checkpoint;
  std::vector<std::string> scenes;
  std::string output_dir;  // <dir>/<scene stem>_classes.tif (and _confidence.tif)
  bool confidence = false;
  models::Domain domain = models::Domain::kTarget;  // DSBN branch and the training archives for normalisation
  SlidingWindowOptions window;
  Tta tta = Tta::kNone;
  // A split scene's strips hold at most this many scene rows, rounded down to
  // whole window rows (at least one); 0: about kStripPixels pixels. Each rank
  // holds one strip of outputs (5 bytes a pixel) and receives another.
  std::int64_t strip_rows = 0;
};

inline constexpr std::int64_t kStripPixels = std::int64_t{1} << 25;

// Predicts one scene in this process; throws std::runtime_error naming the
// scene (band count or pixel type that does not fit the model, unreadable
// raster) or the output.
void predict_scene(CheckpointModel& model, const ScenePredictOptions& options, const std::string& scene);

// Predicts the scenes shared among the ranks of `comm` as scene_split.h
// says; every rank of `comm` must call it with the same options. Returns how
// many outputs this rank wrote.
std::int64_t predict_scenes(const ScenePredictOptions& options, dist::Communicator& comm);

}  // namespace da::inference
