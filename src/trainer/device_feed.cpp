#include "trainer/device_feed.h"

#include <stdexcept>
#include <utility>

#ifdef DA_TORCH_CUDA
#include "trainer/cuda_device_feed.h"
#endif

namespace da::trainer {

io::PairedBatch HostFeed::take() {
  if (pairs_.empty()) throw std::logic_error("DeviceFeed::take: nothing pushed");
  io::PairedBatch pair = std::move(pairs_.front());
  pairs_.pop_front();
  return pair;
}

std::unique_ptr<DeviceFeed> make_device_feed(c10::Device device) {
  if (device.is_cpu()) return std::make_unique<HostFeed>();
#ifdef DA_TORCH_CUDA
  if (device.is_cuda()) return make_cuda_device_feed(device);
#endif
  throw std::invalid_argument("DeviceFeed: no feed for device " + device.str() + " in this build");
}

}  // namespace da::trainer
