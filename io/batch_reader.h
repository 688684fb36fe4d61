// Reads, normalises and augments the tiles of one batch from one ArchiveSet.
// A BatchReader owns its ArchiveSet (open HDF5 handles), so each loader
// thread has its own and no handle is shared across threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/archive_set.h"
#include "io/batch.h"
#include "io/loader_options.h"

namespace da::io {

class BatchReader {
 public:
  // Opens `paths` and resolves the normalisation. Throws ArchiveError (also
  // when masks are wanted and the archives have none) or std::invalid_argument.
  BatchReader(const std::vector<std::string>& paths, const LoaderOptions& options);

  const ArchiveSet& archives() const { return archives_; }

  // Tiles `indices` (global) as one batch, augmented for `epoch`. With
  // skip_non_finite, tiles with NaN/Inf are left out and counted in
  // Batch::skipped (the batch may then even be empty); otherwise they throw
  // the archive's ArchiveError.
  Batch read(const std::vector<int64_t>& indices, int64_t epoch) const;

 private:
  // Tile `index` as float32 [C, H, W], or an undefined tensor when skipped.
  at::Tensor read_image(int64_t index) const;

  ArchiveSet archives_;
  LoaderOptions options_;
  at::Tensor mean_;  // [C, 1, 1]
  at::Tensor std_;
  mutable std::vector<char> buffer_;  // raw pixels of one tile
};

}  // namespace da::io
