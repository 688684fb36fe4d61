#include "trainer/cuda_device_feed.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <deque>
#include <stdexcept>
#include <string>
#include <utility>

namespace da::trainer {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("DeviceFeed (CUDA): ") + what + ": " + cudaGetErrorString(status));
  }
}

class CudaDeviceFeed final : public DeviceFeed {
 public:
  explicit CudaDeviceFeed(c10::Device device)
      : device_(device), copy_stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index())) {}

  ~CudaDeviceFeed() override {
    for (auto& pending : pending_) cudaEventDestroy(pending.copied);
  }

  void push(io::PairedBatch pair) override {
    const c10::cuda::CUDAGuard device_guard(device_);
    Pending pending;
    {
      // Queued on the copy stream: from pinned memory these copies overlap
      // the kernels of the step running on the compute stream.
      const c10::cuda::CUDAStreamGuard stream_guard(copy_stream_);
      pending.pair = io::PairedBatch{to_device(pair.source), to_device(pair.target)};
    }
    check(cudaEventCreateWithFlags(&pending.copied, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    check(cudaEventRecord(pending.copied, copy_stream_.stream()), "cudaEventRecord");
    pending_.push_back(std::move(pending));
  }

  io::PairedBatch take() override {
    if (pending_.empty()) throw std::logic_error("DeviceFeed::take: nothing pushed");
    Pending pending = std::move(pending_.front());
    pending_.pop_front();
    const c10::cuda::CUDAGuard device_guard(device_);
    const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device_.index());
    // The compute stream waits for the copy; the host does not.
    check(cudaStreamWaitEvent(compute.stream(), pending.copied, 0), "cudaStreamWaitEvent");
    check(cudaEventDestroy(pending.copied), "cudaEventDestroy");
    // The tensors were allocated on the copy stream: without this, their
    // blocks could be handed out again once the copy stream moves on, while
    // the compute stream still reads them.
    for (const at::Tensor* t : {&pending.pair.source.image, &pending.pair.source.mask, &pending.pair.target.image,
                                &pending.pair.target.mask}) {
      if (t->defined()) c10::cuda::CUDACachingAllocator::recordStream(t->storage().data_ptr(), compute);
    }
    return std::move(pending.pair);
  }

 private:
  struct Pending {
    io::PairedBatch pair;
    cudaEvent_t copied = nullptr;
  };

  io::Batch to_device(const io::Batch& host) const {
    io::Batch out = host;
    out.image = host.image.to(device_, /*non_blocking=*/true);
    if (host.mask.defined()) out.mask = host.mask.to(device_, /*non_blocking=*/true);
    return out;
  }

  c10::Device device_;
  c10::cuda::CUDAStream copy_stream_;
  std::deque<Pending> pending_;
};

}  // namespace

std::unique_ptr<DeviceFeed> make_cuda_device_feed(c10::Device device) {
  return std::make_unique<CudaDeviceFeed>(device);
}

}  // namespace da::trainer
