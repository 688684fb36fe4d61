#include "dist/bootstrap.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "dist/mpi_check.h"
#include "dist/peer_probe.h"

namespace da::dist {
namespace {
WorldInfo g_world;
}  // namespace

namespace detail {
std::string mpi_error_message(const char* call, int code) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(call) + " failed on rank " + std::to_string(g_world.rank) + ": " + std::string(text, length);
}
}  // namespace detail

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"}) {
    if (std::getenv(var) != nullptr) return true;
  }
  return false;
}

Session::Session(int* argc, char*** argv) {
  if (!launched_by_mpi()) {
    g_world = world_;
    return;
  }
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    // MULTIPLE: the gradient reducer's communicator runs its collectives on a
    // thread of its own while the main thread calls MPI (Progress::kThread).
    // FUNNELED (only the main thread calls MPI; loader threads never do) is
    // enough without it, and dist.mpi_progress falls back to kCaller.
    // Open MPI's non-blocking all-reduce (libnbc, what the gradient buckets
    // use) picks a ring or binomial tree by default, at half the blocking
    // call's bandwidth for buckets of megabytes; Rabenseifner's algorithm
    // (reduce-scatter + all-gather) matches it (README, All-reduce). Only a
    // default: a value the user set wins, and other MPIs ignore it.
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", /*overwrite=*/0);
    DA_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    if (provided < MPI_THREAD_FUNNELED) {
      throw DistError("the MPI library does not provide MPI_THREAD_FUNNELED");
    }
    owns_mpi_ = true;
  }
  int level = 0;
  DA_MPI_CHECK(MPI_Query_thread(&level));
  world_.thread_multiple = level == MPI_THREAD_MULTIPLE;
  // Errors come back as codes and DA_MPI_CHECK turns them into exceptions.
  DA_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  world_.uses_mpi = true;
  DA_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_.rank));
  DA_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_.size));
  MPI_Comm node_comm = MPI_COMM_NULL;
  DA_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_.rank, MPI_INFO_NULL, &node_comm));
  DA_MPI_CHECK(MPI_Comm_rank(node_comm, &world_.local_rank));
  DA_MPI_CHECK(MPI_Comm_size(node_comm, &world_.local_size));
  DA_MPI_CHECK(MPI_Comm_free(&node_comm));
  g_world = world_;
  if (world_.size > 1) init_peer_probe(MPI_COMM_WORLD);
}

Session::~Session() {
  g_world = WorldInfo{};
  if (!owns_mpi_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

const WorldInfo& world() { return g_world; }

void abort_job(int code, const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  if (g_world.uses_mpi) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, length);
  const auto end = version.find_first_of(",\n");
  return end == std::string::npos ? version : version.substr(0, end);
}

std::string this_host() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "unknown";
  return name;
}

void barrier() {
  if (g_world.uses_mpi) DA_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}

}  // namespace da::dist
