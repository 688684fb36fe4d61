// Collectives on tensors, one implementation per backend: MPI for CPU
// tensors (here), NCCL for CUDA tensors (built when NCCL is available), and
// a local one for a world of one. The trainer and the methods see only this
// interface, never mpi.h or nccl.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace da::dist {

enum class ReduceOp { kSum, kMin, kMax };

// How a duplicate's collectives make progress. kCaller: inside the caller's
// calls (for MPI, a non-blocking all-reduce moves only while its caller is
// inside MPI: test(), wait() or another MPI call). kThread: a thread of the
// communicator's own runs its collectives, in the order they were started,
// while the caller computes (MPI then needs MPI_THREAD_MULTIPLE:
// dist::world().thread_multiple). NCCL and the local communicator progress on
// their own and take either.
enum class Progress { kCaller, kThread };

// A collective in flight. wait() returns once the result is in the tensor
// for what runs next: for a CPU tensor on the host; for a GPU tensor (NCCL)
// for the work queued next on the current CUDA stream, which waits for it
// while the host goes on (a collective not done by the timeout is then
// reported by a later collective). Throws DistError on failure or when the
// collective timeout passes.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  // Non-blocking: true once complete (and lets MPI make progress).
  virtual bool test() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;

  // In-place reduction across all ranks. In-place operations take dense
  // tensors in any memory layout (contiguous or channels-last weights): they
  // work on the memory block, which has the same layout on every rank.
  virtual std::unique_ptr<Work> all_reduce_async(at::Tensor& tensor, ReduceOp op) = 0;
  void all_reduce(at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) { all_reduce_async(tensor, op)->wait(); }

  // In-place: every rank ends with root's values.
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  // Returns [size, ...tensor.sizes()], rank r's tensor at index r.
  virtual at::Tensor all_gather(const at::Tensor& tensor) = 0;
  virtual void barrier() = 0;

  // A communicator over the same ranks whose collectives are matched only
  // among themselves (MPI_Comm_dup; a second NCCL communicator on a stream
  // of its own). Collective over the world: every rank calls it, in the same
  // order. The gradient reducer runs on one, so a bucket whose launch moves
  // with a rank's unused parameters can never pair up with another rank's
  // SyncBN or method collective (see dist/grad_reducer.h).
  virtual std::unique_ptr<Communicator> duplicate(Progress progress) = 0;
};

struct CommunicatorOptions {
  std::string backend = "auto";  // auto | nccl | mpi
  double timeout_s = 600.0;      // a collective not complete by then is an error
  bool cuda_tensors = false;     // the model lives on a GPU
};

// The communicator for the current world (dist::world()):
//   auto: local for a world of one; else NCCL for CUDA tensors, MPI for CPU;
//   nccl: NCCL, even for a world of one (needs CUDA tensors and a build with
//         NCCL, i.e. a CUDA Torch);
//   mpi:  MPI; GPU tensors are staged through page-locked host memory.
// Throws DistError naming what is missing for a backend that cannot work.
std::unique_ptr<Communicator> make_communicator(const CommunicatorOptions& options);

}  // namespace da::dist
