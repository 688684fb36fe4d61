// Callbacks on the model of Lightning's: hooks the trainer calls at the end
// of each epoch. Every rank runs them on the same (all-reduced) metrics, so
// their decisions (best value, stop) agree everywhere; only rank 0 touches
// files, through EpochContext::save_checkpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace da::callbacks {

using Metrics = std::map<std::string, double>;

struct EpochContext {
  std::int64_t epoch = 0;        // 0-based epoch just finished
  std::int64_t global_step = 0;  // batches trained so far
  bool validated = false;        // whether this epoch ran validation
  bool is_rank0 = true;
  // Writes a full training checkpoint to the path (rank 0 only; a no-op elsewhere).
  std::function<void(const std::string& path)> save_checkpoint;
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual std::string name() const = 0;

  // Before the first epoch, with the validation scores of the model training
  // starts from when it is a warm start (domain_adaptation.
  // pretrained_checkpoint); not called when training starts from scratch or
  // resumes (the state comes from the checkpoint then).
  virtual void on_warm_start_validated(const Metrics& /*metrics*/) {}
  // After validation: may add metrics of its own (e.g. the DA monitor's).
  virtual void on_validation_end(const EpochContext& /*context*/, Metrics& /*metrics*/) {}
  // After validation and logging.
  virtual void on_epoch_end(const EpochContext& /*context*/, const Metrics& /*metrics*/) {}
  virtual bool should_stop() const { return false; }

  // State carried by checkpoints, as scalars under "<name>/..." keys.
  virtual void save_state(Metrics& /*scalars*/) const {}
  virtual void load_state(const Metrics& /*scalars*/) {}
};

// Whether `value` beats `best` by more than `min_delta` in `mode` (max|min);
// a NaN best (nothing seen yet) is always beaten.
bool improves(double value, double best, const std::string& mode, double min_delta = 0.0);

}  // namespace da::callbacks
