// The Communicator for CUDA tensors: Torch's tensors and CUDA streams glued
// onto NcclCommunicator. Built only when Torch has CUDA (DA_NCCL_ENABLED).
//
// Each collective is enqueued on the NCCL stream after the work already on
// the tensor's current compute stream (event), and the compute stream is
// ordered after the collective before the result is used. Work::wait()
// blocks the host until the collective finished, polling NCCL's asynchronous
// errors, so a dead peer or the collective timeout becomes a DistError
// rather than a hang. CPU tensors (small agreement checks, confusion
// matrices) are staged through the device.
#pragma once

#include <memory>

#include "dist/bootstrap.h"
#include "dist/communicator.h"

namespace da::dist {

std::unique_ptr<Communicator> make_nccl_communicator(const WorldInfo& world, double timeout_s);

}  // namespace da::dist
