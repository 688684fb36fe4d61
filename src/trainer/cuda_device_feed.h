// The side-stream DeviceFeed for a CUDA device; built only with a CUDA Torch
// (and compiled, not linked, against a CPU Torch's c10/cuda headers when the
// CUDA runtime is installed, so that it keeps compiling on CI).
#pragma once

#include <c10/core/Device.h>

#include <memory>

#include "trainer/device_feed.h"

namespace da::trainer {

std::unique_ptr<DeviceFeed> make_cuda_device_feed(c10::Device device);

}  // namespace da::trainer
