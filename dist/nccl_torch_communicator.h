// The Communicator for CUDA tensors: Torch's tensors and CUDA streams glued
// onto NcclCommunicator. Built only when Torch has CUDA (DA_NCCL_ENABLED).
//
// Each collective is enqueued on the NCCL stream after the work already on
// the tensor's current compute stream (event), and the compute stream is
// ordered after the collective before the result is used. On GPU tensors
// Work::wait() only does that ordering: a training step never blocks the
// host on the GPU. The collectives not waited for are checked at every new
// one (NCCL's asynchronous errors, and the timeout: the communicator is
// aborted so no rank stays stuck), so a dead peer becomes a DistError rather
// than a hang. CPU tensors (small agreement checks, confusion matrices) are
// staged through the device and waited for on the host, as is barrier().
#pragma once

#include <memory>

#include "dist/bootstrap.h"
#include "dist/communicator.h"

namespace da::dist {

std::unique_ptr<Communicator> make_nccl_communicator(const WorldInfo& world, double timeout_s);

}  // namespace da::dist
