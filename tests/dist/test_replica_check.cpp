// Replica checks under mpirun -np 2: agreeing ranks pass, a differing item
// or value is named on every rank, and broadcast copies rank 0's tensors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <functional>
#include <string>

#include "dist/errors.h"
#include "dist/mpi_communicator.h"
#include "dist/replica_check.h"

namespace da::dist {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DistError& e) {
    return e.what();
  }
  return "";
}

TEST(ReplicaCheck, AgreeingReplicasPass) {
  MpiCommunicator comm(30);
  EXPECT_NO_THROW(verify_replicas(comm, {{"config", "a: 1"}, {"parameter w", "float [2, 3]"}}));
  EXPECT_NO_THROW(check_agreement(comm, {{"global step", 12}, {"lambda", 0.25}}));
}

TEST(ReplicaCheck, FirstDifferingParameterIsNamedOnEveryRank) {
  MpiCommunicator comm(30);
  const std::string shape = comm.rank() == 0 ? "float [2, 3]" : "float [3, 2]";
  const std::string message = error_of([&] {
    verify_replicas(comm, {{"config", "a: 1"}, {"parameter w", shape}, {"parameter v", "float [4]"}});
  });
  EXPECT_EQ(message, "replicas differ: parameter w (item 1) differs between rank 0 and rank(s) 1; on rank " +
                         std::to_string(comm.rank()) + " it is " + shape + " (item counts per rank: 3 3)");
}

TEST(ReplicaCheck, ExtraParameterOnOneRankIsNamed) {
  MpiCommunicator comm(30);
  std::vector<std::pair<std::string, std::string>> items{{"parameter w", "float [2]"}};
  if (comm.rank() == 1) items.emplace_back("parameter extra", "float [1]");
  const std::string message = error_of([&] { verify_replicas(comm, items); });
  EXPECT_NE(message.find("item 1"), std::string::npos) << message;
  EXPECT_NE(message.find("(item counts per rank: 1 2)"), std::string::npos) << message;
}

TEST(ReplicaCheck, DisagreeingValueIsNamedWithItsRange) {
  MpiCommunicator comm(30);
  const std::string message =
      error_of([&] { check_agreement(comm, {{"global step", 7}, {"lambda", comm.rank() == 0 ? 0.5 : 0.75}}); });
  EXPECT_EQ(message.rfind("ranks disagree on lambda: min 0.5, max 0.75", 0), 0u) << message;
}

TEST(ReplicaCheck, BroadcastCopiesRankZero) {
  MpiCommunicator comm(30);
  at::Tensor a = at::full({3}, static_cast<double>(comm.rank() + 1));
  at::Tensor b = at::full({2, 2}, static_cast<float>(10 * (comm.rank() + 1)));
  broadcast_tensors(comm, {a, b});
  EXPECT_TRUE(at::equal(a, at::full({3}, 1.0)));
  EXPECT_TRUE(at::equal(b, at::full({2, 2}, 10.0f)));
}

}  // namespace
}  // namespace da::dist
