// Validation on one domain: the model in eval mode over this rank's shard of
// the validation archives, into a confusion matrix. Tiles that the sharding
// pads in (the last round wrapping to the start) are left out, so the sum of
// all ranks' matrices is exactly one pass over the validation set; the
// trainer all-reduces it. On the target, the same pass feeds the label-free
// model-selection signals (metrics/label_free_signals.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

#include "io/tile_loader.h"
#include "metrics/label_free_signals.h"
#include "models/segmentation_model.h"

namespace da::trainer {

struct ValidationSet {
  io::TileLoader& loader;
  models::Domain domain;  // the BatchNorm branch (dsbn); source or target
};

// Counts [K, K] int64 on the CPU for this rank's tiles (unreduced);
// undefined when the set's archives have no masks. `signals`, when given,
// gets the logits of this rank's tiles.
at::Tensor confusion_counts(models::SegmentationModelImpl& model, const ValidationSet& set, c10::Device device,
                            std::int64_t classes, std::int64_t ignore_index,
                            metrics::LabelFreeSignals* signals = nullptr);

// Validation visits tiles in index order (no shuffle), so rank r's own tiles
// are r, r + world_size, ... in increasing order; the padding that wraps to
// the start (and a last batch filled up from the rank's first tiles) repeats
// tiles of lower index. `tile` is kept when it is the rank's and above the
// last kept one (-1 at the start of a pass).
bool is_own_tile(std::int64_t tile, std::int64_t last_kept, int rank, int world_size);

}  // namespace da::trainer
