#include "dist/mpi_communicator.h"

#include <ATen/ATen.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "dist/bootstrap.h"
#include "dist/mpi_check.h"
#include "dist/peer_probe.h"
#include "dist/poll_backoff.h"

#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // Open MPI: MPIX_CUDA_AWARE_SUPPORT, MPIX_Query_cuda_support
#endif

namespace da::dist {
namespace {

// MPI has no 16-bit float types: fp16 and bf16 travel as 2-byte elements
// and reduce with operations of our own, each element widened to float,
// combined and rounded back (what NCCL does for them too).
template <class T, ReduceOp kOp>
void reduce_16bit(void* in, void* inout, int* len, MPI_Datatype*) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = static_cast<float>(a[i]), y = static_cast<float>(b[i]);
    b[i] = T(kOp == ReduceOp::kSum ? x + y : kOp == ReduceOp::kMin ? std::min(x, y) : std::max(x, y));
  }
}

struct SixteenBitTypes {
  MPI_Datatype element = MPI_DATATYPE_NULL;                  // 2 bytes
  MPI_Op half[3] = {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL};  // by ReduceOp
  MPI_Op bfloat[3] = {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL};
};

// Created on first use (MPI is initialised by then), kept for the process.
const SixteenBitTypes& sixteen_bit_types() {
  static const SixteenBitTypes types = [] {
    SixteenBitTypes t;
    DA_MPI_CHECK(MPI_Type_contiguous(2, MPI_BYTE, &t.element));
    DA_MPI_CHECK(MPI_Type_commit(&t.element));
    DA_MPI_CHECK(MPI_Op_create(&reduce_16bit<c10::Half, ReduceOp::kSum>, 1, &t.half[0]));
    DA_MPI_CHECK(MPI_Op_create(&reduce_16bit<c10::Half, ReduceOp::kMin>, 1, &t.half[1]));
    DA_MPI_CHECK(MPI_Op_create(&reduce_16bit<c10::Half, ReduceOp::kMax>, 1, &t.half[2]));
    DA_MPI_CHECK(MPI_Op_create(&reduce_16bit<c10::BFloat16, ReduceOp::kSum>, 1, &t.bfloat[0]));
    DA_MPI_CHECK(MPI_Op_create(&reduce_16bit<c10::BFloat16, ReduceOp::kMin>, 1, &t.bfloat[1]));
    DA_MPI_CHECK(MPI_Op_create(&reduce_16bit<c10::BFloat16, ReduceOp::kMax>, 1, &t.bfloat[2]));
    return t;
  }();
  return types;
}

int op_index(ReduceOp op) { return op == ReduceOp::kSum ? 0 : op == ReduceOp::kMin ? 1 : 2; }

MPI_Datatype mpi_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kHalf:
    case at::kBFloat16: return sixteen_bit_types().element;
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kByte: return MPI_UINT8_T;
    default: throw DistError(std::string("no MPI type for tensors of ") + c10::toString(t.scalar_type()));
  }
}

MPI_Op mpi_op(ReduceOp op, const at::Tensor& t) {
  if (t.scalar_type() == at::kHalf) return sixteen_bit_types().half[op_index(op)];
  if (t.scalar_type() == at::kBFloat16) return sixteen_bit_types().bfloat[op_index(op)];
  switch (op) {
    case ReduceOp::kSum: return MPI_SUM;
    case ReduceOp::kMin: return MPI_MIN;
    case ReduceOp::kMax: return MPI_MAX;
  }
  return MPI_SUM;
}

void check_tensor(const at::Tensor& t, const char* what) {
  if (!t.is_non_overlapping_and_dense()) {
    throw DistError(std::string(what) + ": tensor must be dense (contiguous or another dense layout)");
  }
}

int count_of(const at::Tensor& t) {
  if (t.numel() > std::numeric_limits<int>::max()) throw DistError("tensor too large for one MPI call");
  return static_cast<int>(t.numel());
}

}  // namespace

bool mpi_is_cuda_aware() {
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
  return MPIX_Query_cuda_support() == 1;
#else
  return false;
#endif
}

