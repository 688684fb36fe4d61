// `da_tiles inspect`: what archives hold (counts, shape, classes with a pixel
// histogram, band statistics) and, with --verify, every problem in them.
#pragma once

#include <string>
#include <vector>

namespace da::tiles {

// Runs the subcommand on its arguments; returns the exit status.
int run_inspect(const std::vector<std::string>& args);

}  // namespace da::tiles
