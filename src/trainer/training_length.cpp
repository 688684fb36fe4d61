#include "trainer/training_length.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace da::trainer {

TrainingLength::TrainingLength(std::int64_t loader_batches, const config::RunOptions& run)
    : accumulate_(run.accumulate_grad_batches) {
  if (loader_batches <= 0) {
    throw std::invalid_argument("TrainingLength: the training loader has no batches (" +
                                std::to_string(loader_batches) + ")");
  }
  batches_per_epoch_ =
      run.limit_train_batches > 0 ? std::min(loader_batches, run.limit_train_batches) : loader_batches;
  optimizer_steps_per_epoch_ = (batches_per_epoch_ + accumulate_ - 1) / accumulate_;
  total_optimizer_steps_ = run.max_epochs * optimizer_steps_per_epoch_;
  if (run.max_steps > 0) total_optimizer_steps_ = std::min(total_optimizer_steps_, run.max_steps);
  epochs_ = (total_optimizer_steps_ + optimizer_steps_per_epoch_ - 1) / optimizer_steps_per_epoch_;
}

std::int64_t TrainingLength::batches_in_epoch(std::int64_t epoch) const {
  const std::int64_t remaining = total_optimizer_steps_ - epoch * optimizer_steps_per_epoch_;
  if (remaining >= optimizer_steps_per_epoch_) return batches_per_epoch_;
  // Fewer optimizer steps than a whole epoch makes: whole accumulation
  // windows only (remaining * k < batches_per_epoch_ here).
  return std::max<std::int64_t>(remaining, 0) * accumulate_;
}

std::int64_t TrainingLength::total_batches() const {
  return (epochs_ - 1) * batches_per_epoch_ + batches_in_epoch(epochs_ - 1);
}

}  // namespace da::trainer
