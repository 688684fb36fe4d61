// AdaBN (Li et al., "Revisiting Batch Normalization for Practical Domain
// Adaptation", 2016/2018): the target is evaluated with BatchNorm statistics
// estimated on target data instead of the source's. The method adds no loss
// (compute_da_loss returns 0 and it needs no target forward of its own); it
// only asks the trainer, through Method::target_batch_norm_batches(), to
// re-estimate before each validation (and after the last epoch) the running
// mean / variance of the BatchNorm layers the target uses, on the target
// training tiles, with the sums added over the ranks, so the result does not
// depend on their number (see models/batch_norm_statistics.h for exactly what
// is computed). Combine it with any other method: [{name: dann}, {name: adabn}].
//
// Which statistics: under model.bn_mode dsbn, the target branch only (the
// source branch stays as trained). Under joint / separate there is one set of
// statistics, so all of them are replaced: source validation then also runs
// with target statistics, and training continues from them (train mode
// normalises with batch statistics; the running ones drift back with momentum).
//
// The statistics are part of the model: checkpoints written after validation
// (best / epoch / last) carry them, and `da_dist predict --domain target`
// uses them.
//
// Parameters: batches (int, default 0): at most this many target batches
// (data.val_batch_size, else data.batch_size) per rank; 0 = this rank's whole
// shard of data.target.train, which is what makes the result independent of
// the rank count (with a limit the tiles used depend on it).
#pragma once

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class AdaBN : public Method {
 public:
  AdaBN(Params& params, const ModelInfo& model);
  std::string name() const override { return "adabn"; }
  bool uses_target_batch() const override { return false; }
  std::optional<std::int64_t> target_batch_norm_batches() const override { return batches_; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;

 private:
  std::int64_t batches_ = 0;
};

}  // namespace da::methods
