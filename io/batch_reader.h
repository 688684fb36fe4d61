// Reads, normalises and augments the tiles of one batch from one ArchiveSet.
// A BatchReader owns its ArchiveSet (open HDF5 handles), so each loader
// thread has its own and no handle is shared across threads; readers made
// from another's archives() share only the shards' validation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/archive_set.h"
#include "io/batch.h"
#include "io/loader_options.h"
#include "io/normalization.h"

namespace da::io {

class BatchReader {
 public:
  // Opens `paths` and resolves the normalisation. Throws ArchiveError (also
  // when masks are wanted and the archives have none) or std::invalid_argument.
  BatchReader(const std::vector<std::string>& paths, const LoaderOptions& options);
  // The same on a copy of `archives` (none of its files open).
  BatchReader(const ArchiveSet& archives, const LoaderOptions& options);

  const ArchiveSet& archives() const { return archives_; }
  // The per-band mean and std batches are (or, without
  // LoaderOptions::normalize, are to be) normalised with.
  BandNormalization normalization() const { return {mean_, std_}; }

  // Tiles `indices` (global) as one batch, augmented for `epoch`. With
  // skip_non_finite, tiles with NaN/Inf are left out and counted in
  // Batch::skipped (the batch may then even be empty); otherwise they throw
  // the archive's ArchiveError.
  Batch read(const std::vector<int64_t>& indices, int64_t epoch) const;

 private:
  // A batch tensor: pooled memory, or pinned when LoaderOptions::pin_memory.
  at::Tensor allocate(at::IntArrayRef sizes, at::ScalarType type) const;
  class BufferPool;

  ArchiveSet archives_;
  LoaderOptions options_;
  std::vector<float> mean_;  // per band
  std::vector<float> std_;
  mutable std::vector<char> buffer_;         // raw pixels of one tile
  mutable std::vector<uint8_t> mask_buffer_;  // raw labels of one tile
  // Batch tensors' memory, recycled when the consumer drops a batch (see batch_reader.cpp).
  std::shared_ptr<BufferPool> pool_;
};

}  // namespace da::io
