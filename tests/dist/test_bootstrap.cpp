// Process-group bootstrap under mpirun -np 2, and the harness itself: a
// failure on one rank must fail the whole ctest entry.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <vector>

#include "dist/bootstrap.h"
#include "dist/errors.h"
#include "dist/mpi_check.h"

namespace {

int g_argc = 0;
char** g_argv = nullptr;

TEST(Bootstrap, WorldMatchesMpi) {
  da::dist::Session session(&g_argc, &g_argv);
  const auto& w = session.world();
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_TRUE(w.uses_mpi);
  EXPECT_EQ(w.rank, rank);
  EXPECT_EQ(w.size, size);
  EXPECT_EQ(w.size, 2);
  // One node here: local ranks equal world ranks.
  EXPECT_EQ(w.local_size, 2);
  EXPECT_EQ(w.local_rank, w.rank);
  EXPECT_EQ(&da::dist::world(), &da::dist::world());
  EXPECT_EQ(da::dist::world().rank, rank);

  std::vector<int> all(2, -1);
  MPI_Allgather(&w.rank, 1, MPI_INT, all.data(), 1, MPI_INT, MPI_COMM_WORLD);
  EXPECT_EQ(all, (std::vector<int>{0, 1}));
  da::dist::barrier();
}

TEST(Bootstrap, FailedCallNamesCallAndRank) {
  da::dist::Session session(&g_argc, &g_argv);
  int value = 1;
  try {
    // An invalid communicator: MPI returns an error code (MPI_ERRORS_RETURN).
    DA_MPI_CHECK(MPI_Bcast(&value, 1, MPI_INT, 5, MPI_COMM_WORLD));
    FAIL() << "expected DistError";
  } catch (const da::dist::DistError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("MPI_Bcast"), std::string::npos) << msg;
    EXPECT_NE(msg.find("on rank " + std::to_string(session.world().rank)), std::string::npos) << msg;
  }
}

TEST(Bootstrap, LaunchDetectedFromEnvironment) { EXPECT_TRUE(da::dist::launched_by_mpi()); }

// Run only by the harness self-check entry (see CMakeLists.txt): fails on
// rank 1 alone; the ctest entry is expected to fail because of it.
TEST(HarnessSelfCheck, DISABLED_FailsOnRankOneOnly) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  EXPECT_EQ(rank, 0) << "deliberate failure on rank 1";
}

}  // namespace

// The test main owns MPI; sessions created in tests adopt it.
struct ArgsCapture {
  ArgsCapture() {
    static char name[] = "test_dist_mpi";
    static char* argv[] = {name, nullptr};
    g_argc = 1;
    g_argv = argv;
  }
} g_capture;
