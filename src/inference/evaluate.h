// `da_dist evaluate`: the segmentation metrics of a checkpoint on a labelled
// archive, computed as validation computes them (confusion matrix over every
// tile once, pixels with the archive's ignore_index left out).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "inference/checkpoint_model.h"
#include "metrics/confusion_matrix.h"

namespace da::inference {

struct EvaluateOptions {
  std::string checkpoint;
  std::vector<std::string> inputs;                  // files or globs: the shards of one labelled tile set
  models::Domain domain = models::Domain::kTarget;  // DSBN branch (no effect without domain-specific BN)
  std::int64_t batch_size = 0;                      // 0: the checkpoint's validation batch size
};

struct Evaluation {
  std::string checkpoint;
  std::vector<std::string> inputs;
  models::Domain domain = models::Domain::kTarget;
  std::vector<std::string> class_names;  // the archive's
  std::int64_t tiles = 0;
  at::Tensor counts;  // int64 [K, K], rows: true class, columns: predicted class
  metrics::SegmentationScores scores;
};

// Throws std::runtime_error naming the archive when it has no masks or its
// bands or classes do not match the model.
Evaluation evaluate(CheckpointModel& model, const EvaluateOptions& options);

// Same, loading the model of options.checkpoint first.
Evaluation evaluate(const EvaluateOptions& options);

// Per-class IoU and F1, then mIoU, mean F1 and overall accuracy, as a text table.
std::string scores_table(const Evaluation& evaluation);

// The same numbers (and the confusion matrix) as a JSON object; undefined
// per-class scores (class neither present nor predicted) are null.
std::string scores_json(const Evaluation& evaluation);

}  // namespace da::inference
