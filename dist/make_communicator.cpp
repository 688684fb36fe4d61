// Picks the communicator for the backend asked for and the tensors' device.
#include "dist/bootstrap.h"
#include "dist/communicator.h"
#include "dist/errors.h"
#include "dist/local_communicator.h"
#include "dist/mpi_communicator.h"
#ifdef DA_NCCL_ENABLED
#include "dist/nccl_torch_communicator.h"
#endif

namespace da::dist {
namespace {

std::unique_ptr<Communicator> nccl_communicator(const CommunicatorOptions& options) {
  if (!options.cuda_tensors) {
    throw DistError("dist.backend nccl needs the model on a GPU, but run.device resolves to the CPU "
                    "(use dist.backend auto or mpi)");
  }
#ifdef DA_NCCL_ENABLED
  return make_nccl_communicator(world(), options.timeout_s);
#else
  throw DistError("dist.backend nccl is not available: this build has no NCCL (it needs a CUDA Torch and nccl.h)");
#endif
}

}  // namespace

std::unique_ptr<Communicator> make_communicator(const CommunicatorOptions& options) {
  if (options.backend == "nccl") return nccl_communicator(options);
  if (options.backend != "auto" && options.backend != "mpi") {
    throw DistError("dist.backend '" + options.backend + "' is unknown (auto, nccl or mpi)");
  }
  if (!world().uses_mpi) return std::make_unique<LocalCommunicator>();
  if (options.backend == "auto" && options.cuda_tensors) return nccl_communicator(options);
  // mpi with a model on a GPU stages its tensors through host memory
  // (dist/mpi_communicator.cpp): clusters without NCCL work.
  return std::make_unique<MpiCommunicator>(options.timeout_s);
}

}  // namespace da::dist
