// `da_tiles synth`: a small labelled two-domain data set for demos and tests.
#pragma once

#include <string>
#include <vector>

namespace da::tiles {

// Runs the subcommand on its arguments; returns the exit status.
int run_synth(const std::vector<std::string>& args);

}  // namespace da::tiles
