#include "io/paired_loader.h"

#include <algorithm>
#include <utility>

namespace da::io {

PairedLoader::PairedLoader(const LoaderOptions& source_options, const std::vector<std::string>& source_paths,
                           const LoaderOptions& target_options, const std::vector<std::string>& target_paths,
                           EpochLength epoch_length)
    : source_(source_options, source_paths), target_(target_options, target_paths) {
  const int64_t source_steps = source_.batches_per_epoch();
  const int64_t target_steps = target_.batches_per_epoch();
  switch (epoch_length) {
    case EpochLength::kSource:
      source_leads_ = true;
      break;
    case EpochLength::kTarget:
      source_leads_ = false;
      break;
    case EpochLength::kMax:
      source_leads_ = source_steps >= target_steps;
      break;
    case EpochLength::kMin:
      source_leads_ = source_steps <= target_steps;
      break;
  }
}

void PairedLoader::start_epoch(int64_t epoch) {
  TileLoader& leader = source_leads_ ? source_ : target_;
  TileLoader& follower = source_leads_ ? target_ : source_;
  leader.start_epoch(epoch);
  if (follower.epoch() < 0) follower.start_epoch(0);
}

void PairedLoader::resume(const PairedPosition& position) {
  TileLoader& leader = source_leads_ ? source_ : target_;
  TileLoader& follower = source_leads_ ? target_ : source_;
  leader.start_epoch(position.epoch, position.step);
  follower.start_epoch(position.cycling_epoch, position.cycling_batch);
}

PairedPosition PairedLoader::position() const {
  const TileLoader& follower = source_leads_ ? target_ : source_;
  return {leader().epoch(), leader().position(), std::max<int64_t>(follower.epoch(), 0), follower.position()};
}

Batch PairedLoader::next_cycling(TileLoader& loader) {
  std::optional<Batch> batch = loader.next();
  if (!batch) {
    loader.start_epoch(loader.epoch() + 1);
    batch = loader.next();
  }
  return std::move(*batch);
}

std::optional<PairedBatch> PairedLoader::next() {
  TileLoader& leader = source_leads_ ? source_ : target_;
  TileLoader& follower = source_leads_ ? target_ : source_;
  std::optional<Batch> lead = leader.next();
  if (!lead) return std::nullopt;
  Batch follow = next_cycling(follower);
  if (source_leads_) return PairedBatch{std::move(*lead), std::move(follow)};
  return PairedBatch{std::move(follow), std::move(*lead)};
}

}  // namespace da::io
