// Training batches on their way to the device, pushed one step ahead of the
// step that uses them.
//
// On the CPU a pair is used where it is. On CUDA (cuda_device_feed.cpp,
// built only with a CUDA Torch) the loader's pinned pair is copied on a side
// stream while the current step computes; the compute stream, not the host,
// waits for that copy (an event), and the caching allocator is told which
// stream uses the copied tensors.
#pragma once

#include <c10/core/Device.h>

#include <deque>
#include <memory>

#include "io/paired_loader.h"

namespace da::trainer {

class DeviceFeed {
 public:
  virtual ~DeviceFeed() = default;
  // Starts moving `pair` to the device; returns without waiting for it.
  virtual void push(io::PairedBatch pair) = 0;
  // The oldest pushed pair, usable by work queued on the current stream.
  // Only after a push not yet taken.
  virtual io::PairedBatch take() = 0;
};

// The CPU feed: pairs stay where the loader put them.
class HostFeed final : public DeviceFeed {
 public:
  void push(io::PairedBatch pair) override { pairs_.push_back(std::move(pair)); }
  io::PairedBatch take() override;

 private:
  std::deque<io::PairedBatch> pairs_;
};

// HostFeed for the CPU; the side-stream feed for a CUDA device (an error in
// a build without a CUDA Torch).
std::unique_ptr<DeviceFeed> make_device_feed(c10::Device device);

}  // namespace da::trainer
