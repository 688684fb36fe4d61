// The MPI communicator under mpirun -np 2: values of every collective for
// every supported dtype, several all-reduces in flight at once, and errors;
// the same on a duplicate whose collectives run on a thread of its own.
#include <gtest/gtest.h>
#include <mpi.h>

#include <ATen/ATen.h>

#include "dist/bootstrap.h"
#include "dist/communicator.h"
#include "dist/errors.h"
#include "dist/local_communicator.h"
#include "dist/mpi_communicator.h"
#include "dist/peer_probe.h"
#include "support/process.h"

namespace da::dist {
namespace {

int mpi_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

TEST(MpiCommunicator, AllReduceSumMinMaxEveryDtype) {
  MpiCommunicator comm(30);
  ASSERT_EQ(comm.size(), 2);
  const int r = comm.rank();
  for (auto dtype : {at::kFloat, at::kDouble, at::kLong, at::kInt, at::kByte, at::kHalf, at::kBFloat16}) {
    // rank 0: 1,2,3,4,5; rank 1: 11,12,13,14,15
    auto base = at::arange(1, 6, at::kDouble) + 10 * r;
    auto sum = base.to(dtype).clone();  // .to() of the same dtype would alias base
    comm.all_reduce(sum, ReduceOp::kSum);
    EXPECT_TRUE(at::equal(sum, (2 * at::arange(1, 6, at::kDouble) + 10).to(dtype))) << dtype;
    auto mn = base.to(dtype).clone();
    comm.all_reduce(mn, ReduceOp::kMin);
    EXPECT_TRUE(at::equal(mn, at::arange(1, 6, at::kDouble).to(dtype))) << dtype;
    auto mx = base.to(dtype).clone();
    comm.all_reduce(mx, ReduceOp::kMax);
    EXPECT_TRUE(at::equal(mx, (at::arange(1, 6, at::kDouble) + 10).to(dtype))) << dtype;
  }
}

// fp16 and bf16 (compressed gradients) sum as NCCL does: widened to float,
// added, rounded once. Rank 0 holds 1 and rank 1 small fractions that
// round away or not depending on the format's 11 or 8 significant bits.
TEST(MpiCommunicator, SixteenBitSumsRoundOnce) {
  MpiCommunicator comm(30);
  const at::Tensor mine = comm.rank() == 0 ? at::ones({4}, at::kFloat) : at::tensor({0.5f, 1e-3f, 2e-3f, 4e-3f});
  const at::Tensor theirs = comm.rank() == 0 ? at::tensor({0.5f, 1e-3f, 2e-3f, 4e-3f}) : at::ones({4}, at::kFloat);
  for (auto dtype : {at::kHalf, at::kBFloat16}) {
    at::Tensor sum = mine.to(dtype);
    comm.all_reduce(sum, ReduceOp::kSum);
    const at::Tensor expected = (mine.to(dtype).to(at::kFloat) + theirs.to(dtype).to(at::kFloat)).to(dtype);
    EXPECT_TRUE(at::equal(sum, expected)) << dtype << ": " << sum << " against " << expected;
  }
}

TEST(MpiCommunicator, SeveralAllReducesInFlight) {
  MpiCommunicator comm(30);
  std::vector<at::Tensor> tensors;
  std::vector<std::unique_ptr<Work>> works;
  for (int i = 0; i < 4; ++i) tensors.push_back(at::full({1000 * (i + 1)}, double(i + comm.rank()), at::kDouble));
  for (auto& t : tensors) works.push_back(comm.all_reduce_async(t, ReduceOp::kSum));
  for (int i = 3; i >= 0; --i) works[i]->wait();  // completion order does not matter
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(at::all(tensors[i].eq(2.0 * i + 1)).item<bool>()) << i;
}

TEST(MpiCommunicator, BroadcastAllGatherBarrier) {
  MpiCommunicator comm(30);
  auto t = at::full({2, 3}, float(comm.rank() + 1));
  comm.broadcast(t, 1);
  EXPECT_TRUE(at::all(t.eq(2.0f)).item<bool>());
  const auto gathered = comm.all_gather(at::full({3}, int64_t(comm.rank() * 7), at::kLong));
  ASSERT_EQ(gathered.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(at::all(gathered[0].eq(0)).item<bool>());
  EXPECT_TRUE(at::all(gathered[1].eq(7)).item<bool>());
  comm.barrier();
}

TEST(MpiCommunicator, Errors) {
  MpiCommunicator comm(30);
  auto shorts = at::ones({4}, at::kShort);
  EXPECT_THROW(comm.all_reduce(shorts), DistError);
  auto strided = at::ones({4, 4}).slice(1, 0, 4, 2);  // every other column: gaps in memory
  try {
    comm.all_reduce(strided);
    FAIL() << "expected DistError";
  } catch (const DistError& e) {
    EXPECT_STREQ(e.what(), "all_reduce: tensor must be dense (contiguous or another dense layout)");
  }
}

// Channels-last weights (run.memory_format) are dense but not contiguous:
// reduced and broadcast element for element like contiguous ones.
TEST(MpiCommunicator, ChannelsLastTensors) {
  MpiCommunicator comm(30);
  const at::Tensor values = at::arange(24, at::kFloat).reshape({1, 2, 3, 4});
  at::Tensor summed = (values * (comm.rank() + 1)).contiguous(at::MemoryFormat::ChannelsLast);
  comm.all_reduce(summed);
  const double ranks = comm.size() * (comm.size() + 1) / 2.0;  // 1 + 2 + ... + size
  EXPECT_TRUE(summed.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(at::equal(summed, values * ranks));
  at::Tensor broadcast = (values + comm.rank()).contiguous(at::MemoryFormat::ChannelsLast);
  comm.broadcast(broadcast, 0);
  EXPECT_TRUE(at::equal(broadcast, values));
}

// A rank that never joins: the other's wait() ends with a timeout error that
// names the collective, instead of hanging. Rank 1 joins after the error, so
// rank 0's pending request completes and MPI stays usable.
void check_timeout_instead_of_hang(Communicator& comm) {
  auto t = at::ones({8});
  if (comm.rank() == 0) {
    auto work = comm.all_reduce_async(t, ReduceOp::kSum);
    try {
      work->wait();
      FAIL() << "expected a timeout";
    } catch (const DistError& e) {
      EXPECT_NE(std::string(e.what()).find("all_reduce of 8 values timed out after 1 s on rank 0"), std::string::npos)
          << e.what();
    }
    MPI_Barrier(MPI_COMM_WORLD);
  } else {
    MPI_Barrier(MPI_COMM_WORLD);
    comm.all_reduce(t);
  }
}

// The probe after a timeout (dist/peer_probe.h): ranks that probe answer
// each other; one that does not is named, with its host.
TEST(PeerProbe, LiveRanksAnswerSilentOnesAreNamedWithTheirHost) {
  const Session session(nullptr, nullptr);  // MPI is up already: gathers the host names
  const auto everyone = silent_peers(30.0, 101);
  ASSERT_TRUE(everyone.has_value());
  EXPECT_TRUE(everyone->empty());
  if (mpi_rank() == 0) {
    const auto alone = silent_peers(0.5, 102);  // rank 1 never sends tag 102
    ASSERT_TRUE(alone.has_value());
    EXPECT_EQ(*alone, std::vector<int>{1});
  }
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_EQ(host_of(1), this_host());
  EXPECT_EQ(describe_ranks({1}), "rank 1 on host " + this_host());
  EXPECT_EQ(describe_ranks({0, 1}), "ranks 0, 1 on host " + this_host());
}

TEST(MpiCommunicator, TimeoutInsteadOfHang) {
  MpiCommunicator comm(1.0);
  check_timeout_instead_of_hang(comm);
  EXPECT_EQ(mpi_rank(), comm.rank());
}

// Progress::kThread: collectives run on the communicator's own thread, in
// the order they were started, give the same values, also while the main
// thread runs collectives on another communicator (MPI_THREAD_MULTIPLE).
TEST(MpiCommunicatorOnAThread, ValuesInStartOrderBesideMainThreadCollectives) {
  MpiCommunicator world(30);
  const auto comm = world.duplicate(Progress::kThread);
  std::vector<at::Tensor> tensors;
  std::vector<std::unique_ptr<Work>> works;
  for (int i = 0; i < 4; ++i) tensors.push_back(at::full({1000 * (i + 1)}, double(i + comm->rank()), at::kDouble));
  for (auto& t : tensors) works.push_back(comm->all_reduce_async(t, ReduceOp::kSum));
  at::Tensor main = at::full({5}, comm->rank() + 1, at::kLong);
  world.all_reduce(main, ReduceOp::kMax);  // on the main thread meanwhile
  EXPECT_TRUE(at::all(main.eq(2)).item<bool>());
  for (int i = 3; i >= 0; --i) works[i]->wait();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(at::all(tensors[i].eq(2.0 * i + 1)).item<bool>()) << i;

  at::Tensor channels_last = (at::arange(24, at::kFloat).reshape({1, 2, 3, 4}) * (comm->rank() + 1))
                                 .contiguous(at::MemoryFormat::ChannelsLast);
  comm->all_reduce(channels_last, ReduceOp::kMin);
  EXPECT_TRUE(at::equal(channels_last, at::arange(24, at::kFloat).reshape({1, 2, 3, 4})));
  auto t = at::full({2, 3}, float(comm->rank() + 1));
  comm->broadcast(t, 1);
  EXPECT_TRUE(at::all(t.eq(2.0f)).item<bool>());
  const auto gathered = comm->all_gather(at::full({3}, int64_t(comm->rank() * 7), at::kLong));
  EXPECT_TRUE(at::all(gathered[1].eq(7)).item<bool>());
  comm->barrier();
}

// The point of the thread: an all-reduce completes while the caller never
// enters MPI (Work::test of a threaded collective only reads its state).
// With Progress::kCaller a large Open MPI all-reduce would stall here.
TEST(MpiCommunicatorOnAThread, CompletesWhileTheCallerStaysOutOfMpi) {
  MpiCommunicator world(30);
  const auto comm = world.duplicate(Progress::kThread);
  at::Tensor big = at::full({4 << 20}, float(comm->rank() + 1));  // 16 MiB: many rendezvous fragments
  const auto work = comm->all_reduce_async(big, ReduceOp::kSum);
  double busy = 0;  // computes (no MPI) until the thread reports completion
  while (!work->test()) busy += at::rand({64}).sum().item<double>();
  EXPECT_TRUE(at::all(big.eq(3.0f)).item<bool>());
}

TEST(MpiCommunicatorOnAThread, TimeoutInsteadOfHang) {
  MpiCommunicator world(1.0);
  check_timeout_instead_of_hang(*world.duplicate(Progress::kThread));
}

std::string make_error(const std::string& backend, bool cuda_tensors) {
  try {
    make_communicator({backend, 30.0, cuda_tensors});
  } catch (const DistError& e) {
    return e.what();
  }
  return "";
}

// GPU tensors go to MPI directly only when the library says it is
// CUDA-aware: never for an Open MPI that ompi_info reports built without
// CUDA support (Debian's), whatever GPUs the machine has.
TEST(MpiCommunicator, CudaAwareOnlyWhenTheLibraryIsBuiltForIt) {
  const test::ProcessResult info =
      test::run_process("ompi_info", {"--parsable", "--param", "opal", "all", "--level", "9"}, {}, 60);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const bool built_false = info.out.find("opal_built_with_cuda_support:value:false") != std::string::npos;
  const bool built_true = info.out.find("opal_built_with_cuda_support:value:true") != std::string::npos;
  ASSERT_NE(built_false, built_true) << "ompi_info does not report opal_built_with_cuda_support:\n" << info.out;
  if (built_true) GTEST_SKIP() << "a CUDA-built Open MPI: run-time support depends on the GPU and driver";
  EXPECT_FALSE(mpi_is_cuda_aware());
}

TEST(MakeCommunicator, BackendForTheTensorsDevice) {
  Session session(nullptr, nullptr);  // joins the test main's MPI
  ASSERT_TRUE(world().uses_mpi);
  EXPECT_EQ(make_communicator({"auto", 30.0, false})->backend(), "mpi");
  EXPECT_EQ(make_communicator({"mpi", 30.0, false})->backend(), "mpi");
  EXPECT_EQ(make_error("nccl", false),
            "dist.backend nccl needs the model on a GPU, but run.device resolves to the CPU (use dist.backend auto "
            "or mpi)");
  EXPECT_EQ(make_communicator({"mpi", 30.0, true})->backend(), "mpi");  // GPU tensors staged through the host
  EXPECT_EQ(make_error("gloo", false), "dist.backend 'gloo' is unknown (auto, nccl or mpi)");
#ifndef DA_NCCL_ENABLED
  const std::string no_nccl =
      "dist.backend nccl is not available: this build has no NCCL (it needs a CUDA Torch and nccl.h)";
  EXPECT_EQ(make_error("nccl", true), no_nccl);
  EXPECT_EQ(make_error("auto", true), no_nccl);
#endif
}

TEST(LocalCommunicator, IdentityInAWorldOfOne) {
  LocalCommunicator comm;
  auto t = at::arange(3, at::kFloat);
  comm.all_reduce(t);
  EXPECT_TRUE(at::equal(t, at::arange(3, at::kFloat)));
  EXPECT_TRUE(at::equal(comm.all_gather(t), t.unsqueeze(0)));
  EXPECT_THROW(comm.broadcast(t, 1), DistError);
}

}  // namespace
}  // namespace da::dist
