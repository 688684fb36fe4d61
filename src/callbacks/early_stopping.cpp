#include "callbacks/early_stopping.h"

#include <spdlog/spdlog.h>

#include <limits>
#include <stdexcept>

namespace da::callbacks {

EarlyStopping::EarlyStopping(const config::EarlyStoppingOptions& options)
    : options_(options), best_(std::numeric_limits<double>::quiet_NaN()) {}

void EarlyStopping::on_validation_end(const EpochContext& context, Metrics& metrics) {
  const auto it = metrics.find(options_.monitor);
  if (it == metrics.end()) {
    throw std::runtime_error("callbacks.early_stopping.monitor: metric '" + options_.monitor +
                             "' is not logged after validation");
  }
  if (improves(it->second, best_, options_.mode, options_.min_delta)) {
    best_ = it->second;
    waited_ = 0;
    return;
  }
  if (++waited_ >= options_.patience) {
    stop_ = true;
    spdlog::info("early stopping at epoch {}: {} has not improved on {:.4f} for {} validations", context.epoch,
                 options_.monitor, best_, waited_);
  }
}

void EarlyStopping::save_state(Metrics& scalars) const {
  scalars["early_stopping/best"] = best_;
  scalars["early_stopping/waited"] = static_cast<double>(waited_);
}

void EarlyStopping::load_state(const Metrics& scalars) {
  if (auto it = scalars.find("early_stopping/best"); it != scalars.end()) best_ = it->second;
  if (auto it = scalars.find("early_stopping/waited"); it != scalars.end()) waited_ = static_cast<std::int64_t>(it->second);
}

}  // namespace da::callbacks
