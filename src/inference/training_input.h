// What a checkpoint's model expects of its input pixels, from the training
// archives named in the checkpoint: the domain's training archives (the
// target's for the target branch when the checkpoint names any, else the
// source's) give the pixel type and band names, and the checkpoint's
// data.normalize resolved on them gives the per-band normalisation, exactly as
// validation normalised during training. Shared by scene prediction and export.
#pragma once

#include <string>
#include <vector>

#include "inference/checkpoint_model.h"
#include "io/normalization.h"
#include "io/tile_archive.h"

namespace da::inference {

struct TrainingInput {
  std::vector<std::string> archives;  // the training archives it comes from
  io::ArchiveInfo info;               // their first shard's info (bands, classes, pixel type, tile size)
  io::BandNormalization normalization;
};

// Throws std::runtime_error when the archives cannot be opened (saying the
// normalisation needs them), or the normalisation does not resolve on them.
TrainingInput training_input(const CheckpointModel& model, models::Domain domain);

}  // namespace da::inference
