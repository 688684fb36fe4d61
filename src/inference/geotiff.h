// Class rasters as GeoTIFFs (GDAL): one single-band uint8 file per tile, LZW
// compressed, with the tile's geotransform and CRS, so GIS tools place the
// prediction where the tile came from.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace da::inference {

// Writes `classes` ([height, width], row-major) to `path` atomically (a
// temporary sibling renamed when complete). `crs` is WKT (empty: none);
// `nodata`, when set, is the band's nodata value. Throws std::runtime_error
// naming the file with GDAL's message.
void write_class_geotiff(const std::string& path, const std::uint8_t* classes, std::int64_t height, std::int64_t width,
                         const std::array<double, 6>& geotransform, const std::string& crs, std::optional<int> nodata);

// "tile_000042.tif": the file name of global tile `index`.
std::string geotiff_name(std::int64_t index);

}  // namespace da::inference
