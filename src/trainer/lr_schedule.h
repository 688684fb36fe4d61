// Learning-rate schedules as a multiplier of each group's base rate.
#pragma once

#include <cstdint>
#include <string>

namespace da::trainer {

struct LrSchedule {
  std::string name = "constant";  // constant | poly | cosine
  std::int64_t warmup_steps = 0;  // linear ramp: (step + 1) / (warmup_steps + 1)
  double power = 0.9;             // poly exponent
  double min_ratio = 0.0;         // final rate / base rate for poly and cosine
  std::int64_t total_steps = 1;   // optimizer steps of the whole run

  // Factor at optimizer step `step` (0-based): warm-up first, then
  //   constant: 1
  //   poly:     min + (1 - min) * (1 - q)^power
  //   cosine:   min + (1 - min) * (1 + cos(pi q)) / 2
  // with q the progress after warm-up, in [0, 1].
  double factor(std::int64_t step) const;
};

}  // namespace da::trainer
