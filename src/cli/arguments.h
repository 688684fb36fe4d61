// The da_dist command line.
#pragma once

#include <string>
#include <vector>

namespace da::cli {

struct Arguments {
  std::string command = "train";  // train (more commands come with later features)
  std::string config_path;
  std::vector<std::string> overrides;  // --set KEY=VALUE, in order
  std::string resume_path;
  std::string log_level;  // empty: from the config
  bool print_config = false;
  bool help = false;
  bool help_config = false;
  bool version = false;
};

// Parses argv. Throws config::UsageError with one line for unknown options,
// missing values, or a missing --config.
Arguments parse_arguments(int argc, char** argv);

// The text of --help.
std::string usage_text();

}  // namespace da::cli
