// Cuts a run of a raster's windows (tile_plan.h) into a tile archive: reads
// them a window row segment at a time (one GDAL read for up to 64 MiB of
// neighbouring windows, not one per tile), skips tiles over the nodata and
// ignore thresholds, and appends the rest with their origin, source id and
// geotransform. A pixel is nodata when any band holds that band's nodata
// value (or NaN); its label becomes ignore_index, so nodata never trains as
// a class.
#pragma once

#include <cstdint>
#include <functional>

#include "io/tile_archive_writer.h"
#include "raster_source.h"
#include "tile_plan.h"
#include "tile_stats.h"

namespace da::tiles {

struct CutSettings {
  int64_t tile_size = 0;
  int64_t stride = 0;
  double max_nodata = 0.0;
  double max_ignore = 1.0;
  int64_t classes = 0;
  int64_t ignore_index = 255;
};

struct TileCounts {
  int64_t written = 0;
  int64_t skipped_nodata = 0;
  int64_t skipped_ignore = 0;
  TileCounts& operator+=(const TileCounts& other);
};

// The most bytes one read of image windows holds (more only for a single window that is larger).
inline constexpr int64_t kReadBufferBytes = int64_t{64} << 20;

// Cuts windows [first, first + count) of `image` (and `labels`, null when
// unlabelled, which must have the image's size) into `writer` and `stats`.
// `on_read(windows)` is called after each read with the windows it covered.
TileCounts cut_windows(const CutSettings& settings, const RasterSource& image, const RasterSource* labels,
                       int32_t source_id, int64_t first, int64_t count, io::TileArchiveWriter& writer,
                       BandAccumulator& stats, const std::function<void(int64_t)>& on_read = {});

}  // namespace da::tiles
