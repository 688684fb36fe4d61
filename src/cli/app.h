// What `da_dist` does once MPI is up: parse, load, dispatch.
#pragma once

#include "dist/bootstrap.h"

namespace da::cli {

// Runs the command line on this rank. Returns the exit status (0, 1 or 2);
// never lets an exception escape. Usage and configuration errors are printed
// by rank 0 only (every rank sees the same error); runtime errors by the
// rank that has them, with its rank.
int run_app(int argc, char** argv, const dist::WorldInfo& world);

}  // namespace da::cli
