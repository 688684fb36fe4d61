// Which windows are cut: tile_plan.h; how: tile_cutter.h.
#include "make_tiles.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "command_line/checks.h"
#include "config/errors.h"
#include "io/tile_archive_writer.h"
#include "launcher_rank.h"
#include "make_progress.h"
#include "raster_source.h"
#include "shard_check.h"
#include "tile_cutter.h"
#include "tile_plan.h"
#include "tile_stats.h"
#include "tiling_manifest.h"

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
  if (options.threads > 0 && options.shard_tiles == 0) throw UsageError("--threads needs --shard-tiles");
  if (static_cast<int64_t>(options.classes.size()) > options.ignore_index) {
    throw UsageError("more classes than ignore_index " + std::to_string(options.ignore_index) + " allows");
  }
}

// A name in a comma-separated list: CLI11 drops the empty items between
// commas ("a,,b" is a, b) but keeps an empty value ("").
const CLI::Validator kNamed([](std::string& item) { return item.empty() ? "expected names, got ''" : ""; }, "");

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

CutSettings cut_settings(const MakeOptions& config) {
  return {config.tile_size, config.stride, config.max_nodata, config.max_ignore,
          static_cast<int64_t>(config.classes.size()), config.ignore_index};
}

// Raster bytes of one window, all bands (for the progress line's read speed).
int64_t window_bytes(const MakeOptions& config, const io::TileArchiveLayout& layout) {
  return config.tile_size * config.tile_size * static_cast<int64_t>(layout.bands.size()) *
         static_cast<int64_t>(io::pixel_size(layout.pixel_type));
}

std::string skipped_text(const MakeOptions& config, const TileCounts& counts) {
  std::ostringstream text;
  text << "skipped " << counts.skipped_nodata << " for nodata > " << config.max_nodata << ", " << counts.skipped_ignore
       << " for ignore > " << config.max_ignore;
  return text.str();
}

// One archive at --out: every raster's windows in order, on this thread.
int write_archive(const MakeOptions& config, const io::TileArchiveLayout& layout,
                  const std::vector<std::unique_ptr<RasterSource>>& images,
                  const std::vector<std::unique_ptr<RasterSource>>& labels, const std::vector<WindowGrid>& grids) {
  int64_t windows = 0;
  for (const WindowGrid& grid : grids) windows += grid.count();
  io::TileArchiveWriter writer(config.out, layout);
  BandAccumulator stats(static_cast<int64_t>(layout.bands.size()));
  TileCounts counts;
  {
    MakeProgress progress(windows, 1, window_bytes(config, layout), "make: ");
    for (size_t i = 0; i < images.size(); ++i) {
      counts += cut_windows(cut_settings(config), *images[i], labels.empty() ? nullptr : labels[i].get(),
                            static_cast<int32_t>(i), 0, grids[i].count(), writer, stats,
                            [&](int64_t n) { progress.add_windows(n); });
    }
    progress.add_tiles(counts.written);
    if (counts.written > 0) progress.shard_done(false, windows);
  }
  if (counts.written == 0) {
    throw std::runtime_error("no tile passed the thresholds (" + std::to_string(counts.skipped_nodata) +
                             " skipped for nodata, " + std::to_string(counts.skipped_ignore) +
                             " for ignore); nothing written to " + config.out);
  }
  writer.set_band_stats(stats.mean(), stats.std());
  writer.close();
  std::cout << config.out << ": wrote " << counts.written << " tiles of " << config.tile_size << "x" << config.tile_size
            << " (" << io::pixel_type_name(layout.pixel_type) << ", " << layout.bands.size() << " bands); "
            << skipped_text(config, counts) << "\n";
  return 0;
}

