// GeoTIFFs for the `da_tiles make` tests, written with GDAL: 100 x 120
// pixels, georeferenced (EPSG:32632, kTestTransform).
#pragma once

#include <gdal.h>

#include <array>
#include <functional>
#include <string>

namespace da::test {

inline constexpr int kRasterRows = 100, kRasterCols = 120;
inline constexpr std::array<double, 6> kTestTransform{500000.0, 0.5, 0.0, 5300000.0, 0.0, -0.5};

// `bands` bands of `type` holding value(row, column, band); nodata 0 on every band when `with_nodata`.
void write_geotiff(const std::string& path, GDALDataType type, int bands,
                   const std::function<double(int, int, int)>& value, bool with_nodata);

}  // namespace da::test
