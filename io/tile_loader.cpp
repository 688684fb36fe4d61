#include "io/tile_loader.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "io/distributed_sampler.h"

namespace da::io {

TileLoader::TileLoader(const LoaderOptions& options, const std::vector<std::string>& paths) : options_(options) {
  if (options_.batch_size < 1) throw std::invalid_argument("loader batch_size must be at least 1");
  if (options_.workers < 0) throw std::invalid_argument("loader workers must not be negative");
  if (options_.workers > 0 && options_.prefetch < 1) {
    throw std::invalid_argument("loader prefetch must be at least 1 with background workers");
  }
  reader_ = std::make_unique<BatchReader>(paths, options_);
  // Every shard is validated once, by the first reader; the workers' readers copy its list.
  for (int w = 0; w < options_.workers; ++w) {
    worker_readers_.push_back(std::make_unique<BatchReader>(reader_->archives(), options_));
  }
  // Checks rank, world size and (with kDrop) that every rank gets a tile.
  shard_indices(num_tiles(), 0,
                {options_.rank, options_.world_size, options_.seed, options_.shuffle, options_.remainder});
  const int64_t tiles = tiles_per_rank(num_tiles(), options_.world_size, options_.remainder);
  batches_per_epoch_ = options_.remainder == Remainder::kWrap ? (tiles + options_.batch_size - 1) / options_.batch_size
                                                              : tiles / options_.batch_size;
  if (batches_per_epoch_ == 0) {
    throw std::invalid_argument("loader: " + std::to_string(tiles) + " tile(s) per rank make no whole batch of " +
                                std::to_string(options_.batch_size) + " with remainder 'drop'");
  }
}

TileLoader::~TileLoader() { stop_workers(); }

void TileLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  ready_.clear();
  stopping_ = false;
}

void TileLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  if (first_batch < 0 || first_batch > batches_per_epoch_) {
    throw std::invalid_argument("TileLoader::start_epoch: first batch " + std::to_string(first_batch) +
                                " outside 0.." + std::to_string(batches_per_epoch_));
  }
  stop_workers();
  epoch_ = epoch;
  epoch_tiles_ = shard_indices(
      num_tiles(), epoch, {options_.rank, options_.world_size, options_.seed, options_.shuffle, options_.remainder});
  next_batch_ = first_batch;
  failed_ = nullptr;
  for (int w = 0; w < options_.workers; ++w) threads_.emplace_back(&TileLoader::work, this, w, first_batch);
}

std::vector<int64_t> TileLoader::batch_indices(int64_t b) const {
  std::vector<int64_t> indices;
  const int64_t count = static_cast<int64_t>(epoch_tiles_.size());
  for (int64_t i = b * options_.batch_size; i < (b + 1) * options_.batch_size; ++i) {
    indices.push_back(epoch_tiles_[i % count]);  // wraps only for kWrap's last batch
  }
  return indices;
}

void TileLoader::work(int worker, int64_t first) {
  const BatchReader& reader = *worker_readers_[worker];
  // Worker w owns the batches b with b % workers == w, from the epoch's first batch on.
  const int64_t offset = ((worker - first) % options_.workers + options_.workers) % options_.workers;
  for (int64_t b = first + offset; b < batches_per_epoch_; b += options_.workers) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || b < next_batch_ + options_.prefetch; });
      if (stopping_) return;
    }
    Slot slot;
    try {
      slot.batch = reader.read(batch_indices(b), epoch_);
    } catch (...) {
      slot.error = std::current_exception();
    }
    const bool failed = slot.error != nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(b, std::move(slot));
    }
    changed_.notify_all();
    if (failed) return;
  }
}

std::optional<Batch> TileLoader::next() {
  if (failed_) std::rethrow_exception(failed_);
  if (epoch_ < 0 || next_batch_ >= batches_per_epoch_) return std::nullopt;
  Batch batch;
  if (options_.workers == 0) {
    batch = reader_->read(batch_indices(next_batch_), epoch_);
    ++next_batch_;
  } else {
    Slot slot;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return ready_.count(next_batch_) > 0; });
      auto it = ready_.find(next_batch_);
      slot = std::move(it->second);
      ready_.erase(it);
      ++next_batch_;
    }
    changed_.notify_all();
    if (slot.error) {
      // The failed worker stopped, so later batches of its stripe never come: refuse them all.
      failed_ = slot.error;
      std::rethrow_exception(failed_);
    }
    batch = std::move(*slot.batch);
  }
  skipped_tiles_ += batch.skipped;
  return batch;
}

}  // namespace da::io
