#include "cli/version.h"

#include <torch/version.h>
#include <yaml-cpp/yaml.h>

#include "build_info.h"
#include "dist/bootstrap.h"
#include "io/hdf5_library.h"

namespace da::cli {

std::string version_text() {
  std::string text = std::string("da_dist ") + DA_DIST_VERSION + "\n";
  text += std::string("  Torch ") + TORCH_VERSION + (DA_TORCH_HAS_CUDA ? " (CUDA)" : " (CPU)") + "\n";
  text += "  MPI   " + dist::mpi_library_version() + "\n";
  text += "  HDF5  " + io::hdf5_version() + "\n";
  text += std::string("  NCCL  ") + (DA_NCCL_ENABLED ? "built" : "not built") + "\n";
  return text;
}

}  // namespace da::cli
