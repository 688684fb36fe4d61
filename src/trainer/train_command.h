// `da_dist train` on this rank, once the configuration is loaded: logging,
// the run directory, the communicators, the Trainer and its fit.
#pragma once

#include <string>

#include "config/options.h"
#include "dist/bootstrap.h"

namespace da::trainer {

// Returns fit()'s status (0, or kExitResumable after a preemption request).
// `resume`: a checkpoint path, "auto" or empty (Trainer::fit).
int run_training(const config::Config& config, const std::string& resume, const dist::WorldInfo& world);

}  // namespace da::trainer