// The rasters of one shard, opened by each thread for itself (a GDAL
// dataset is not for concurrent use) and kept while its shards follow.
class ThreadRasters {
 public:
  explicit ThreadRasters(const MakeOptions& config) : config_(config) {}
  void select(int32_t raster) {
    if (raster == selected_) return;
    image_ = std::make_unique<RasterSource>(config_.images[raster]);
    labels_ = config_.labels.empty() ? nullptr : std::make_unique<RasterSource>(config_.labels[raster]);
    selected_ = raster;
  }
  const RasterSource& image() const { return *image_; }
  const RasterSource* labels() const { return labels_.get(); }

 private:
  const MakeOptions& config_;
  int32_t selected_ = -1;
  std::unique_ptr<RasterSource> image_;
  std::unique_ptr<RasterSource> labels_;
};

struct ShardTotals {
  TileCounts counts;
  int64_t written = 0;      // shards written
  int64_t kept = 0;         // shards complete from an earlier run
  int64_t kept_tiles = 0;
  int64_t empty = 0;        // shards with no tile over the thresholds: no file
  ShardTotals& operator+=(const ShardTotals& other) {
    counts += other.counts;
    written += other.written;
    kept += other.kept;
    kept_tiles += other.kept_tiles;
    empty += other.empty;
    return *this;
  }
};

// An interrupted writer leaves <shard>.tmp.<pid> behind; each shard has one
// writer (this process), so those of `shards` are removed before starting.
void remove_interrupted_writes(const std::vector<ShardPlan>& shards) {
  if (shards.empty()) return;
  std::set<std::string> names;
  for (const ShardPlan& shard : shards) names.insert(std::filesystem::path(shard.path).filename().string());
  const std::filesystem::path dir = std::filesystem::path(shards.front().path).parent_path();
  for (const auto& entry : std::filesystem::directory_iterator(dir.empty() ? "." : dir)) {
    const std::string name = entry.path().filename().string();
    const size_t mark = name.rfind(".tmp.");
    if (mark != std::string::npos && names.count(name.substr(0, mark)) > 0) std::filesystem::remove(entry.path());
  }
}

// Writes (or keeps) one shard.
void make_shard(const MakeOptions& config, const io::TileArchiveLayout& layout, const WindowGrid& grid,
                const ShardPlan& shard, ThreadRasters& rasters, MakeProgress& progress, ShardTotals& totals) {
  if (std::filesystem::exists(shard.path)) {
    const ShardCheck check = check_shard(shard, layout, grid, config.stride);
    if (check.problem.empty()) {
      ++totals.kept;
      totals.kept_tiles += check.tiles;
      progress.add_tiles(check.tiles);
      progress.shard_done(true, shard.windows);
      return;
    }
    std::cerr << shard.path << ": not a complete shard of this run (" << check.problem << "); writing it again\n";
    std::filesystem::remove(shard.path);
  }
  rasters.select(shard.raster);
  io::TileArchiveWriter writer(shard.path, layout);
  BandAccumulator stats(static_cast<int64_t>(layout.bands.size()));
  const TileCounts counts =
      cut_windows(cut_settings(config), rasters.image(), rasters.labels(), shard.raster, shard.first_window,
                  shard.windows, writer, stats, [&](int64_t n) { progress.add_windows(n); });
  totals.counts += counts;
  if (counts.written > 0) {
    writer.set_band_stats(stats.mean(), stats.std());
    writer.close();
    ++totals.written;
  } else {
    ++totals.empty;  // the writer's destructor removes its temporary file
  }
  progress.add_tiles(counts.written);
  progress.shard_done(false, shard.windows);
}

// This process's shards, on config.threads threads taking the next shard in turn.
ShardTotals make_shards(const MakeOptions& config, const io::TileArchiveLayout& layout,
                        const std::vector<WindowGrid>& grids, const std::vector<ShardPlan>& shards, int threads,
                        const std::string& prefix) {
  int64_t windows = 0;
  for (const ShardPlan& shard : shards) windows += shard.windows;
  MakeProgress progress(windows, static_cast<int64_t>(shards.size()), window_bytes(config, layout), prefix);
  std::vector<ShardTotals> totals(threads);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      try {
        ThreadRasters rasters(config);
        for (size_t i = next++; i < shards.size() && !failed; i = next++) {
          make_shard(config, layout, grids[shards[i].raster], shards[i], rasters, progress, totals[t]);
        }
      } catch (...) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  if (error) std::rethrow_exception(error);
  ShardTotals sum;
  for (const ShardTotals& part : totals) sum += part;
  return sum;
}