namespace {

// Where MPI reads and writes a tensor: the tensor itself on the CPU, and on
// a GPU when the MPI library is CUDA-aware (after the tensor's stream has
// finished writing it: MPI knows no streams). Otherwise, for a GPU tensor, a
// page-locked host copy in the same layout (any MPI build works, and two
// ranks can share one GPU), copied back when the collective completes.
at::Tensor host_buffer(const at::Tensor& t, bool cuda_aware) {
  if (t.device().is_cpu()) return t;
  if (cuda_aware) {
    const auto* impl = c10::impl::getDeviceGuardImpl(t.device().type());
    impl->synchronizeStream(impl->getStream(t.device()));
    return t;
  }
  at::Tensor staged = at::empty_like(t, t.options().device(at::kCPU).pinned_memory(true));
  staged.copy_(t);
  return staged;
}

// Seconds a timed-out rank waits for the others' answers (dist/peer_probe.h).
constexpr double kProbeWaitS = 5.0;

DistError timeout_error(std::int64_t numel, double timeout_s) {
  return DistError("all_reduce of " + std::to_string(numel) + " values timed out after " +
                   std::to_string(static_cast<int>(timeout_s)) + " s on rank " + std::to_string(world().rank) +
                   " (another rank failed or never reached it)" + silent_peers_text(kProbeWaitS));
}

// Buffers of collectives given up on (timed out, or their progress thread
// stopped during a failure): MPI may still write into them until the job is
// aborted, so they are never freed.
void abandon(const at::Tensor& buffer) {
  static std::mutex mutex;
  static auto* list = new std::vector<at::Tensor>;
  const std::lock_guard<std::mutex> lock(mutex);
  list->push_back(buffer);
}

class MpiWork : public Work {
 public:
  // `tensor`: what the caller reduces; `buffer`: host_buffer(tensor, cuda_aware_).
  MpiWork(MPI_Request request, double timeout_s, at::Tensor buffer, at::Tensor tensor)
      : request_(request), timeout_s_(timeout_s), tensor_(std::move(buffer)), device_tensor_(std::move(tensor)) {
    if (device_tensor_.is_same(tensor_)) device_tensor_ = at::Tensor();
  }
  ~MpiWork() override {
    // A Work dropped without wait() must not leave MPI writing into a freed
    // tensor: complete it (errors are ignored here; wait() reports them).
    // Not after a timeout: the peer may never come (a host lost), and waiting
    // here, while the timeout's exception unwinds, would hang the rank.
    if (request_ != MPI_REQUEST_NULL && !timed_out_) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }

  bool test() override {
    if (request_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    DA_MPI_CHECK(MPI_Test(&request_, &done, MPI_STATUS_IGNORE));
    if (done != 0 && device_tensor_.defined()) {
      device_tensor_.copy_(tensor_);
      device_tensor_ = at::Tensor();
    }
    return done != 0;
  }

  void wait() override {
    const auto start = std::chrono::steady_clock::now();
    const PollBackoff backoff;
    while (!test()) {
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (waited > timeout_s_) {
        timed_out_ = true;
        abandon(tensor_);
        throw timeout_error(tensor_.numel(), timeout_s_);
      }
      backoff.pause();
    }
  }

 private:
  MPI_Request request_;
  double timeout_s_;
  bool timed_out_ = false;
  at::Tensor tensor_;
  at::Tensor device_tensor_;  // a GPU tensor to copy the result into; undefined on the CPU
};

// A collective run by a ProgressThread. The job releases its waiter once
// the result is in (or with an error), and ends once MPI no longer uses the
// buffer: after a timeout the request stays pending (as a caller-progress
// Work's does until its destructor's MPI_Wait), and the job keeps polling it.
class JobState {
 public:
  void release(std::exception_ptr error) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (released_) return;
      released_ = true;
      error_ = std::move(error);
    }
    changed_.notify_all();
  }
  void end() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ended_ = true;
    }
    changed_.notify_all();
  }
  bool released() {
    std::lock_guard<std::mutex> lock(mutex_);
    return released_;
  }
  // Waits for the release; rethrows the job's error.
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return released_; });
    if (error_) std::rethrow_exception(error_);
  }
  void wait_for_end() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return ended_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool released_ = false;
  bool ended_ = false;
  std::exception_ptr error_;
};

// Runs `collective` as a job's body: its error, if any, goes to the waiter.
void run_job(JobState& state, const std::function<void()>& collective) {
  try {
    collective();
    state.release(nullptr);
  } catch (...) {
    state.release(std::current_exception());
  }
  state.end();
}

// The body of a threaded all-reduce: started and polled on the progress
// thread, with the same timeout as the caller-progress path.
void all_reduce_on_thread(MPI_Comm comm, const at::Tensor& buffer, ReduceOp op, double timeout_s,
                          const ProgressThread& thread, JobState& state) {
  MPI_Request request = MPI_REQUEST_NULL;
  DA_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buffer.data_ptr(), count_of(buffer), mpi_type(buffer), mpi_op(op, buffer),
                              comm, &request));
  const auto start = std::chrono::steady_clock::now();
  const PollBackoff backoff;
  for (;;) {
    int done = 0;
    DA_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done != 0) return;
    if (thread.stopping()) {
      abandon(buffer);
      throw DistError("all_reduce abandoned: its communicator was closed during a failure");
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_s) {
      state.release(std::make_exception_ptr(timeout_error(buffer.numel(), timeout_s)));
    }
    // Lets the rank's compute threads run between polls on a busy core.
    backoff.pause();
  }
}

