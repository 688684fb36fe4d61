// Self-training with confidence-thresholded pseudo-labels: target pixels
// whose top softmax probability exceeds `threshold` (0.9) are supervised with
// their arg-max class by cross-entropy (mean over those pixels). Logs
// pseudo_label_loss and pseudo_label_ratio (share of target pixels used).
// When no pixel passes, the loss is an exact zero that still belongs to the
// graph (no NaN, no missing gradient).
//
// class_balanced: true (false) gives class-balanced thresholds as in CBST
// (Zou et al., ECCV 2018): each epoch, class k's threshold is the
// (1 - portion) quantile of the confidences of the target pixels predicted as
// k during the previous epoch, so that about the `portion` (0.2, in (0, 1])
// most confident pixels of every class are pseudo-labelled, rare classes
// included; a pixel predicted as k is selected when its confidence is >= the
// threshold of k. The quantiles come from per-class histograms of the
// confidences (kBins bins on [0, 1]) accumulated at every compute_da_loss;
// each step's counts are summed over the ranks before they are added, so
// every rank holds the histograms of the global batches of the epoch so far,
// and the thresholds are identical on every rank and do not depend on the
// number of ranks (up to the bin width: a threshold is the lower edge of the
// bin where the count from the top first reaches portion * the class's
// pixels). The first epoch, and any class with no predicted pixel in the
// previous epoch, use the fixed `threshold`. Thresholds and the running
// histograms are method state (save_state / load_state); as both are the
// same on every rank, the checkpoint written by rank 0 mid-epoch resumes
// exactly on any number of ranks. Extra log: pseudo_label_threshold_mean
// (mean of the per-class thresholds in use).
// DaLossOutput::extra["selected"]: the bool mask [B,H,W] of the pseudo-labelled
// pixels (both variants).
#pragma once

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class PseudoLabel : public Method {
 public:
  static constexpr std::int64_t kBins = 1000;

  PseudoLabel(Params& params, const ModelInfo& model);
  std::string name() const override { return "pseudo_label"; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;
  void on_epoch_end(std::int64_t epoch) override;

  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

  // Class-balanced only: the per-class thresholds in use [classes] (double)
  // and the histograms of the epoch so far, summed over the ranks [classes, kBins].
  const torch::Tensor& thresholds() const { return thresholds_; }
  const torch::Tensor& histograms() const { return histograms_; }

 private:
  double threshold_;
  bool class_balanced_;
  double portion_;
  std::int64_t classes_;
  torch::Tensor thresholds_;
  torch::Tensor histograms_;
};

// CBST thresholds from per-class confidence histograms [K, bins] on [0, 1]:
// for class k with n_k > 0 pixels, the lower edge of the highest bin b such
// that the pixels in bins >= b number at least portion * n_k; `fallback` for
// classes without pixels.
torch::Tensor class_balanced_thresholds(const torch::Tensor& histograms, double portion, double fallback);

}  // namespace da::methods