int write_sharded(const MakeOptions& config, const io::TileArchiveLayout& layout,
                  const std::vector<WindowGrid>& grids) {
  const LauncherRank process = launcher_rank();
  if (process.size < 1 || process.rank < 0 || process.rank >= process.size) {
    throw std::runtime_error(std::string(process.from) + " = " + std::to_string(process.rank) +
                             " is not a rank of " + std::to_string(process.size) + " processes");
  }
  write_or_match_manifest(config);
  const std::vector<ShardPlan> all = plan_shards(grids, config.shard_tiles, config.out);
  const std::vector<ShardPlan> mine = shards_of_worker(all, process.rank, process.size);
  remove_interrupted_writes(mine);
  int threads = config.threads;
  if (threads == 0) {
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, process.local_size));
  }
  threads = std::max(1, std::min<int>(threads, static_cast<int>(mine.size())));
  const std::string who =
      process.size > 1 ? "rank " + std::to_string(process.rank) + " of " + std::to_string(process.size) + ": " : "";
  const ShardTotals totals = make_shards(config, layout, grids, mine, threads, "make: " + who);
  const std::filesystem::path out(config.out);
  const std::string pattern =
      (out.parent_path() / (out.stem().string() + "-*" + out.extension().string())).string();
  if (process.size == 1 && totals.counts.written + totals.kept_tiles == 0) {
    throw std::runtime_error("no tile passed the thresholds (" + std::to_string(totals.counts.skipped_nodata) +
                             " skipped for nodata, " + std::to_string(totals.counts.skipped_ignore) +
                             " for ignore); nothing written to " + pattern);
  }
  std::cout << who << pattern << ": wrote " << totals.counts.written << " tiles of " << config.tile_size << "x"
            << config.tile_size << " (" << io::pixel_type_name(layout.pixel_type) << ", " << layout.bands.size()
            << " bands) in " << totals.written << " of " << all.size() << " shards with " << threads
            << " threads; kept " << totals.kept << " complete shards (" << totals.kept_tiles
            << " tiles) from an earlier run; " << totals.empty << " shards had no tile to write; "
            << skipped_text(config, totals.counts) << "\n";
  return 0;
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
  command
      ->add_option("--shard-tiles", options.shard_tiles,
                   "write shards of at most N windows each, named like --out with -00000, -00001... "
                   "(in parallel; a rerun with the same options resumes, keeping complete shards)")
      ->type_name("N")
      ->check(integer_in(1, int64_t{1} << 40));
  command
      ->add_option("--threads", options.threads,
                   "threads writing shards (default: this host's cores over its processes); with --shard-tiles")
      ->check(integer_in(0, 4096));
  return command;
}

int run_make(MakeOptions config) {
  resolve(config);
  std::vector<std::unique_ptr<RasterSource>> images;
  for (const std::string& path : config.images) images.push_back(std::make_unique<RasterSource>(path));
  std::vector<std::unique_ptr<RasterSource>> labels;
  for (const std::string& path : config.labels) labels.push_back(std::make_unique<RasterSource>(path));
  const io::TileArchiveLayout layout = make_layout(config, images);
  std::vector<WindowGrid> grids;
  for (const auto& image : images) {
    grids.push_back(window_grid(image->height(), image->width(), config.tile_size, config.stride));
  }
  limit_gdal_cache(int64_t{256} << 20);
  if (config.shard_tiles == 0) return write_archive(config, layout, images, labels, grids);
  return write_sharded(config, layout, grids);
}

}  // namespace da::tiles
