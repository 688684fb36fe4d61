// Which of the GPUs a rank sees is its own. Two cluster layouts are common:
// every rank of a node sees all the node's GPUs (mpirun, srun --gpus-per-node)
// and takes the one at its local rank; or each task sees exactly one
// (srun --gpus-per-task=1, or CUDA_VISIBLE_DEVICES set to one id per rank),
// which is then device 0 whatever the local rank.
#pragma once

#include "dist/bootstrap.h"

namespace da::dist {

// The CUDA device index for this rank among `visible_devices`
// (torch::cuda::device_count() / cudaGetDeviceCount). One visible device is
// device 0 (also when ranks share it); otherwise the local rank, which needs
// at least as many visible devices as local ranks. Throws DistError naming
// the rank and both counts when there is no unambiguous choice.
int local_device_index(const WorldInfo& world, int visible_devices);

}  // namespace da::dist
