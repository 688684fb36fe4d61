#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace da::trainer {

double LrSchedule::factor(std::int64_t step) const {
  if (step < warmup_steps) return static_cast<double>(step + 1) / static_cast<double>(warmup_steps + 1);
  if (name == "constant") return 1.0;
  const std::int64_t span = std::max<std::int64_t>(1, total_steps - warmup_steps);
  const double q = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(span), 0.0, 1.0);
  if (name == "poly") return min_ratio + (1.0 - min_ratio) * std::pow(1.0 - q, power);
  if (name == "cosine") return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(M_PI * q));
  throw std::invalid_argument("unknown learning-rate schedule '" + name + "'");
}

}  // namespace da::trainer
