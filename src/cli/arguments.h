// The da_dist command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace da::cli {

struct Arguments {
  std::string command = "train";  // train, predict, evaluate or export
  std::string config_path;
  std::vector<std::string> overrides;  // --set KEY=VALUE, in order
  std::string resume_path;
  std::string log_level;  // empty: from the config
  bool print_config = false;
  bool help = false;
  std::string help_text;  // what --help prints: the help of the command it follows
  bool help_config = false;
  bool version = false;

  // predict / evaluate
  std::string checkpoint_path;      // --checkpoint
  std::vector<std::string> inputs;  // --input ARCHIVE... (files or globs, one tile set)
  std::string output_path;          // --output (predict, export)
  bool probabilities = false;       // --probabilities (predict)
  std::string geotiff_dir;          // --geotiff DIR (predict)
  std::string domain = "target";    // --domain source|target: the DSBN branch
  std::int64_t batch_size = 0;      // --batch-size (0: the checkpoint's validation batch size)
  std::string json_path;            // --json FILE (evaluate)
  std::string host_allocator = "retain";  // --host-allocator retain|system (setup/host_allocator.h)
  // predict on whole rasters
  std::vector<std::string> scenes;  // --scene RASTER...
  std::string output_dir;           // --output-dir DIR
  std::int64_t window = 256;        // --window N (pixels)
  std::int64_t overlap = 32;        // --overlap N (pixels, < window)
  bool confidence = false;          // --confidence: also <stem>_confidence.tif
  std::string tta = "none";         // --tta none|flips|d4
  std::int64_t strip_rows = 0;      // --strip-rows N (0: automatic)
  // export
  std::int64_t tile = 0;  // --tile N (0: the training tile size)
};

// Parses argv. Throws config::UsageError with one line for unknown options,
// missing values, a missing --config (train), or a missing --checkpoint,
// --input or --output (predict, evaluate; predict takes --scene and
// --output-dir instead of --input and --output for whole rasters), or a
// missing --checkpoint or --output (export). A command line without a
// command trains.
Arguments parse_arguments(int argc, char** argv);

}  // namespace da::cli
