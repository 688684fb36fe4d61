#include "dist/nccl_torch_communicator.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dist/errors.h"
#include "dist/nccl_communicator.h"

namespace da::dist {
namespace {

NcclType nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return NcclType::kFloat32;
    case at::kDouble: return NcclType::kFloat64;
    case at::kLong: return NcclType::kInt64;
    case at::kInt: return NcclType::kInt32;
    case at::kByte: return NcclType::kUint8;
    case at::kBFloat16: return NcclType::kBFloat16;
    case at::kHalf: return NcclType::kFloat16;
    default: throw DistError(std::string("no NCCL type for tensors of ") + c10::toString(t.scalar_type()));
  }
}

NcclOp nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return NcclOp::kSum;
    case ReduceOp::kMin: return NcclOp::kMin;
    case ReduceOp::kMax: return NcclOp::kMax;
  }
  return NcclOp::kSum;
}

// Collectives whose end the host did not wait for: on GPU tensors,
// Work::wait only orders the compute stream after the collective, so a step
// never blocks the host on the GPU. Every later collective first checks
// them: one still running past its deadline (a peer died or never joined)
// aborts the communicator and throws, as a blocking wait would have, and
// NCCL's asynchronous errors surface at once.
class UnwaitedCollectives {
 public:
  explicit UnwaitedCollectives(NcclCommunicator& nccl) : nccl_(nccl) {}

  void add(std::unique_ptr<NcclCompletion> completion, std::chrono::steady_clock::time_point launched,
           double timeout_s, std::string what) {
    entries_.push_back({std::move(completion), launched, timeout_s, std::move(what)});
  }

  void check() {
    nccl_.check_async_error();
    while (!entries_.empty() && entries_.front().completion->done()) entries_.pop_front();
    if (entries_.empty()) return;
    const Entry& oldest = entries_.front();
    const double running =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - oldest.launched).count();
    if (running <= oldest.timeout_s) return;
    nccl_.abort();
    throw DistError(oldest.what + " timed out after " + std::to_string(static_cast<int>(oldest.timeout_s)) +
                    " s on rank " + std::to_string(nccl_.rank()) + " (another rank failed or never reached it)");
  }

 private:
  struct Entry {
    std::unique_ptr<NcclCompletion> completion;
    std::chrono::steady_clock::time_point launched;
    double timeout_s;
    std::string what;
  };
  NcclCommunicator& nccl_;
  std::deque<Entry> entries_;
};

// How the host waits for a collective.
enum class HostWait {
  kNo,    // GPU tensor: the compute stream waits, the host goes on
  kYes,   // barrier: the host returns once every rank reached it
  kCopy,  // CPU tensor staged through the GPU: the host waits, then copies the result back
};

class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator& nccl, UnwaitedCollectives& unwaited, cudaStream_t compute, double timeout_s,
           std::string what, HostWait host_wait, at::Tensor device_tensor = {}, at::Tensor cpu_result = {})
      : completion_(std::make_unique<NcclCompletion>(nccl)),
        unwaited_(unwaited),
        launched_(std::chrono::steady_clock::now()),
        compute_(compute),
        timeout_s_(timeout_s),
        what_(std::move(what)),
        host_wait_(host_wait),
        device_tensor_(std::move(device_tensor)),
        cpu_result_(std::move(cpu_result)) {}

  bool test() override { return finished_ || completion_->done(); }

  void wait() override {
    if (finished_) return;
    finished_ = true;
    completion_->order_before(compute_);
    if (host_wait_ == HostWait::kNo) {
      unwaited_.add(std::move(completion_), launched_, timeout_s_, std::move(what_));
      return;
    }
    completion_->wait(timeout_s_, what_);
    if (host_wait_ == HostWait::kCopy) cpu_result_.copy_(device_tensor_);
  }

 private:
  std::unique_ptr<NcclCompletion> completion_;
  UnwaitedCollectives& unwaited_;
  std::chrono::steady_clock::time_point launched_;
  cudaStream_t compute_;
  double timeout_s_;
  std::string what_;
  HostWait host_wait_;
  at::Tensor device_tensor_;
  at::Tensor cpu_result_;
  bool finished_ = false;
};

class NcclTorchCommunicator : public Communicator {
 public:
  NcclTorchCommunicator(const WorldInfo& world, double timeout_s)
      : world_(world),
        nccl_(world),
        unwaited_(nccl_),
        device_(static_cast<c10::DeviceIndex>(nccl_.device())),
        timeout_s_(timeout_s) {}

  int rank() const override { return world_.rank; }
  int size() const override { return world_.size; }
  std::string backend() const override { return "nccl"; }

