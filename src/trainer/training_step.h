// The forward half of one training step: the source batch through the model
// (segmentation loss), the target batch as the methods need it, each method's
// domain-adaptation loss, and total = seg + sum(loss_weight * da_loss).
//
// How the two domains meet BatchNorm (model.bn_mode):
//   joint     one forward of the concatenated batch, statistics over both
//             domains (the DANN paper's setting; DANN and entropy expect it)
//   separate  two forwards, each domain normalised by its own statistics
//   dsbn      two forwards through domain-specific BatchNorm branches
// When no method uses the target batch (source_only), and during the DA
// warm-up epochs, only the source batch is forwarded.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/paired_loader.h"
#include "models/segmentation_model.h"
#include "setup/method_setup.h"
#include "trainer/segmentation_loss.h"
#include "trainer/step_log_sums.h"

namespace da::trainer {

struct StepLosses {
  at::Tensor total;                    // the scalar to differentiate
  // loss/seg, loss/da, loss/total, lambda, da/<method>/<key>: tensors stay
  // on the device until logged (step_log_sums.h).
  StepLogs logs;
};

class TrainingStep {
 public:
  TrainingStep(models::SegmentationModel model, std::vector<setup::WeightedMethod>& methods, SegmentationLoss loss,
               std::string bn_mode);

  // `da_active` false (warm-up): lambda is 0 and no method runs, so the DA
  // branch gets no gradient. `batch` must be on the model's device.
  StepLosses forward(const io::PairedBatch& batch, double lambda, std::int64_t global_step, bool da_active);

  // Feature taps the methods asked for (union, in first-asked order).
  const std::vector<std::string>& feature_layers() const { return feature_layers_; }
  bool uses_target() const { return uses_target_; }

 private:
  struct DomainOutputs {
    at::Tensor source_logits, target_logits;
    methods::FeatureMap source_features, target_features;
  };
  DomainOutputs run_model(const io::PairedBatch& batch, bool with_target);

  models::SegmentationModel model_;
  std::vector<setup::WeightedMethod>& methods_;
  SegmentationLoss loss_;
  std::string bn_mode_;
  std::vector<std::string> feature_layers_;
  bool uses_target_ = false;
};

}  // namespace da::trainer
