#include "io/normalization.h"

#include <stdexcept>
#include <string>

#include "io/archive_error.h"

namespace da::io {
namespace {

double dtype_scale(PixelType type) {
  switch (type) {
    case PixelType::kUint8:
      return 255.0;
    case PixelType::kUint16:
      return 65535.0;
    case PixelType::kFloat32:
      return 1.0;
  }
  throw std::logic_error("unknown pixel type");
}

}  // namespace

BandNormalization resolve_normalization(const NormalizationOptions& options, const ArchiveSet& archives) {
  const size_t bands = archives.info().bands.size();
  std::vector<double> mean;
  std::vector<double> std;
  switch (options.mode) {
    case NormalizationMode::kDtype:
      mean.assign(bands, 0.0);
      std.assign(bands, dtype_scale(archives.info().pixel_type));
      break;
    case NormalizationMode::kArchive: {
      for (size_t i = 0; i < archives.num_shards(); ++i) {
        const ArchiveInfo& info = archives.shard_info(i);
        if (!info.band_mean || !info.band_std) {
          throw ArchiveError(archives.shard_path(i), "",
                             "normalization mode 'archive' needs the band_mean and band_std attributes");
        }
      }
      BandStats stats = *archives.band_stats();
      mean = std::move(stats.mean);
      std = std::move(stats.std);
      break;
    }
    case NormalizationMode::kConfig:
      if (options.mean.size() != bands || options.std.size() != bands) {
        throw std::invalid_argument("normalization mean and std need one value per band (" + std::to_string(bands) +
                                    "), got " + std::to_string(options.mean.size()) + " and " +
                                    std::to_string(options.std.size()));
      }
      mean = options.mean;
      std = options.std;
      break;
  }
  BandNormalization out;
  for (size_t c = 0; c < bands; ++c) {
    if (!(std[c] > 0.0)) {
      throw std::invalid_argument("normalization std of band '" + archives.info().bands[c] + "' is " +
                                  std::to_string(std[c]) + ", must be positive");
    }
    out.mean.push_back(static_cast<float>(mean[c]));
    out.std.push_back(static_cast<float>(std[c]));
  }
  return out;
}

}  // namespace da::io
