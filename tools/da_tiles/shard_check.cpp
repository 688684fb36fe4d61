#include "shard_check.h"

#include <exception>
#include <vector>

#include "io/tile_archive.h"

namespace da::tiles {
namespace {

// "" when the archive's attributes and datasets are what `layout` writes.
std::string compare_layout(const io::ArchiveInfo& info, const io::TileArchiveLayout& layout) {
  if (info.domain != layout.domain) return "domain '" + info.domain + "', expected '" + layout.domain + "'";
  if (info.bands != layout.bands) return "bands differ";
  if (info.pixel_type != layout.pixel_type) return "pixel type differs";
  if (info.height != layout.height || info.width != layout.width) return "tile size differs";
  if (info.has_masks != layout.with_masks || info.classes != layout.classes) return "masks or classes differ";
  if (info.ignore_index != layout.ignore_index) return "ignore_index differs";
  if (info.sources != layout.sources || info.crs != layout.crs) return "sources or CRS differ";
  if (!info.has_origin || !info.has_source_id || info.has_geotransform != layout.with_geotransform) {
    return "tile metadata datasets differ";
  }
  if (!info.band_mean || !info.band_std) return "no band statistics";
  return "";
}

}  // namespace

ShardCheck check_shard(const ShardPlan& shard, const io::TileArchiveLayout& layout, const WindowGrid& grid,
                        int64_t stride) {
  try {
    const io::TileArchive archive(shard.path);
    const io::ArchiveInfo& info = archive.info();
    if (std::string why = compare_layout(info, layout); !why.empty()) return {why};
    if (info.num_tiles > shard.windows) {
      return {std::to_string(info.num_tiles) + " tiles, more than the shard's " + std::to_string(shard.windows) +
             " windows"};
    }
    std::vector<unsigned char> image(archive.image_bytes());
    std::vector<uint8_t> mask(archive.mask_bytes());
    int64_t previous = shard.first_window - 1;
    for (int64_t n = 0; n < info.num_tiles; ++n) {
      const auto [row, col] = archive.read_origin(n);
      const int64_t window = row / stride * grid.cols + col / stride;
      const bool on_grid = row >= 0 && col >= 0 && row % stride == 0 && col % stride == 0 &&
                           row / stride < grid.rows && col / stride < grid.cols;
      if (archive.read_source_id(n) != shard.raster || !on_grid || window <= previous ||
          window >= shard.first_window + shard.windows) {
        return {"tile " + std::to_string(n) + " (origin " + std::to_string(row) + ", " + std::to_string(col) +
                ") is not the next window of this shard"};
      }
      previous = window;
      archive.read_image(n, image.data());
      if (info.has_masks) archive.read_mask(n, mask.data());
    }
    return {"", info.num_tiles};
  } catch (const std::exception& error) {
    return {error.what()};
  }
}

}  // namespace da::tiles
