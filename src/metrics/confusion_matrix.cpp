#include "metrics/confusion_matrix.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace da::metrics {

ConfusionMatrix::ConfusionMatrix(std::int64_t classes)
    : classes_(classes), counts_(at::zeros({classes, classes}, at::kLong)) {
  if (classes < 1) throw std::invalid_argument("a confusion matrix needs at least one class");
}

void ConfusionMatrix::reset() { counts_.zero_(); }

void ConfusionMatrix::add_logits(const at::Tensor& logits, const at::Tensor& masks, std::int64_t ignore_index) {
  add_predictions(logits.argmax(1), masks, ignore_index);
}

void ConfusionMatrix::add_predictions(const at::Tensor& predictions, const at::Tensor& masks,
                                      std::int64_t ignore_index) {
  const auto truth = masks.reshape({-1}).to(at::kCPU, at::kLong);
  const auto predicted = predictions.reshape({-1}).to(at::kCPU, at::kLong);
  const auto valid = truth.ne(ignore_index);
  const auto t = truth.masked_select(valid);
  const auto p = predicted.masked_select(valid);
  if (t.numel() == 0) return;
  if (t.min().item<std::int64_t>() < 0 || t.max().item<std::int64_t>() >= classes_) {
    throw std::out_of_range("mask value outside [0, " + std::to_string(classes_) + ") and not ignore_index " +
                            std::to_string(ignore_index));
  }
  counts_ += at::bincount(t * classes_ + p, {}, classes_ * classes_).reshape({classes_, classes_});
}

SegmentationScores compute_scores(const at::Tensor& counts) {
  const auto c = counts.to(at::kDouble);
  const std::int64_t k = c.size(0);
  const auto tp = c.diagonal();
  const auto fp = c.sum(0) - tp;
  const auto fn = c.sum(1) - tp;
  SegmentationScores s;
  s.pixels = counts.sum().item<std::int64_t>();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double iou_sum = 0, f1_sum = 0;
  int defined = 0;
  for (std::int64_t i = 0; i < k; ++i) {
    const double t = tp[i].item<double>(), p = fp[i].item<double>(), n = fn[i].item<double>();
    const double union_ = t + p + n;
    s.iou.push_back(union_ > 0 ? t / union_ : nan);
    s.f1.push_back(union_ > 0 ? 2 * t / (2 * t + p + n) : nan);
    if (union_ > 0) {
      iou_sum += s.iou.back();
      f1_sum += s.f1.back();
      ++defined;
    }
  }
  s.miou = defined ? iou_sum / defined : nan;
  s.mean_f1 = defined ? f1_sum / defined : nan;
  s.overall_accuracy = s.pixels ? tp.sum().item<double>() / static_cast<double>(s.pixels) : nan;
  return s;
}

std::map<std::string, double> score_logs(const SegmentationScores& scores, const std::string& split,
                                         const std::vector<std::string>& class_names) {
  std::map<std::string, double> logs{
      {"iou/" + split, scores.miou}, {"f1/" + split, scores.mean_f1}, {"acc/" + split, scores.overall_accuracy}};
  for (std::size_t i = 0; i < scores.iou.size(); ++i) {
    const std::string name = i < class_names.size() ? class_names[i] : std::to_string(i);
    logs["iou_" + name + "/" + split] = scores.iou[i];
  }
  return logs;
}

}  // namespace da::metrics
