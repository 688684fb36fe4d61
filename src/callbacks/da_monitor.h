// The domain-adaptation monitor of the source documents: after each
// validation it logs the source and target mIoU (da_monitor/source_iou,
// da_monitor/target_iou), their gap (source - target) and the drop of the
// source mIoU from the baseline (the warm-start model's source mIoU, measured
// before training, or else the first validation's), and warns when that drop
// exceeds forgetting_threshold (catastrophic forgetting).
#pragma once

#include "callbacks/callback.h"
#include "config/options.h"

namespace da::callbacks {

class DaMonitor : public Callback {
 public:
  explicit DaMonitor(const config::DaMonitorOptions& options);
  std::string name() const override { return "da_monitor"; }
  // The source mIoU before adaptation (e.g. of the warm-start checkpoint).
  void set_baseline(double source_iou) { baseline_ = source_iou; }
  // The warm-start model's iou/source_val becomes the baseline.
  void on_warm_start_validated(const Metrics& metrics) override;
  void on_validation_end(const EpochContext& context, Metrics& metrics) override;
  void save_state(Metrics& scalars) const override;
  void load_state(const Metrics& scalars) override;

 private:
  config::DaMonitorOptions options_;
  double baseline_;
};

}  // namespace da::callbacks
