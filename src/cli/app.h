// What `da_dist` does once MPI is up: parse, load, dispatch. The command line
// knows inference and the shared set-up, never the training loop: main.cpp
// hands it the train command.
#pragma once

#include <functional>
#include <string>

#include "config/options.h"
#include "dist/bootstrap.h"

namespace da::cli {

// Runs the command line on this rank. Returns the exit status (0, 1 or 2);
// never lets an exception escape. Usage and configuration errors are printed
// by rank 0 only (every rank sees the same error); runtime errors by the
// rank that has them, with its rank.
// `train` with the loaded configuration and --resume; returns the exit status.
using TrainCommand =
    std::function<int(const config::Config& config, const std::string& resume, const dist::WorldInfo& world)>;

int run_app(int argc, char** argv, const dist::WorldInfo& world, const TrainCommand& train);

}  // namespace da::cli
