// Process-group bootstrap: who am I, how many are we, who shares my node.
//
// A process started by mpirun/srun (detected from the launcher's environment)
// initialises MPI; a process started on its own runs as a world of one
// without touching MPI, so `da_dist --config x.yaml` works on a laptop.
#pragma once

#include <string>

namespace da::dist {

struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the processes on this node
  int local_size = 1;
  bool uses_mpi = false;
  // MPI granted MPI_THREAD_MULTIPLE: a communicator may run its collectives
  // on a thread of its own (Progress::kThread) while the main thread calls MPI.
  bool thread_multiple = false;
};

// Owns MPI's lifetime: MPI_Init_thread in the constructor (when launched by an
// MPI launcher), MPI_Finalize in the destructor. Create exactly one, first
// thing in main(). If MPI is already initialised (a test main), the session
// uses it and leaves finalising to its owner.
class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const WorldInfo& world() const { return world_; }

 private:
  WorldInfo world_;
  bool owns_mpi_ = false;
};

// The world of the current Session (a world of one before any Session).
const WorldInfo& world();

// True when the environment says an MPI launcher started this process.
bool launched_by_mpi();

// Ends every rank of the job at once with `code` (MPI_Abort), after printing
// `message` to stderr. Used when one rank fails so that no rank hangs.
[[noreturn]] void abort_job(int code, const std::string& message);

// "Open MPI v4.1.4, ..." (the first line of MPI_Get_library_version).
std::string mpi_library_version();

// This machine's host name ("unknown" if it has none).
std::string this_host();

// Synchronises all ranks (no-op in a world of one).
void barrier();

}  // namespace da::dist
