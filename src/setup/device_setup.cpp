#include "setup/device_setup.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

#ifdef DA_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "dist/local_device.h"
#include "setup/host_allocator.h"

namespace da::setup {

void wait_for_device(c10::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

bool uses_cuda(const config::RunOptions& run) { return run.device != "cpu" && torch::cuda::is_available(); }

ComputeSetup setup_compute(const config::RunOptions& run, const dist::WorldInfo& world) {
  ComputeSetup setup;
  if (run.device == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("run.device is cuda but this build or machine has no CUDA device");
  }
  if (uses_cuda(run)) {
    const int index = dist::local_device_index(world, static_cast<int>(torch::cuda::device_count()));
    setup.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }

  configure_host_allocator(run.host_allocator);

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  setup.threads = run.threads > 0 ? static_cast<int>(run.threads) : std::max(1, cores / std::max(1, world.local_size));
  at::set_num_threads(setup.threads);

  setup.channels_last =
      run.memory_format == "channels_last" || (run.memory_format == "auto" && setup.device.is_cuda());

  if (run.precision != "fp32") {
    if (setup.device.is_cuda()) {
      setup.autocast = run.precision == "bf16" ? c10::kBFloat16 : c10::kHalf;
      setup.loss_scaling = run.precision == "fp16";
    } else {
      spdlog::warn("run.precision {} is ignored on the CPU: training in fp32", run.precision);
    }
  }
  return setup;
}

double peak_device_memory_mib(c10::Device device) {
#ifdef DA_TORCH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    const auto aggregate = static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    return static_cast<double>(stats.allocated_bytes[aggregate].peak) / (1024.0 * 1024.0);
  }
#endif
  return 0.0;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
  for (auto& b : module.buffers()) {
    if (b.dim() == 4) b.set_data(b.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

}  // namespace da::setup
