// `da_tiles make`: cuts rasters (any GDAL format) into a tile archive.
#pragma once

#include <string>
#include <vector>

namespace da::tiles {

// Runs the subcommand on its arguments; returns the exit status.
int run_make(const std::vector<std::string>& args);

}  // namespace da::tiles
