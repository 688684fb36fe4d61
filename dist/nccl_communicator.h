// NCCL collectives on device buffers, written against the CUDA runtime and
// NCCL only (no Torch), so that it compiles wherever nccl.h exists, CUDA
// Torch or not. The glue that runs it on Torch's CUDA tensors and streams
// lives in its own file, built only with a CUDA Torch.
//
// Each communicator owns a dedicated CUDA stream; callers order it against
// their compute stream with order_after()/order_before() (events), so
// communication never blocks the host and never races the compute.
#pragma once

#include <cstddef>
#include <string>

#include "dist/bootstrap.h"

typedef struct ncclComm* ncclComm_t;
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

namespace da::dist {

enum class NcclType { kFloat32, kFloat64, kInt64, kInt32, kUint8, kBFloat16, kFloat16 };
enum class NcclOp { kSum, kMin, kMax };

// Which GPU a local rank uses: cuda:<local_rank>. Throws DistError naming the
// node's device count when it has fewer GPUs than local ranks, or when CUDA
// cannot be initialised (no driver, no device).
int select_device(const WorldInfo& world);

class NcclCommunicator;

// The point on a communicator's stream reached when the collectives enqueued
// so far have finished (an event recorded there). Lets a caller poll, wait
// with a timeout, and order its compute stream after the result.
class NcclCompletion {
 public:
  explicit NcclCompletion(NcclCommunicator& comm);
  ~NcclCompletion();
  NcclCompletion(const NcclCompletion&) = delete;
  NcclCompletion& operator=(const NcclCompletion&) = delete;

  bool done();
  // Blocks until done, polling NCCL's asynchronous errors; after timeout_s
  // the communicator is aborted (so no rank stays stuck in the collective)
  // and DistError names `what`, the rank and the timeout.
  void wait(double timeout_s, const std::string& what);
  // Makes `compute` wait for the collectives (no host blocking).
  void order_before(cudaStream_t compute);

 private:
  NcclCommunicator* comm_;
  cudaEvent_t event_ = nullptr;
};

class NcclCommunicator {
 public:
  // Collective over the world: rank 0 creates the NCCL unique id and
  // broadcasts it over MPI; every rank then joins on its selected device.
  explicit NcclCommunicator(const WorldInfo& world);
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }

  // Enqueued on stream(); in-place when send == recv.
  void all_reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op);
  void broadcast(void* buffer, std::size_t count, NcclType type, int root);
  void all_gather(const void* send, void* recv, std::size_t count_per_rank, NcclType type);

  // Makes stream() wait for work already queued on `compute` (and the
  // reverse), without blocking the host.
  void order_after(cudaStream_t compute);
  void order_before(cudaStream_t compute);

  // Throws DistError if NCCL reported an asynchronous error (e.g. a peer
  // died); the communicator is aborted first so no collective hangs.
  void check_async_error();
  // Aborts the communicator: every rank's pending collective returns.
  void abort();
  int rank() const { return world_.rank; }

 private:
  WorldInfo world_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t event_ = nullptr;
};

}  // namespace da::dist
