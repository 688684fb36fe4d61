// Per-band normalisation constants of a domain, resolved once from the
// options and the archives.
#pragma once

#include <vector>

#include "io/archive_set.h"
#include "io/loader_options.h"

namespace da::io {

// (value - mean[c]) / std[c] for band c.
struct BandNormalization {
  std::vector<float> mean;
  std::vector<float> std;
};

// Throws std::invalid_argument for a config mean/std whose size is not the
// band count or a std that is not positive, and ArchiveError naming the first
// file without band_mean/band_std in archive mode.
BandNormalization resolve_normalization(const NormalizationOptions& options, const ArchiveSet& archives);

}  // namespace da::io
