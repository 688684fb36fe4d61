#include "dist/local_device.h"

#include <string>

#include "dist/errors.h"

namespace da::dist {

int local_device_index(const WorldInfo& world, int visible_devices) {
  const std::string rank =
      "rank " + std::to_string(world.rank) + " (local rank " + std::to_string(world.local_rank) + ")";
  if (visible_devices <= 0) throw DistError(rank + ": no CUDA device is visible");
  if (visible_devices == 1) return 0;
  if (world.local_rank < visible_devices) return world.local_rank;
  throw DistError(rank + " sees " + std::to_string(visible_devices) + " GPUs shared by " +
                  std::to_string(world.local_size) +
                  " local ranks: start at most one rank per GPU, or give each rank its own "
                  "(srun --gpus-per-task=1, or one CUDA_VISIBLE_DEVICES id per rank)");
}

}  // namespace da::dist
