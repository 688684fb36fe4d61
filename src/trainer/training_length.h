// How long a run trains, from the loader's epoch and run.max_epochs,
// run.max_steps and run.limit_train_batches, as Lightning's Trainer bounds a
// fit: an epoch trains at most limit_train_batches batches; the run stops
// after max_epochs epochs or max_steps optimizer steps, whichever comes
// first. max_steps counts optimizer steps, as Lightning's global_step does
// (one per accumulate_grad_batches batches, and one for the window an
// epoch's end cuts short); the epoch it ends in is the last one: it
// validates, re-estimates AdaBN statistics and checkpoints as a last epoch.
// The LR and lambda schedules run over this length.
#pragma once

#include <cstdint>

#include "config/options.h"

namespace da::trainer {

class TrainingLength {
 public:
  // `loader_batches`: the training loader's batches per epoch (> 0).
  TrainingLength(std::int64_t loader_batches, const config::RunOptions& run);

  // Epochs that train (the last may be cut short by max_steps).
  std::int64_t epochs() const { return epochs_; }
  bool is_last_epoch(std::int64_t epoch) const { return epoch + 1 == epochs_; }
  // Batches an epoch trains: limit_train_batches (or the loader's epoch),
  // fewer in the epoch that reaches max_steps.
  std::int64_t batches_in_epoch(std::int64_t epoch) const;
  // Batches of a whole epoch, and the optimizer steps they make.
  std::int64_t batches_per_epoch() const { return batches_per_epoch_; }
  std::int64_t optimizer_steps_per_epoch() const { return optimizer_steps_per_epoch_; }
  // Over the whole run.
  std::int64_t total_batches() const;
  std::int64_t total_optimizer_steps() const { return total_optimizer_steps_; }

 private:
  std::int64_t accumulate_ = 1;
  std::int64_t batches_per_epoch_ = 0;
  std::int64_t optimizer_steps_per_epoch_ = 0;
  std::int64_t total_optimizer_steps_ = 0;
  std::int64_t epochs_ = 0;
};

}  // namespace da::trainer