class ThreadedWork : public Work {
 public:
  ThreadedWork(std::shared_ptr<JobState> state, at::Tensor buffer, at::Tensor tensor)
      : state_(std::move(state)), buffer_(std::move(buffer)), device_tensor_(std::move(tensor)) {
    if (device_tensor_.is_same(buffer_)) device_tensor_ = at::Tensor();
  }
  // Never leaves MPI writing into a tensor being freed: the job ends when
  // its request completes, or at once when its thread is stopping.
  ~ThreadedWork() override { state_->wait_for_end(); }
  bool test() override {
    if (!state_->released()) return false;
    wait();
    return true;
  }
  void wait() override {
    state_->wait();
    if (device_tensor_.defined()) {
      device_tensor_.copy_(buffer_);
      device_tensor_ = at::Tensor();
    }
  }

 private:
  std::shared_ptr<JobState> state_;
  at::Tensor buffer_;
  at::Tensor device_tensor_;  // a GPU tensor to copy the result into; undefined on the CPU
};

}  // namespace

MpiCommunicator::MpiCommunicator(double timeout_s) : MpiCommunicator(timeout_s, MPI_COMM_WORLD, Progress::kCaller) {}

MpiCommunicator::MpiCommunicator(double timeout_s, MPI_Comm comm, Progress progress)
    : comm_(comm), timeout_s_(timeout_s), cuda_aware_(mpi_is_cuda_aware()) {
  DA_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  DA_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  if (progress == Progress::kThread) {
    int level = 0;
    DA_MPI_CHECK(MPI_Query_thread(&level));
    if (level != MPI_THREAD_MULTIPLE) {
      throw DistError("collectives on a progress thread need MPI_THREAD_MULTIPLE, which this MPI library did not "
                      "grant (dist.mpi_progress: caller works without it)");
    }
    thread_ = std::make_unique<ProgressThread>();
  }
}

MpiCommunicator::~MpiCommunicator() {
  if (thread_) {
    // During a failure a peer may never arrive: give up on what is queued.
    if (std::uncaught_exceptions() > 0) thread_->stop();
    thread_.reset();
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (comm_ != MPI_COMM_WORLD && finalized == 0) MPI_Comm_free(&comm_);
}

std::unique_ptr<Communicator> MpiCommunicator::duplicate(Progress progress) {
  MPI_Comm copy = MPI_COMM_NULL;
  DA_MPI_CHECK(MPI_Comm_dup(comm_, &copy));
  return std::unique_ptr<Communicator>(new MpiCommunicator(timeout_s_, copy, progress));
}

void MpiCommunicator::run_on_thread(const std::function<void()>& collective) {
  auto state = std::make_shared<JobState>();
  thread_->post([state, &collective] { run_job(*state, collective); });
  state->wait_for_end();  // `collective` refers to this frame
  state->wait();          // its error, if any
}

std::unique_ptr<Work> MpiCommunicator::all_reduce_async(at::Tensor& tensor, ReduceOp op) {
  check_tensor(tensor, "all_reduce");
  at::Tensor buffer = host_buffer(tensor, cuda_aware_);
  if (thread_) {
    auto state = std::make_shared<JobState>();
    thread_->post([state, comm = comm_, buffer, op, timeout_s = timeout_s_, thread = thread_.get()] {
      run_job(*state, [&] { all_reduce_on_thread(comm, buffer, op, timeout_s, *thread, *state); });
    });
    return std::make_unique<ThreadedWork>(std::move(state), buffer, tensor);
  }
  MPI_Request request = MPI_REQUEST_NULL;
  DA_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buffer.data_ptr(), count_of(buffer), mpi_type(buffer), mpi_op(op, buffer),
                              comm_, &request));
  return std::make_unique<MpiWork>(request, timeout_s_, buffer, tensor);
}

void MpiCommunicator::broadcast(at::Tensor& tensor, int root) {
  check_tensor(tensor, "broadcast");
  at::Tensor buffer = host_buffer(tensor, cuda_aware_);
  const auto call = [&] {
    DA_MPI_CHECK(MPI_Bcast(buffer.data_ptr(), count_of(buffer), mpi_type(buffer), root, comm_));
  };
  thread_ ? run_on_thread(call) : call();
  if (!buffer.is_same(tensor)) tensor.copy_(buffer);
}

at::Tensor MpiCommunicator::all_gather(const at::Tensor& tensor) {
  const auto input = host_buffer(tensor.contiguous(), cuda_aware_);
  check_tensor(input, "all_gather");
  std::vector<int64_t> shape{size_};
  for (auto d : input.sizes()) shape.push_back(d);
  auto output = at::empty(shape, input.options());
  const auto call = [&] {
    DA_MPI_CHECK(MPI_Allgather(input.data_ptr(), count_of(input), mpi_type(input), output.data_ptr(), count_of(input),
                               mpi_type(input), comm_));
  };
  thread_ ? run_on_thread(call) : call();
  return output.to(tensor.device());
}

void MpiCommunicator::barrier() {
  const auto call = [&] { DA_MPI_CHECK(MPI_Barrier(comm_)); };
  thread_ ? run_on_thread(call) : call();
}

}  // namespace da::dist
