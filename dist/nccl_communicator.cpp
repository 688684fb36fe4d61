#include "dist/nccl_communicator.h"

#include <chrono>
#include <thread>

#include <cuda_runtime.h>
#include <nccl.h>

#include "dist/errors.h"
#include "dist/local_device.h"
#include "dist/mpi_check.h"

// Every NCCL and CUDA call is checked, naming the call and the rank.
#define DA_NCCL_CHECK(call)                                                                          \
  do {                                                                                               \
    const ncclResult_t da_nccl_rc_ = (call);                                                         \
    if (da_nccl_rc_ != ncclSuccess) {                                                                \
      throw ::da::dist::DistError(std::string(#call) + " failed on rank " +                          \
                                  std::to_string(::da::dist::world().rank) + ": " +                  \
                                  ncclGetErrorString(da_nccl_rc_));                                  \
    }                                                                                                \
  } while (0)

#define DA_CUDA_CHECK(call)                                                                          \
  do {                                                                                               \
    const cudaError_t da_cuda_rc_ = (call);                                                          \
    if (da_cuda_rc_ != cudaSuccess) {                                                                \
      throw ::da::dist::DistError(std::string(#call) + " failed on rank " +                          \
                                  std::to_string(::da::dist::world().rank) + ": " +                  \
                                  cudaGetErrorString(da_cuda_rc_));                                  \
    }                                                                                                \
  } while (0)

namespace da::dist {
namespace {

ncclDataType_t nccl_type(NcclType t) {
  switch (t) {
    case NcclType::kFloat32: return ncclFloat32;
    case NcclType::kFloat64: return ncclFloat64;
    case NcclType::kInt64: return ncclInt64;
    case NcclType::kInt32: return ncclInt32;
    case NcclType::kUint8: return ncclUint8;
    case NcclType::kBFloat16: return ncclBfloat16;
    case NcclType::kFloat16: return ncclFloat16;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(NcclOp op) {
  switch (op) {
    case NcclOp::kSum: return ncclSum;
    case NcclOp::kMin: return ncclMin;
    case NcclOp::kMax: return ncclMax;
  }
  return ncclSum;
}

}  // namespace

int select_device(const WorldInfo& world) {
  int devices = 0;
  const cudaError_t rc = cudaGetDeviceCount(&devices);
  if (rc != cudaSuccess) {
    throw DistError("rank " + std::to_string(world.rank) + ": cannot use CUDA: " + cudaGetErrorString(rc));
  }
  const int device = local_device_index(world, devices);
  DA_CUDA_CHECK(cudaSetDevice(device));
  return device;
}

NcclCommunicator::NcclCommunicator(const WorldInfo& world) : world_(world) {
  device_ = select_device(world);
  ncclUniqueId id;
  if (world.rank == 0) DA_NCCL_CHECK(ncclGetUniqueId(&id));
  if (world.uses_mpi) DA_MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
  DA_NCCL_CHECK(ncclCommInitRank(&comm_, world.size, id, world.rank));
  DA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  DA_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
}

NcclCommunicator::~NcclCommunicator() {
  if (event_) cudaEventDestroy(event_);
  if (stream_) cudaStreamDestroy(stream_);
  if (comm_) ncclCommDestroy(comm_);
}

void NcclCommunicator::all_reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op) {
  DA_NCCL_CHECK(ncclAllReduce(send, recv, count, nccl_type(type), nccl_op(op), comm_, stream_));
}

void NcclCommunicator::broadcast(void* buffer, std::size_t count, NcclType type, int root) {
  DA_NCCL_CHECK(ncclBroadcast(buffer, buffer, count, nccl_type(type), root, comm_, stream_));
}

void NcclCommunicator::all_gather(const void* send, void* recv, std::size_t count_per_rank, NcclType type) {
  DA_NCCL_CHECK(ncclAllGather(send, recv, count_per_rank, nccl_type(type), comm_, stream_));
}

void NcclCommunicator::order_after(cudaStream_t compute) {
  DA_CUDA_CHECK(cudaEventRecord(event_, compute));
  DA_CUDA_CHECK(cudaStreamWaitEvent(stream_, event_, 0));
}

void NcclCommunicator::order_before(cudaStream_t compute) {
  DA_CUDA_CHECK(cudaEventRecord(event_, stream_));
  DA_CUDA_CHECK(cudaStreamWaitEvent(compute, event_, 0));
}

void NcclCommunicator::abort() {
  if (comm_) ncclCommAbort(comm_);
  comm_ = nullptr;
}

void NcclCommunicator::check_async_error() {
  if (!comm_) throw DistError("the NCCL communicator of rank " + std::to_string(world_.rank) + " was aborted");
  ncclResult_t async = ncclSuccess;
  DA_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
  if (async != ncclSuccess) {
    abort();
    throw DistError("NCCL reported an asynchronous error on rank " + std::to_string(world_.rank) + ": " +
                    ncclGetErrorString(async));
  }
}

NcclCompletion::NcclCompletion(NcclCommunicator& comm) : comm_(&comm) {
  DA_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  DA_CUDA_CHECK(cudaEventRecord(event_, comm.stream()));
}

NcclCompletion::~NcclCompletion() {
  if (event_) cudaEventDestroy(event_);
}

bool NcclCompletion::done() {
  const cudaError_t rc = cudaEventQuery(event_);
  if (rc == cudaErrorNotReady) return false;
  DA_CUDA_CHECK(rc);
  return true;
}

void NcclCompletion::wait(double timeout_s, const std::string& what) {
  const auto start = std::chrono::steady_clock::now();
  while (!done()) {
    comm_->check_async_error();
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > timeout_s) {
      comm_->abort();
      throw DistError(what + " timed out after " + std::to_string(static_cast<int>(timeout_s)) + " s on rank " +
                      std::to_string(comm_->rank()) + " (another rank failed or never reached it)");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

void NcclCompletion::order_before(cudaStream_t compute) { DA_CUDA_CHECK(cudaStreamWaitEvent(compute, event_, 0)); }

}  // namespace da::dist
