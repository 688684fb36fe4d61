// Batches of one domain for one rank: sharded, augmented, normalised and
// optionally prefetched by background threads.
//
// Epoch layout: the rank's tiles are shard_indices(n, epoch, {rank,
// world_size, seed, shuffle, remainder}) (tiles_per_rank of them, the same
// count on every rank), cut in order into batches of batch_size. A last
// partial batch follows the same remainder policy: kWrap fills it up from the
// start of the rank's list (cycling if the list is shorter than a batch),
// kDrop leaves it out. So every rank runs
//   batches_per_epoch() = ceil (kWrap) or floor (kDrop) of tiles_per_rank / batch_size
// steps, which depends only on the tile count, world size and options.
//
// Determinism: the order of tiles and each tile's augmentation follow from
// (seed, epoch, tile index) alone, so batches are identical for any number of
// workers and any thread timing. Worker w builds batches w, w + W, ...; the
// consumer takes batch b only after b - 1, and at most `prefetch` finished
// batches wait at any time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "io/batch.h"
#include "io/batch_reader.h"
#include "io/loader_options.h"

namespace da::io {

class TileLoader {
 public:
  // Opens `paths` (files or globs) once per reader (the calling thread's and
  // one per worker) and checks the options. Throws std::invalid_argument or
  // ArchiveError.
  TileLoader(const LoaderOptions& options, const std::vector<std::string>& paths);
  TileLoader(const TileLoader&) = delete;
  TileLoader& operator=(const TileLoader&) = delete;
  // Stops and joins the workers, also in the middle of an epoch.
  ~TileLoader();

  const ArchiveInfo& info() const { return reader_->archives().info(); }
  const LoaderOptions& options() const { return options_; }
  BandNormalization normalization() const { return reader_->normalization(); }
  int64_t num_tiles() const { return reader_->archives().size(); }
  int64_t batches_per_epoch() const { return batches_per_epoch_; }

  // Starts (or restarts) `epoch` at batch `first_batch` (resuming mid-epoch:
  // the batches are those the epoch would give from there): abandons what is
  // left of the current one.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  int64_t epoch() const { return epoch_; }
  // Batches of the current epoch returned so far (counting a resumed start).
  int64_t position() const { return next_batch_; }
  // The epoch's next batch, or nullopt once all batches_per_epoch() were
  // returned (or before any start_epoch). Rethrows a worker's error (e.g. the
  // ArchiveError of a bad tile) when its batch is reached.
  std::optional<Batch> next();
  // Tiles skipped for NaN/Inf in the batches returned so far (all epochs).
  int64_t skipped_tiles() const { return skipped_tiles_; }

 private:
  // Global tile indices of batch `b` of the current epoch.
  std::vector<int64_t> batch_indices(int64_t b) const;
  void stop_workers();
  void work(int worker, int64_t first);

  LoaderOptions options_;
  std::unique_ptr<BatchReader> reader_;                       // the calling thread's
  std::vector<std::unique_ptr<BatchReader>> worker_readers_;  // one per worker, used only by that worker
  int64_t batches_per_epoch_ = 0;
  int64_t epoch_ = -1;
  std::vector<int64_t> epoch_tiles_;  // this rank's tiles in the current epoch
  int64_t next_batch_ = 0;            // the batch next() returns next
  int64_t skipped_tiles_ = 0;
  std::exception_ptr failed_;  // a worker error already rethrown: the epoch cannot go on

  // Shared with the workers, under mutex_.
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int64_t, Slot> ready_;  // finished batches by number
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace da::io
