// The schedule of lambda, the gradient-reversal coefficient.
//
// Meaning (one meaning, everywhere): lambda scales the gradient that the
// feature extractor receives from an adversarial branch. The discriminator
// always learns from the full domain loss; a method's constant `loss_weight`
// scales its loss in the total. The Python tools our users come from also
// multiply the loss by lambda, so their encoder sees lambda^2 and their
// discriminator starts frozen; a method's `lambda_in_loss: true` restores
// that behaviour.
#pragma once

#include <string>

namespace da::methods {

struct LambdaSchedule {
  std::string name = "dann";  // constant | dann | linear
  double value = 1.0;         // final (or constant) value
  double gamma = 10.0;        // steepness of dann

  // lambda at progress p in [0, 1] (clamped):
  //   constant: value
  //   dann:     value * (2 / (1 + exp(-gamma * p)) - 1)
  //   linear:   value * p
  double at(double progress) const;
};

// Progress of training for the schedule. `step_mode` "epoch": epoch /
// max_epochs; "batch": global_step / total_steps (the global batch counter,
// identical on every rank). Warm-up epochs hold lambda at 0 and progress
// starts counting after them.
double schedule_progress(const std::string& step_mode, long epoch, long max_epochs, long global_step,
                         long total_steps, long warmup_epochs, long steps_per_epoch);

}  // namespace da::methods
