// `da_tiles inspect`: what archives hold (counts, shape, classes with a pixel
// histogram, band statistics) and, with --verify, every problem in them.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace da::tiles {

struct InspectOptions {
  std::vector<std::string> files;
  bool verify = false;
};

// Declares the subcommand and its options (stored in `options`) on `app`.
CLI::App* add_inspect_command(CLI::App& app, InspectOptions& options);

// Prints what the archives hold; returns the exit status (1: a problem found).
int run_inspect(const InspectOptions& options);

}  // namespace da::tiles
