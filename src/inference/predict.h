// `da_dist predict`: the class masks (and optionally the class probabilities)
// of every tile of an archive, written as a new tile archive, and as one
// GeoTIFF per tile for tiles that carry a geotransform.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "inference/checkpoint_model.h"

namespace da::inference {

struct PredictOptions {
  std::string checkpoint;
  std::vector<std::string> inputs;                  // files or globs: the shards of one tile set
  std::string output;                               // the new archive (written atomically)
  bool probabilities = false;                       // also /probabilities [N, K, H, W] float32, chunked (1, K, H, W)
  std::string geotiff_dir;                          // non-empty: DIR/tile_<index>.tif for each tile with a geotransform
  models::Domain domain = models::Domain::kTarget;  // DSBN branch (no effect without domain-specific BN)
  std::int64_t batch_size = 0;                      // 0: the checkpoint's validation batch size
};

struct PredictSummary {
  std::int64_t tiles = 0;
  std::int64_t geotiffs = 0;
  std::vector<std::string> classes;
};

// The output archive has the input's layout: bands, dtype, tile size, band
// statistics, domain, ignore_index, and the /meta datasets every shard has
// (origin, source_id remapped into the union of the shards' `sources`,
// geotransform with the shards' common crs); its /images are the input's raw
// pixels, its /masks the predicted classes (argmax of the logits), its
// classes the checkpoint's class names (see class_names()). Images are
// normalised exactly as in validation (the checkpoint's data.normalize).
// Throws std::runtime_error (or io::ArchiveError) naming the file at fault;
// nothing is left under `output` then.
PredictSummary predict(CheckpointModel& model, const PredictOptions& options);

// Same, loading the model of options.checkpoint first.
PredictSummary predict(const PredictOptions& options);

}  // namespace da::inference
