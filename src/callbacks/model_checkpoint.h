// Checkpoint writing: last.pt every epoch, best.pt when the monitored metric
// improves, epoch-NNNN.pt every N epochs keeping the newest K, all in the
// run's checkpoints/ directory.
#pragma once

#include <deque>

#include "callbacks/callback.h"
#include "config/options.h"

namespace da::callbacks {

class ModelCheckpoint : public Callback {
 public:
  ModelCheckpoint(const config::CheckpointOptions& options, std::string directory);
  std::string name() const override { return "checkpoint"; }
  void on_epoch_end(const EpochContext& context, const Metrics& metrics) override;
  void save_state(Metrics& scalars) const override;
  void load_state(const Metrics& scalars) override;

  double best() const { return best_; }
  const std::string& directory() const { return directory_; }

 private:
  config::CheckpointOptions options_;
  std::string directory_;
  double best_;
  std::deque<std::string> periodic_;  // kept epoch-NNNN.pt files, oldest first
  bool warned_missing_ = false;
};

}  // namespace da::callbacks
