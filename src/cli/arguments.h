// The da_dist command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace da::cli {

struct Arguments {
  std::string command = "train";  // train, predict or evaluate
  std::string config_path;
  std::vector<std::string> overrides;  // --set KEY=VALUE, in order
  std::string resume_path;
  std::string log_level;  // empty: from the config
  bool print_config = false;
  bool help = false;
  bool help_config = false;
  bool version = false;

  // predict / evaluate
  std::string checkpoint_path;      // --checkpoint
  std::vector<std::string> inputs;  // --input ARCHIVE... (files or globs, one tile set)
  std::string output_path;          // --output (predict)
  bool probabilities = false;       // --probabilities (predict)
  std::string geotiff_dir;          // --geotiff DIR (predict)
  std::string domain = "target";    // --domain source|target: the DSBN branch
  std::int64_t batch_size = 0;      // --batch-size (0: the checkpoint's validation batch size)
  std::string json_path;            // --json FILE (evaluate)
  // predict on whole rasters
  std::vector<std::string> scenes;  // --scene RASTER...
  std::string output_dir;           // --output-dir DIR
  std::int64_t window = 256;        // --window N (pixels)
  std::int64_t overlap = 32;        // --overlap N (pixels, < window)
  bool confidence = false;          // --confidence: also <stem>_confidence.tif
};

// Parses argv. Throws config::UsageError with one line for unknown options,
// missing values, a missing --config (train), or a missing --checkpoint,
// --input or --output (predict, evaluate; predict takes --scene and
// --output-dir instead of --input and --output for whole rasters).
Arguments parse_arguments(int argc, char** argv);

// The text of --help.
std::string usage_text();

}  // namespace da::cli
