// Every tile is read (the histogram and statistics need it). Without
// --verify the first problem stops the run; with --verify each tile's
// problems are collected and the run goes on, so one pass lists them all.
#include "inspect.h"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "io/tile_archive.h"
#include "tile_stats.h"

namespace da::tiles {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

std::string format(const char* pattern, double a, double b = 0, double c = 0, double d = 0) {
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, pattern, a, b, c, d);
  return buffer;
}

class Inspector {
 public:
  Inspector(const io::TileArchive& archive, bool verify)
      : archive_(archive), verify_(verify), stats_(archive.info().channels()) {}

  // Reads every tile; returns the problems found (only with verify: without it the first throws).
  std::vector<std::string> run() {
    const io::ArchiveInfo& info = archive_.info();
    histogram_.assign(info.classes.size() + 1, 0);  // last entry: ignore_index
    std::vector<unsigned char> image(archive_.image_bytes());
    std::vector<uint8_t> mask(archive_.mask_bytes());
    const int64_t pixels = info.height * info.width;
    for (int64_t tile = 0; tile < archive_.size(); ++tile) {
      attempt([&] {
        const int64_t non_finite = archive_.read_image(tile, image.data(), io::NonFinite::kReport);
        if (non_finite > 0) {
          throw io::ArchiveError(archive_.path(), "/images", tile,
                                 std::to_string(non_finite) + " NaN or infinite values");
        }
        stats_.add(image.data(), info.pixel_type, pixels);
      });
      if (info.has_masks) attempt([&] { count_mask(tile, mask); });
      if (info.has_origin) attempt([&] { check_origin(tile); });
      if (info.has_source_id) attempt([&] { archive_.read_source_id(tile); });
      if (info.has_geotransform) attempt([&] { check_geotransform(tile); });
    }
    return problems_;
  }

  void print(std::ostream& out) const {
    const io::ArchiveInfo& info = archive_.info();
    out << archive_.path() << "\n";
    out << "  format version " << info.version << ", domain '" << info.domain << "'\n";
    out << "  tiles: " << info.num_tiles << "  shape: [" << info.num_tiles << ", " << info.channels() << ", "
        << info.height << ", " << info.width << "]  dtype: " << io::pixel_type_name(info.pixel_type) << "\n";
    out << "  bands: " << join(info.bands) << "\n";
    out << "  band statistics (computed over all tiles):\n";
    for (int64_t band = 0; band < info.channels(); ++band) {
      out << "    " << info.bands[band]
          << format("  mean %.4g  std %.4g  min %.6g  max %.6g", stats_.mean()[band], stats_.std()[band],
                    stats_.count(band) ? stats_.min(band) : 0.0, stats_.count(band) ? stats_.max(band) : 0.0)
          << "\n";
    }
    if (info.band_mean && info.band_std) {
      out << "  band_mean (stored): " << join(numbers(*info.band_mean)) << "\n";
      out << "  band_std (stored): " << join(numbers(*info.band_std)) << "\n";
    }
    if (info.has_masks) {
      out << "  classes: " << info.classes.size() << ", ignore_index " << info.ignore_index << "\n";
      int64_t total = 0;
      for (int64_t count : histogram_) total += count;
      for (size_t k = 0; k <= info.classes.size(); ++k) {
        const std::string name = k < info.classes.size() ? std::to_string(k) + " " + info.classes[k] : "ignore";
        out << "    " << name << ": " << histogram_[k]
            << format(" pixels (%.2f%%)", total > 0 ? 100.0 * static_cast<double>(histogram_[k]) / total : 0.0) << "\n";
      }
    } else {
      out << "  masks: none\n";
    }
    std::vector<std::string> meta;
    if (info.has_origin) meta.push_back("origin");
    if (info.has_source_id) meta.push_back("source_id");
    if (info.has_geotransform) meta.push_back("geotransform");
    out << "  meta: " << (meta.empty() ? "none" : join(meta)) << "\n";
    if (!info.sources.empty()) out << "  sources: " << join(info.sources) << "\n";
    if (!info.crs.empty())
      out << "  crs: " << (info.crs.size() > 72 ? info.crs.substr(0, 72) + "..." : info.crs) << "\n";
  }

 private:
  template <typename Check>
  void attempt(Check check) {
    try {
      check();
    } catch (const std::exception& error) {
      if (!verify_) throw;
      problems_.push_back(error.what());
    }
  }

  void count_mask(int64_t tile, std::vector<uint8_t>& mask) {
    archive_.read_mask(tile, mask.data());
    const auto& info = archive_.info();
    for (uint8_t value : mask) {
      ++histogram_[value == info.ignore_index ? info.classes.size() : value];
    }
  }

  void check_origin(int64_t tile) const {
    const auto origin = archive_.read_origin(tile);
    if (origin[0] < 0 || origin[1] < 0) {
      throw io::ArchiveError(archive_.path(), "/meta/origin", tile,
                             "negative origin (" + std::to_string(origin[0]) + ", " + std::to_string(origin[1]) + ")");
    }
  }

  void check_geotransform(int64_t tile) const {
    for (double value : archive_.read_geotransform(tile)) {
      if (!std::isfinite(value))
        throw io::ArchiveError(archive_.path(), "/meta/geotransform", tile, "non-finite value");
    }
  }

  static std::vector<std::string> numbers(const std::vector<double>& values) {
    std::vector<std::string> text;
    for (double value : values) text.push_back(format("%.4g", value));
    return text;
  }

  const io::TileArchive& archive_;
  bool verify_;
  std::vector<int64_t> histogram_;
  std::vector<std::string> problems_;
  BandAccumulator stats_;
};

}  // namespace

CLI::App* add_inspect_command(CLI::App& app, InspectOptions& options) {
  CLI::App* command = app.add_subcommand("inspect", "What tile archives hold: counts, shape, classes with a pixel "
                                                    "histogram, band statistics");
  command->add_option("FILE", options.files, "tile archives")->required();
  command->add_flag("--verify", options.verify, "check every tile and list every problem (exit status 1 if any)");
  return command;
}

int run_inspect(const InspectOptions& options) {
  const bool verify = options.verify;
  int64_t problems = 0;
  for (const std::string& path : options.files) {
    std::vector<std::string> found;
    try {
      const io::TileArchive archive(path);
      Inspector inspector(archive, verify);
      found = inspector.run();
      inspector.print(std::cout);
    } catch (const io::ArchiveError& error) {
      // A file that cannot be opened is one problem; the other files are still checked with --verify.
      if (!verify) throw;
      found.push_back(error.what());
    }
    for (const std::string& problem : found) std::cout << "PROBLEM: " << problem << "\n";
    problems += static_cast<int64_t>(found.size());
  }
  if (verify) {
    std::cout << "verify: " << problems << " problem" << (problems == 1 ? "" : "s") << " in "
              << options.files.size() << " file" << (options.files.size() == 1 ? "" : "s") << "\n";
  }
  return problems > 0 ? 1 : 0;
}

}  // namespace da::tiles
