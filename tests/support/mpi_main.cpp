// main() for GoogleTest binaries run under mpirun. Every rank runs every test;
// the exit status of a rank is non-zero when any rank failed a test, so the
// ctest entry fails whichever rank the failure happened on, and each failure
// is printed with its rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

namespace {

class RankTagger : public testing::EmptyTestEventListener {
 public:
  explicit RankTagger(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (result.failed()) {
      std::fprintf(stderr, "[rank %d] FAILED at %s:%d\n%s\n", rank_, result.file_name() ? result.file_name() : "?",
                   result.line_number(), result.summary());
    }
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  testing::UnitTest::GetInstance()->listeners().Append(new RankTagger(rank));
  const int local_failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = 0;
  MPI_Allreduce(&local_failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any_failed) std::fprintf(stderr, "some rank failed a test\n");
  MPI_Finalize();
  return any_failed;
}
