#include "callbacks/da_monitor.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <limits>

namespace da::callbacks {

DaMonitor::DaMonitor(const config::DaMonitorOptions& options)
    : options_(options), baseline_(std::numeric_limits<double>::quiet_NaN()) {}

void DaMonitor::on_warm_start_validated(const Metrics& metrics) {
  if (const auto source = metrics.find("iou/source_val"); source != metrics.end()) set_baseline(source->second);
}

void DaMonitor::on_validation_end(const EpochContext& context, Metrics& metrics) {
  const auto source = metrics.find("iou/source_val");
  const auto target = metrics.find("iou/target_val");
  if (source == metrics.end() || target == metrics.end()) return;  // a domain has no validation archives
  if (std::isnan(baseline_)) baseline_ = source->second;
  const double drop = baseline_ - source->second;
  metrics["da_monitor/source_iou"] = source->second;
  metrics["da_monitor/target_iou"] = target->second;
  metrics["da_monitor/gap"] = source->second - target->second;
  metrics["da_monitor/source_drop"] = drop;
  if (drop > options_.forgetting_threshold) {
    spdlog::warn("da_monitor: source mIoU fell {:.4f} below its baseline {:.4f} at epoch {} (threshold {:.4f}): "
                 "the model is forgetting the source domain",
                 drop, baseline_, context.epoch, options_.forgetting_threshold);
  }
}

void DaMonitor::save_state(Metrics& scalars) const { scalars["da_monitor/baseline"] = baseline_; }

void DaMonitor::load_state(const Metrics& scalars) {
  if (auto it = scalars.find("da_monitor/baseline"); it != scalars.end()) baseline_ = it->second;
}

}  // namespace da::callbacks
