#include "methods/pseudo_label.h"

#include <torch/nn/functional/loss.h>

#include <stdexcept>

#include "methods/registry.h"

namespace da::methods {

torch::Tensor class_balanced_thresholds(const torch::Tensor& histograms, double portion, double fallback) {
  const auto h = histograms.to(torch::kCPU, torch::kDouble).contiguous();
  const std::int64_t classes = h.size(0), bins = h.size(1);
  auto out = torch::full({classes}, fallback, torch::kDouble);
  const auto* counts = h.data_ptr<double>();
  auto* thresholds = out.data_ptr<double>();
  for (std::int64_t k = 0; k < classes; ++k) {
    const double* row = counts + k * bins;
    double total = 0.0;
    for (std::int64_t b = 0; b < bins; ++b) total += row[b];
    if (total <= 0.0) continue;
    const double needed = portion * total;
    double above = 0.0;
    std::int64_t b = bins - 1;
    for (; b > 0; --b) {
      above += row[b];
      if (above >= needed) break;
    }
    thresholds[k] = static_cast<double>(b) / static_cast<double>(bins);
  }
  return out;
}

PseudoLabel::PseudoLabel(Params& params, const ModelInfo& model)
    : threshold_(params.number(
          "threshold", 0.9,
          {"confidence above which a target pixel is pseudo-labelled (class_balanced: the first epoch's threshold)",
           "psmt's PseudoLabelMethod example, threshold=0.9"},
          Range::between(0.0, 1.0))),
      class_balanced_(params.flag(
          "class_balanced", false,
          {"per-class thresholds from the previous epoch's confidences (CBST)",
           "ours: psmt's plain threshold by default; true is Zou et al. 2018's CBST"})),
      portion_(params.number(
          "portion", 0.2,
          {"class_balanced: share of each class's most confident pixels pseudo-labelled",
           "yzou2/CBST README (SYNTHIA->Cityscapes): --init-tgt-port 0.2, which its solve_AO.py grows by 0.05 a "
           "round up to 0.5; ours: fixed"},
          Range{0.0, 1.0, /*min_exclusive=*/true, false})),
      classes_(model.classes) {
  if (class_balanced_) {
    if (classes_ < 1) throw MethodError(params.path() + ".class_balanced: needs the model's number of classes");
    thresholds_ = torch::full({classes_}, threshold_, torch::kDouble);
    histograms_ = torch::zeros({classes_, kBins}, torch::kDouble);
  }
}

DaLossOutput PseudoLabel::compute_da_loss(const StepInputs& step) {
  const auto& logits = step.target_logits;
  torch::Tensor labels, selected;
  {
    torch::NoGradGuard no_grad;
    const auto [confidence, argmax] = torch::softmax(logits, 1).max(1);
    labels = argmax;
    if (class_balanced_) {
      if (logits.size(1) != classes_) {
        throw std::invalid_argument("pseudo_label: " + std::to_string(logits.size(1)) + " classes in the logits, " +
                                    std::to_string(classes_) + " in the model");
      }
      const auto c = confidence.to(torch::kDouble);
      const auto bin = (c * static_cast<double>(kBins)).floor().to(torch::kLong).clamp(0, kBins - 1);
      const auto index = (argmax * kBins + bin).reshape({-1}).cpu();
      // This step's counts of every rank: the same histograms everywhere, so
      // that rank 0's checkpoint holds them all (see the header).
      auto counts = torch::bincount(index, {}, classes_ * kBins).to(torch::kDouble).reshape({classes_, kBins});
      collectives().all_reduce_sum(counts);
      histograms_ += counts;
      const auto per_pixel = thresholds_.to(c.device()).index({argmax});
      selected = c.ge(per_pixel);
    } else {
      selected = confidence.gt(threshold_);
    }
  }
  // Cross-entropy averaged over the selected pixels, 0 (not NaN) when none
  // is: a masked mean, so the host never waits to learn how many there are.
  const auto per_pixel = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  const auto weight = selected.to(per_pixel.scalar_type());
  DaLossOutput out;
  out.loss = (per_pixel * weight).sum() / weight.sum().clamp_min(1.0);
  out.logs = {{"pseudo_label_loss", out.loss}, {"pseudo_label_ratio", selected.to(torch::kFloat).mean()}};
  if (class_balanced_) out.logs["pseudo_label_threshold_mean"] = thresholds_.mean();
  out.extra["selected"] = selected;
  return out;
}

void PseudoLabel::on_epoch_end(std::int64_t) {
  if (!class_balanced_) return;
  thresholds_ = class_balanced_thresholds(histograms_, portion_, threshold_);
  histograms_.zero_();
}

void PseudoLabel::save_state(torch::serialize::OutputArchive& archive) const {
  if (!class_balanced_) return;
  archive.write("cbst_thresholds", thresholds_);
  archive.write("cbst_histograms", histograms_);
}

void PseudoLabel::load_state(torch::serialize::InputArchive& archive) {
  if (!class_balanced_) return;
  torch::Tensor thresholds, histograms;
  archive.read("cbst_thresholds", thresholds);
  archive.read("cbst_histograms", histograms);
  if (thresholds.sizes() != thresholds_.sizes() || histograms.sizes() != histograms_.sizes()) {
    throw std::runtime_error("pseudo_label: saved class-balanced thresholds have another shape");
  }
  thresholds_ = thresholds.to(torch::kDouble);
  histograms_ = histograms.to(torch::kDouble);
}

DA_REGISTER_METHOD("pseudo_label", PseudoLabel);

}  // namespace da::methods
