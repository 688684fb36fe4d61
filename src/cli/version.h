// The text of `da_dist --version`.
#pragma once

#include <string>

namespace da::cli {

// da_dist's version and those of Torch, MPI, HDF5 and (when built) NCCL.
std::string version_text();

}  // namespace da::cli
