// Fuzz target: GeoTIFF files, read as `da_tiles make` reads its rasters
// (RasterSource; the whole make, with and without the raster as its own
// labels, when the raster is small) and as `da_dist predict --scene` reads a
// scene (SceneReader against a model of the raster's bands, then its first
// padded rows and nodata mask). Only GDAL's GTiff driver is registered:
// the other formats GDAL would try on the bytes are not what we promise to
// read. Seeds are GeoTIFFs GDAL writes (fuzz_seeds.cpp).
#include <cpl_conv.h>
#include <gdal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <utility>

#include "fuzz_targets.h"
#include "inference/scene_reader.h"
#include "io/tile_archive_writer.h"
#include "make_tiles.h"
#include "raster_source.h"

namespace da::fuzz {
namespace {

// Rasters up to this many values (pixels x bands) are tiled whole; larger
// ones (a few bytes can claim a raster of any size) only have their corner
// windows read, so that one input stays within a second and the fuzzer's
// memory limit.
constexpr int64_t kSmallRaster = 1 << 20;
// Rows of the scene read through SceneReader are at most this many values.
constexpr int64_t kMaxRowValues = 1 << 22;

void keep_only_gtiff() {
  static std::once_flag once;
  std::call_once(once, [] {
    GDALAllRegister();
    std::string skip;  // comma-separated: some short names hold spaces ("ESRI Shapefile")
    for (int i = 0; i < GDALGetDriverCount(); ++i) {
      const std::string name = GDALGetDriverShortName(GDALGetDriver(i));
      if (name != "GTiff") skip += (skip.empty() ? "" : ",") + name;
    }
    // Applied by every later GDALAllRegister (RasterSource calls it).
    CPLSetConfigOption("GDAL_SKIP", skip.c_str());
    CPLSetConfigOption("GDAL_CACHEMAX", "64");
    CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR");
    GDALAllRegister();
  });
}

// A one-tile training archive of `bands` bands of `type`: the archive a
// model for the scene was trained on (SceneReader takes the pixel type and
// normalisation from it).
const std::string& training_archive(io::PixelType type, int64_t bands) {
  static std::map<std::pair<io::PixelType, int64_t>, std::string> made;
  auto& path = made[{type, bands}];
  if (!path.empty()) return path;
  io::TileArchiveLayout layout;
  layout.domain = "source";
  for (int64_t b = 0; b < bands; ++b) layout.bands.push_back("band" + std::to_string(b + 1));
  layout.pixel_type = type;
  layout.height = layout.width = 4;
  const std::string file = scratch_dir() + "/training_" + std::string(io::pixel_type_name(type)) + "_" +
                           std::to_string(bands) + ".h5";
  io::TileArchiveWriter writer(file, layout);
  std::vector<uint8_t> image(static_cast<size_t>(bands * 16) * io::pixel_size(type), 1);
  if (type == io::PixelType::kFloat32) std::fill_n(reinterpret_cast<float*>(image.data()), bands * 16, 1.0f);
  writer.append(image.data());
  writer.close();
  path = file;
  return path;
}

const std::string& tiles_out() {
  static const std::string path = scratch_dir() + "/tiles.h5";
  return path;
}

void make_tiles(const std::string& raster, bool as_labels) {
  tiles::MakeOptions options;
  options.images = {raster};
  if (as_labels) {
    options.labels = {raster};
    options.classes = {"a", "b", "c"};
  }
  options.out = tiles_out();
  options.tile_size = 16;
  options.max_nodata = 0.5;
  std::filesystem::remove(options.out);
  tiles::run_make(options);
}

void read_as_make_does(const std::string& path) {
  const tiles::RasterSource raster(path);
  const io::PixelType type = raster.pixel_type();
  raster.band_names();
  raster.nodata();
  raster.geotransform();
  raster.crs_wkt();
  if (raster.width() * raster.height() * raster.bands() <= kSmallRaster) {
    make_tiles(path, false);
    make_tiles(path, true);
    return;
  }
  // The first and the last window of 16 x 16 (or less).
  const int64_t rows = std::min<int64_t>(16, raster.height()), cols = std::min<int64_t>(16, raster.width());
  std::vector<uint8_t> pixels(static_cast<size_t>(raster.bands() * rows * cols) * io::pixel_size(type));
  std::vector<int32_t> labels(static_cast<size_t>(rows * cols));
  for (const auto& [row, col] : {std::pair<int64_t, int64_t>{0, 0}, {raster.height() - rows, raster.width() - cols}}) {
    raster.read(row, col, rows, cols, type, pixels.data());
    raster.read_labels(row, col, rows, cols, labels.data());
  }
}

void read_as_predict_does(const std::string& path) {
  // The model is one of the raster's bands and pixel type, so that the
  // checks pass and the reads run; a raster of another type or of more bands
  // than a model would take meets a uint8 model of 3 bands and is refused.
  int64_t bands = 3;
  io::PixelType type = io::PixelType::kUint8;
  try {
    const tiles::RasterSource raster(path);
    if (raster.bands() <= 16) bands = raster.bands();
    type = raster.pixel_type();
  } catch (const std::runtime_error&) {
    // SceneReader meets the same raster and says so in its own words.
  }
  inference::CheckpointModel model;
  model.spec.in_channels = bands;
  model.config.data.source.train = {training_archive(type, bands)};
  const inference::SlidingWindowOptions window{32, 8, 1};
  inference::SceneReader scene(path, model, models::Domain::kSource, window);
  if (scene.padded_width() * bands > kMaxRowValues) return;
  const int64_t rows = std::min<int64_t>(32, kMaxRowValues / (scene.padded_width() * bands));
  scene.padded_rows(0, std::min(rows, scene.padded_height()));
  scene.nodata_mask(0, std::min(rows, scene.height()));
}

}  // namespace

FuzzOutcome fuzz_raster(const uint8_t* data, size_t size) {
  keep_only_gtiff();
  const std::string path = scratch_dir() + "/scene.tif";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::string refused;
  try {
    read_as_make_does(path);
  } catch (const std::runtime_error& error) {  // UsageError included
    // Make names the raster, or when no tile passed its thresholds the archive it did not write.
    const bool nothing_written = std::string(error.what()).find("nothing written to " + tiles_out()) != std::string::npos;
    refused = refusal(error, nothing_written ? tiles_out() : path).error;
  }
  try {
    read_as_predict_does(path);
  } catch (const std::runtime_error& error) {
    refused = refusal(error, path).error;
  }
  return refused.empty() ? FuzzOutcome{} : FuzzOutcome{true, refused};
}

}  // namespace da::fuzz