  std::unique_ptr<Work> all_reduce_async(at::Tensor& tensor, ReduceOp op) override {
    check_dense(tensor, "all_reduce");
    c10::cuda::CUDAGuard guard(device_);
    at::Tensor on_device = to_device(tensor);
    const cudaStream_t compute = enqueue_after_compute(on_device);
    nccl_.all_reduce(on_device.data_ptr(), on_device.data_ptr(), static_cast<std::size_t>(on_device.numel()),
                     nccl_type(on_device), nccl_op(op));
    return std::make_unique<NcclWork>(nccl_, unwaited_, compute, timeout_s_,
                                      "all_reduce of " + std::to_string(tensor.numel()) + " values",
                                      tensor.is_cuda() ? HostWait::kNo : HostWait::kCopy, on_device, tensor);
  }

  void broadcast(at::Tensor& tensor, int root) override {
    check_dense(tensor, "broadcast");
    c10::cuda::CUDAGuard guard(device_);
    at::Tensor on_device = to_device(tensor);
    const cudaStream_t compute = enqueue_after_compute(on_device);
    nccl_.broadcast(on_device.data_ptr(), static_cast<std::size_t>(on_device.numel()), nccl_type(on_device), root);
    NcclWork(nccl_, unwaited_, compute, timeout_s_, "broadcast of " + std::to_string(tensor.numel()) + " values",
             tensor.is_cuda() ? HostWait::kNo : HostWait::kCopy, on_device, tensor)
        .wait();
  }

  at::Tensor all_gather(const at::Tensor& tensor) override {
    c10::cuda::CUDAGuard guard(device_);
    const at::Tensor input = to_device(tensor.contiguous());
    std::vector<int64_t> shape{world_.size};
    for (auto d : input.sizes()) shape.push_back(d);
    at::Tensor output = at::empty(shape, input.options());
    const cudaStream_t compute = enqueue_after_compute(input);
    record_on_nccl_stream(output);
    nccl_.all_gather(input.data_ptr(), output.data_ptr(), static_cast<std::size_t>(input.numel()),
                     nccl_type(input));
    // A CPU result is copied from the device after the host waited.
    NcclWork(nccl_, unwaited_, compute, timeout_s_, "all_gather of " + std::to_string(input.numel()) + " values",
             tensor.is_cuda() ? HostWait::kNo : HostWait::kYes)
        .wait();
    return tensor.is_cuda() ? output : output.cpu();
  }

  // NCCL runs on its own stream: either progress is what it does anyway.
  std::unique_ptr<Communicator> duplicate(Progress) override {
    return std::make_unique<NcclTorchCommunicator>(world_, timeout_s_);
  }

  void barrier() override {
    c10::cuda::CUDAGuard guard(device_);
    at::Tensor token = at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(at::kCUDA, device_));
    const cudaStream_t compute = enqueue_after_compute(token);
    nccl_.all_reduce(token.data_ptr(), token.data_ptr(), 1, NcclType::kInt32, NcclOp::kSum);
    NcclWork(nccl_, unwaited_, compute, timeout_s_, "barrier", HostWait::kYes).wait();
  }

 private:
  static void check_dense(const at::Tensor& t, const char* what) {
    if (!t.is_non_overlapping_and_dense()) {
      throw DistError(std::string(what) + ": tensor must be dense (contiguous or another dense layout)");
    }
  }

  at::Tensor to_device(const at::Tensor& t) const {
    if (t.is_cuda()) {
      if (t.get_device() != device_) {
        throw DistError("NCCL communicator of rank " + std::to_string(world_.rank) + " is on cuda:" +
                        std::to_string(device_) + " but got a tensor on " + t.device().str());
      }
      return t;
    }
    return t.to(at::Device(at::kCUDA, device_));
  }

  // Orders the NCCL stream after the compute stream's pending work on `t`
  // and tells the caching allocator that `t` is in use on the NCCL stream,
  // so its memory is not handed out again before the collective finished.
  cudaStream_t enqueue_after_compute(const at::Tensor& t) {
    unwaited_.check();
    const cudaStream_t compute = c10::cuda::getCurrentCUDAStream(device_).stream();
    nccl_.order_after(compute);
    record_on_nccl_stream(t);
    return compute;
  }

  void record_on_nccl_stream(const at::Tensor& t) {
    c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(),
                                                  c10::cuda::getStreamFromExternal(nccl_.stream(), device_));
  }

  WorldInfo world_;
  NcclCommunicator nccl_;
  UnwaitedCollectives unwaited_;
  c10::DeviceIndex device_;
  double timeout_s_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const WorldInfo& world, double timeout_s) {
  return std::make_unique<NcclTorchCommunicator>(world, timeout_s);
}

}  // namespace da::dist
