#include "methods/lambda_schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace da::methods {

double LambdaSchedule::at(double progress) const {
  const double p = std::clamp(progress, 0.0, 1.0);
  if (name == "constant") return value;
  if (name == "dann") return value * (2.0 / (1.0 + std::exp(-gamma * p)) - 1.0);
  if (name == "linear") return value * p;
  throw std::invalid_argument("unknown lambda schedule '" + name + "'");
}

double schedule_progress(const std::string& step_mode, long epoch, long max_epochs, long global_step,
                         long total_steps, long warmup_epochs, long steps_per_epoch) {
  if (epoch < warmup_epochs) return 0.0;
  if (step_mode == "epoch") {
    const long span = max_epochs - warmup_epochs;
    return span <= 0 ? 1.0 : static_cast<double>(epoch - warmup_epochs) / static_cast<double>(span);
  }
  if (step_mode == "batch") {
    const long start = warmup_epochs * steps_per_epoch;
    const long span = total_steps - start;
    return span <= 0 ? 1.0 : static_cast<double>(global_step - start) / static_cast<double>(span);
  }
  throw std::invalid_argument("unknown step_mode '" + step_mode + "'");
}

}  // namespace da::methods
