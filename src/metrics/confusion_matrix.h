// Segmentation metrics from a confusion matrix. The matrix is a plain int64
// tensor [K, K] (rows: true class, columns: predicted class), so ranks can
// all-reduce it and validation on N ranks equals one pass over the whole set.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace da::metrics {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(std::int64_t classes);

  // Adds a batch: logits [B,K,H,W] or predictions [B,H,W], masks [B,H,W];
  // pixels whose mask equals ignore_index are skipped.
  void add_logits(const at::Tensor& logits, const at::Tensor& masks, std::int64_t ignore_index);
  void add_predictions(const at::Tensor& predictions, const at::Tensor& masks, std::int64_t ignore_index);

  // The counts, int64 [K, K] on the CPU (mutable, e.g. for an all-reduce).
  at::Tensor& counts() { return counts_; }
  const at::Tensor& counts() const { return counts_; }
  std::int64_t classes() const { return classes_; }
  void reset();

 private:
  std::int64_t classes_;
  at::Tensor counts_;
};

struct SegmentationScores {
  std::vector<double> iou;  // per class; NaN where the class is neither present nor predicted
  std::vector<double> f1;   // per class; NaN likewise
  double miou = 0;          // mean over classes with a defined IoU
  double mean_f1 = 0;
  double overall_accuracy = 0;
  std::int64_t pixels = 0;
};

SegmentationScores compute_scores(const at::Tensor& counts);

// Flat metric names for logging: "iou/<split>", "f1/<split>", "acc/<split>",
// "iou_<class>/<split>" per class (class names when given, else indices).
std::map<std::string, double> score_logs(const SegmentationScores& scores, const std::string& split,
                                         const std::vector<std::string>& class_names = {});

}  // namespace da::metrics
