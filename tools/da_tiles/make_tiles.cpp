// Tiling: windows of tile_size x tile_size every `stride` pixels, starting at
// the top-left corner; windows that would cross the right or bottom edge are
// not written (no padding), so every tile holds only real raster pixels.
// A pixel is nodata when any band holds that band's nodata value (or NaN);
// its label becomes ignore_index, so nodata never trains as a class.
#include "make_tiles.h"

#include <CLI/CLI.hpp>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <type_traits>

#include "command_line/checks.h"
#include "config/errors.h"
#include "io/tile_archive_writer.h"
#include "raster_source.h"
#include "tile_stats.h"

namespace da::tiles {
namespace {

using config::UsageError;

// Fills in the defaults that depend on other options and checks the options
// against each other.
void resolve(MakeOptions& options) {
  if (!options.labels.empty() && options.labels.size() != options.images.size()) {
    throw UsageError("give one --labels per --image (" + std::to_string(options.images.size()) + " images, " +
                     std::to_string(options.labels.size()) + " label rasters)");
  }
  if (options.stride == 0) options.stride = options.tile_size;
  if (options.domain.empty()) options.domain = std::filesystem::path(options.out).stem().string();
  if (!options.labels.empty() && options.classes.empty()) throw UsageError("--labels needs --classes");
  if (options.labels.empty() && !options.classes.empty()) throw UsageError("--classes needs --labels");
  if (static_cast<int64_t>(options.classes.size()) > options.ignore_index) {
    throw UsageError("more classes than ignore_index " + std::to_string(options.ignore_index) + " allows");
  }
}

// A name in a comma-separated list: CLI11 drops the empty items between
// commas ("a,,b" is a, b) but keeps an empty value ("").
const CLI::Validator kNamed([](std::string& item) { return item.empty() ? "expected names, got ''" : ""; }, "");

// Marks nodata pixels of a [bands, pixels] tile in `valid` (0 = nodata) and returns their count.
template <typename T>
int64_t mark_nodata(const T* tile, int64_t pixels, const std::vector<std::optional<double>>& nodata,
                    std::vector<uint8_t>& valid) {
  // A float32 raster's pixels equal its nodata value rounded to float; integer pixels compare exactly.
  std::vector<std::optional<double>> sentinel(nodata.size());
  for (size_t band = 0; band < nodata.size(); ++band) {
    if (!nodata[band]) continue;
    sentinel[band] =
        std::is_floating_point_v<T> ? static_cast<double>(static_cast<float>(*nodata[band])) : *nodata[band];
  }
  int64_t count = 0;
  for (int64_t i = 0; i < pixels; ++i) {
    bool is_nodata = false;
    for (size_t band = 0; band < nodata.size() && !is_nodata; ++band) {
      const double value = static_cast<double>(tile[band * pixels + i]);
      is_nodata = std::isnan(value) || (sentinel[band] && value == *sentinel[band]);
    }
    valid[i] = is_nodata ? 0 : 1;
    count += is_nodata;
  }
  return count;
}

int64_t mark_nodata(const void* tile, io::PixelType type, int64_t pixels,
                    const std::vector<std::optional<double>>& nodata, std::vector<uint8_t>& valid) {
  switch (type) {
    case io::PixelType::kUint8:
      return mark_nodata(static_cast<const uint8_t*>(tile), pixels, nodata, valid);
    case io::PixelType::kUint16:
      return mark_nodata(static_cast<const uint16_t*>(tile), pixels, nodata, valid);
    case io::PixelType::kFloat32:
      return mark_nodata(static_cast<const float*>(tile), pixels, nodata, valid);
  }
  return 0;
}

// NaN pixels (nodata in float rasters) are written as 0: the archive refuses non-finite values.
void zero_non_finite(void* tile, io::PixelType type, int64_t values) {
  if (type != io::PixelType::kFloat32) return;
  float* floats = static_cast<float*>(tile);
  for (int64_t i = 0; i < values; ++i) {
    if (!std::isfinite(floats[i])) floats[i] = 0.0f;
  }
}

// The layout every raster must agree with, from the first raster.
io::TileArchiveLayout make_layout(const MakeOptions& config, const std::vector<std::unique_ptr<RasterSource>>& images) {
  const RasterSource& first = *images.front();
  io::TileArchiveLayout layout;
  layout.domain = config.domain;
  layout.bands = config.bands.empty() ? first.band_names() : config.bands;
  if (static_cast<int64_t>(layout.bands.size()) != first.bands()) {
    throw UsageError("--bands names " + std::to_string(layout.bands.size()) + " bands but " + first.path() + " has " +
                     std::to_string(first.bands()));
  }
  layout.pixel_type = first.pixel_type();
  layout.height = layout.width = config.tile_size;
  layout.with_masks = !config.labels.empty();
  layout.classes = config.classes;
  layout.ignore_index = config.ignore_index;
  layout.with_origin = layout.with_source_id = true;
  for (const auto& image : images) {
    layout.sources.push_back(std::filesystem::path(image->path()).filename().string());
    if (image->bands() != first.bands() || image->pixel_type() != layout.pixel_type) {
      throw std::runtime_error(image->path() + ": bands or data type differ from " + first.path());
    }
  }
  layout.with_geotransform = first.geotransform().has_value();
  layout.crs = first.crs_wkt();
  for (const auto& image : images) {
    if (image->geotransform().has_value() != layout.with_geotransform || image->crs_wkt() != layout.crs) {
      throw std::runtime_error(image->path() + ": georeferencing (geotransform or CRS) differs from " + first.path());
    }
  }
  layout.deflate_level = config.deflate;
  layout.shuffle = config.deflate > 0 && layout.pixel_type != io::PixelType::kUint8;
  return layout;
}

struct Counts {
  int64_t written = 0;
  int64_t skipped_nodata = 0;
  int64_t skipped_ignore = 0;
};

// Cuts one image (and its label raster) into `writer`.
void tile_raster(const MakeOptions& config, const RasterSource& image, const RasterSource* labels, int32_t source_id,
                 io::TileArchiveWriter& writer, BandAccumulator& stats, Counts& counts) {
  if (labels != nullptr && (labels->width() != image.width() || labels->height() != image.height())) {
    throw std::runtime_error(labels->path() + ": size " + std::to_string(labels->width()) + "x" +
                             std::to_string(labels->height()) + " differs from " + image.path());
  }
  const io::PixelType type = image.pixel_type();
  const int64_t size = config.tile_size;
  const int64_t pixels = size * size;
  const auto nodata = image.nodata();
  const auto transform = image.geotransform();
  const int64_t classes = static_cast<int64_t>(config.classes.size());
  std::vector<unsigned char> tile(image.bands() * pixels * io::pixel_size(type));
  std::vector<uint8_t> valid(pixels);
  std::vector<int32_t> raw_labels(pixels);
  std::vector<uint8_t> mask(pixels);
  for (int64_t row = 0; row + size <= image.height(); row += config.stride) {
    for (int64_t col = 0; col + size <= image.width(); col += config.stride) {
      image.read(row, col, size, size, type, tile.data());
      const int64_t nodata_pixels = mark_nodata(tile.data(), type, pixels, nodata, valid);
      if (static_cast<double>(nodata_pixels) > config.max_nodata * pixels) {
        ++counts.skipped_nodata;
        continue;
      }
      if (labels != nullptr) {
        labels->read_labels(row, col, size, size, raw_labels.data());
        int64_t ignored = 0;
        for (int64_t i = 0; i < pixels; ++i) {
          const int32_t value = raw_labels[i];
          if (value != config.ignore_index && (value < 0 || value >= classes)) {
            throw std::runtime_error(labels->path() + ": label " + std::to_string(value) + " at row " +
                                     std::to_string(row + i / size) + ", column " + std::to_string(col + i % size) +
                                     " is outside [0, " + std::to_string(classes) + ") and not ignore_index " +
                                     std::to_string(config.ignore_index));
          }
          mask[i] = valid[i] ? static_cast<uint8_t>(value) : static_cast<uint8_t>(config.ignore_index);
          ignored += mask[i] == config.ignore_index;
        }
        if (static_cast<double>(ignored) > config.max_ignore * pixels) {
          ++counts.skipped_ignore;
          continue;
        }
      }
      zero_non_finite(tile.data(), type, image.bands() * pixels);
      io::TileMeta meta;
      meta.origin = {row, col};
      meta.source_id = source_id;
      if (transform) {
        const auto& t = *transform;
        meta.geotransform = {t[0] + col * t[1] + row * t[2], t[1], t[2], t[3] + col * t[4] + row * t[5], t[4], t[5]};
      }
      writer.append(tile.data(), labels != nullptr ? mask.data() : nullptr, meta);
      stats.add(tile.data(), type, pixels, valid.data());
      ++counts.written;
    }
  }
}

}  // namespace

CLI::App* add_make_command(CLI::App& app, MakeOptions& options) {
  using command_line::integer_in;
  using command_line::number_in;
  CLI::App* command = app.add_subcommand("make", "Cuts rasters (any GDAL format) into a tile archive; "
                                                 "--image/--labels may repeat, in pairs");
  command->add_option("--image", options.images, "image raster (repeatable)")
      ->type_name("RASTER")
      ->allow_extra_args(false)
      ->required();
  command->add_option("--labels", options.labels, "label raster of the --image at the same place (repeatable)")
      ->type_name("RASTER")
      ->allow_extra_args(false);
  command->add_option("--out", options.out, "output archive")->type_name("FILE")->required();
  command->add_option("--tile-size", options.tile_size, "tile size in pixels")->required()->check(integer_in(1, 65536));
  command->add_option("--stride", options.stride, "pixels between tiles (default: the tile size)")
      ->check(integer_in(1, 65536));
  command->add_option("--max-nodata", options.max_nodata, "skip tiles with a larger fraction of nodata pixels")
      ->check(number_in(0.0, 1.0));
  command->add_option("--max-ignore", options.max_ignore, "skip tiles with a larger fraction of ignore labels")
      ->check(number_in(0.0, 1.0));
  command->add_option("--deflate", options.deflate, "deflate level of the archive")->check(integer_in(0, 9));
  command->add_option("--domain", options.domain, "domain name recorded in the archive (default: --out's stem)");
  command->add_option("--classes", options.classes, "class names, required with --labels")
      ->type_name("a,b,c")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(kNamed);
  command->add_option("--bands", options.bands, "band names (default: the raster's)")
      ->type_name("a,b,c")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(kNamed);
  command->add_option("--ignore-index", options.ignore_index, "label value of ignored and nodata pixels")
      ->check(integer_in(0, 255));
  return command;
}

int run_make(MakeOptions config) {
  resolve(config);
  std::vector<std::unique_ptr<RasterSource>> images;
  for (const std::string& path : config.images) images.push_back(std::make_unique<RasterSource>(path));
  std::vector<std::unique_ptr<RasterSource>> labels;
  for (const std::string& path : config.labels) labels.push_back(std::make_unique<RasterSource>(path));

  const io::TileArchiveLayout layout = make_layout(config, images);
  io::TileArchiveWriter writer(config.out, layout);
  BandAccumulator stats(images.front()->bands());
  Counts counts;
  for (size_t i = 0; i < images.size(); ++i) {
    tile_raster(config, *images[i], labels.empty() ? nullptr : labels[i].get(), static_cast<int32_t>(i), writer, stats,
                counts);
  }
  if (counts.written == 0) {
    throw std::runtime_error("no tile passed the thresholds (" + std::to_string(counts.skipped_nodata) +
                             " skipped for nodata, " + std::to_string(counts.skipped_ignore) +
                             " for ignore); nothing written to " + config.out);
  }
  writer.set_band_stats(stats.mean(), stats.std());
  writer.close();
  std::cout << config.out << ": wrote " << counts.written << " tiles of " << config.tile_size << "x" << config.tile_size
            << " (" << io::pixel_type_name(layout.pixel_type) << ", " << layout.bands.size() << " bands); skipped "
            << counts.skipped_nodata << " for nodata > " << config.max_nodata << ", " << counts.skipped_ignore
            << " for ignore > " << config.max_ignore << "\n";
  return 0;
}

}  // namespace da::tiles
