// Source and target batches side by side, for domain-adaptation steps.
//
// One domain (by EpochLength) defines the steps of an epoch: its loader runs
// epoch e when the paired epoch e starts. The other domain cycles: it goes on
// where it stopped and, when it runs out, starts its own next epoch (its own
// counter from 0, so it reshuffles). steps_per_epoch() depends only on the
// tile counts, world size and options, so it is the same on every rank.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/batch.h"
#include "io/loader_options.h"
#include "io/tile_loader.h"

namespace da::io {

enum class EpochLength {
  kSource,  // one pass over the source tiles
  kTarget,  // one pass over the target tiles
  kMax,     // the longer of the two (ties: source)
  kMin,     // the shorter of the two (ties: source)
};

// Where a paired epoch stands, to resume it exactly (e.g. from a checkpoint):
// the leading domain's epoch and batches taken, and the same for the cycling
// domain, whose own epoch counter runs independently.
struct PairedPosition {
  int64_t epoch = 0;
  int64_t step = 0;
  int64_t cycling_epoch = 0;
  int64_t cycling_batch = 0;
};

struct PairedBatch {
  Batch source;
  Batch target;
};

class PairedLoader {
 public:
  PairedLoader(const LoaderOptions& source_options, const std::vector<std::string>& source_paths,
               const LoaderOptions& target_options, const std::vector<std::string>& target_paths,
               EpochLength epoch_length);

  int64_t steps_per_epoch() const { return leader().batches_per_epoch(); }
  const TileLoader& source() const { return source_; }
  const TileLoader& target() const { return target_; }

  void start_epoch(int64_t epoch);
  // Continues from `position` as if the pairs before it had been taken.
  void resume(const PairedPosition& position);
  PairedPosition position() const;
  // The next pair, or nullopt after steps_per_epoch() pairs (or before start_epoch).
  std::optional<PairedBatch> next();

 private:
  const TileLoader& leader() const { return source_leads_ ? source_ : target_; }
  // Next batch of the cycling domain, starting its next epoch when it runs out.
  Batch next_cycling(TileLoader& loader);

  TileLoader source_;
  TileLoader target_;
  bool source_leads_ = true;
};

}  // namespace da::io
