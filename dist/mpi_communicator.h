// Collectives over MPI_COMM_WORLD. All-reduce is non-blocking
// (MPI_Iallreduce); it is polled with MPI_Test until done or until the
// collective timeout, so a rank that never arrives produces an error that
// names the collective instead of a silent hang. GPU tensors go to MPI
// directly when the library is CUDA-aware, else through page-locked host
// copies.
//
// A duplicate with Progress::kThread runs every collective on a thread of
// its own (dist/progress_thread.h), in the order they were started: the
// all-reduces the gradient reducer starts in backward then progress while
// backward computes, instead of only when the main thread next enters MPI.
#pragma once

#include <mpi.h>

#include <functional>
#include <memory>

#include "dist/communicator.h"
#include "dist/progress_thread.h"

namespace da::dist {

// True when the MPI library reads and writes GPU memory itself: an Open MPI
// built with CUDA support (MPIX_CUDA_AWARE_SUPPORT) that also reports it at
// run time (MPIX_Query_cuda_support). Debian's Open MPI is not.
bool mpi_is_cuda_aware();

class MpiCommunicator : public Communicator {
 public:
  // Over MPI_COMM_WORLD.
  explicit MpiCommunicator(double timeout_s);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  std::unique_ptr<Work> all_reduce_async(at::Tensor& tensor, ReduceOp op) override;
  void broadcast(at::Tensor& tensor, int root) override;
  at::Tensor all_gather(const at::Tensor& tensor) override;
  void barrier() override;
  std::unique_ptr<Communicator> duplicate(Progress progress) override;

 private:
  MpiCommunicator(double timeout_s, MPI_Comm comm, Progress progress);
  // Runs `collective` on the progress thread and waits for it.
  void run_on_thread(const std::function<void()>& collective);

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  double timeout_s_;
  bool cuda_aware_;
  std::unique_ptr<ProgressThread> thread_;  // Progress::kThread only; last: joined first
};

}  // namespace da::dist
