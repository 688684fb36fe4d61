#include "dist/nccl_torch_communicator.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

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

class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator& nccl, cudaStream_t compute, double timeout_s, std::string what, at::Tensor device_tensor,
           at::Tensor cpu_result)
      : completion_(nccl),
        compute_(compute),
        timeout_s_(timeout_s),
        what_(std::move(what)),
        device_tensor_(std::move(device_tensor)),
        cpu_result_(std::move(cpu_result)) {}

  bool test() override { return finished_ || completion_.done(); }

  void wait() override {
    if (finished_) return;
    completion_.wait(timeout_s_, what_);
    completion_.order_before(compute_);
    // A CPU tensor was staged through the device: copy the result back.
    if (cpu_result_.defined()) cpu_result_.copy_(device_tensor_);
    finished_ = true;
  }

 private:
  NcclCompletion completion_;
  cudaStream_t compute_;
  double timeout_s_;
  std::string what_;
  at::Tensor device_tensor_;
  at::Tensor cpu_result_;
  bool finished_ = false;
};

class NcclTorchCommunicator : public Communicator {
 public:
  NcclTorchCommunicator(const WorldInfo& world, double timeout_s)
      : world_(world), nccl_(world), device_(static_cast<c10::DeviceIndex>(nccl_.device())), timeout_s_(timeout_s) {}

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
    return std::make_unique<NcclWork>(nccl_, compute, timeout_s_,
                                      "all_reduce of " + std::to_string(tensor.numel()) + " values", on_device,
                                      tensor.is_cuda() ? at::Tensor() : tensor);
  }

  void broadcast(at::Tensor& tensor, int root) override {
    check_dense(tensor, "broadcast");
    c10::cuda::CUDAGuard guard(device_);
    at::Tensor on_device = to_device(tensor);
    const cudaStream_t compute = enqueue_after_compute(on_device);
    nccl_.broadcast(on_device.data_ptr(), static_cast<std::size_t>(on_device.numel()), nccl_type(on_device), root);
    NcclWork(nccl_, compute, timeout_s_, "broadcast of " + std::to_string(tensor.numel()) + " values", on_device,
             tensor.is_cuda() ? at::Tensor() : tensor)
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
    NcclWork(nccl_, compute, timeout_s_, "all_gather of " + std::to_string(input.numel()) + " values", output, {})
        .wait();
    return tensor.is_cuda() ? output : output.cpu();
  }

  void barrier() override {
    at::Tensor token = at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(at::kCUDA, device_));
    all_reduce_async(token, ReduceOp::kSum)->wait();
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
  c10::DeviceIndex device_;
  double timeout_s_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const WorldInfo& world, double timeout_s) {
  return std::make_unique<NcclTorchCommunicator>(world, timeout_s);
}

}  // namespace da::dist
