// spdlog set-up: the rank in every line; rank 0 speaks at the configured
// level on the console, other ranks only warn; every rank can also write
// <run_dir>/logs/rank-<r>.log at the configured level.
#pragma once

#include <string>

namespace da::log {

// Console logging for this rank. `level` is trace|debug|info|warn|error.
void init(int rank, const std::string& level);

// Adds <run_dir>/logs/rank-<rank>.log (created, appended to) to the logger.
void add_run_file(const std::string& run_dir, int rank);

// Flushes every sink (before exiting or aborting).
void flush();

}  // namespace da::log
