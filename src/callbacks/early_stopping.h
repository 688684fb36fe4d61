// Early stopping: stop when the monitored metric has not improved by more
// than min_delta for `patience` validations in a row.
#pragma once

#include "callbacks/callback.h"
#include "config/options.h"

namespace da::callbacks {

class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(const config::EarlyStoppingOptions& options);
  std::string name() const override { return "early_stopping"; }
  void on_validation_end(const EpochContext& context, Metrics& metrics) override;
  bool should_stop() const override { return stop_; }
  void save_state(Metrics& scalars) const override;
  void load_state(const Metrics& scalars) override;

 private:
  config::EarlyStoppingOptions options_;
  double best_;
  std::int64_t waited_ = 0;
  bool stop_ = false;
};

}  // namespace da::callbacks
