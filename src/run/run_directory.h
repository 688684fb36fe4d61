// The run directory <run.output_dir>/<run.name>/ and what goes in it first.
#pragma once

#include <string>

#include "config/options.h"

namespace da::run {

// <output_dir>/<name>
std::string run_directory(const config::Config& config);

// Creates the run directory (logs/, checkpoints/) and writes the resolved
// configuration to config.yaml atomically. Called by rank 0 only.
void prepare_run_directory(const config::Config& config);

}  // namespace da::run
