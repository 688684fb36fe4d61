// Where a rank computes: the device (one GPU per local rank), its intra-op
// threads, and the autocast precision that device supports.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/module.h>

#include <optional>
#include <string>

#include "config/options.h"
#include "dist/bootstrap.h"

namespace da::setup {

struct ComputeSetup {
  c10::Device device = c10::Device(c10::kCPU);
  int threads = 1;
  // Autocast dtype (bf16/fp16) on CUDA; nullopt for fp32 and on the CPU.
  std::optional<c10::ScalarType> autocast;
  bool loss_scaling = false;  // fp16 needs a dynamic loss scale
  // run.memory_format: 4-D weights and batches channels-last (NHWC in
  // memory), which cuDNN's convolutions (and tensor cores) run fastest on.
  bool channels_last = false;
};

// The most memory Torch's caching allocator has had allocated on `device`
// so far, MiB (torch.cuda.max_memory_allocated); 0 on the CPU.
double peak_device_memory_mib(c10::Device device);

// Waits until every kernel queued on `device` has finished (a GPU); nothing on
// the CPU, whose work is done when the call that did it returns.
void wait_for_device(c10::Device device);

// Converts every 4-D parameter and buffer of `module` to channels-last in
// place (tensor identities kept: call before optimizers and hooks hold them).
void to_channels_last(torch::nn::Module& module);

// True when run.device resolves to a GPU (cuda, or auto with CUDA present):
// the communicator must then take CUDA tensors.
bool uses_cuda(const config::RunOptions& run);

// run.device auto: the rank's GPU (dist/local_device.h: one visible GPU, or
// the one at the local rank) when CUDA is available, else the CPU. Throws
// std::runtime_error when cuda is asked for and missing, or when several GPUs
// are visible but fewer than the local ranks. Sets at::set_num_threads: run.threads,
// or (0) the node's cores divided by the ranks on it, at least 1. Precision
// other than fp32 on the CPU is ignored with a warning. Applies
// run.host_allocator (setup/host_allocator.h) to the process.
ComputeSetup setup_compute(const config::RunOptions& run, const dist::WorldInfo& world);

}  // namespace da::setup
