#include "dist/peer_probe.h"

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "dist/bootstrap.h"
#include "dist/mpi_check.h"

namespace da::dist {
namespace {

constexpr int kHostNameBytes = 256;
MPI_Comm g_probe_comm = MPI_COMM_NULL;
std::vector<std::string> g_hosts;
std::atomic<bool> g_probed{false};

}  // namespace

void init_peer_probe(MPI_Comm world) {
  int size = 0;
  DA_MPI_CHECK(MPI_Comm_size(world, &size));
  char mine[kHostNameBytes] = {};
  this_host().copy(mine, kHostNameBytes - 1);
  std::vector<char> all(static_cast<size_t>(size) * kHostNameBytes);
  DA_MPI_CHECK(MPI_Allgather(mine, kHostNameBytes, MPI_CHAR, all.data(), kHostNameBytes, MPI_CHAR, world));
  g_hosts.clear();
  for (int r = 0; r < size; ++r) g_hosts.emplace_back(all.data() + static_cast<size_t>(r) * kHostNameBytes);
  if (g_probe_comm != MPI_COMM_NULL) MPI_Comm_free(&g_probe_comm);  // a second Session (tests)
  DA_MPI_CHECK(MPI_Comm_dup(world, &g_probe_comm));
  DA_MPI_CHECK(MPI_Comm_set_errhandler(g_probe_comm, MPI_ERRORS_RETURN));
}

const std::string& host_of(int rank) {
  static const std::string unknown;
  return rank >= 0 && rank < static_cast<int>(g_hosts.size()) ? g_hosts[rank] : unknown;
}

std::string describe_ranks(const std::vector<int>& ranks) {
  std::map<std::string, std::vector<int>> by_host;
  std::vector<std::string> order;
  for (const int r : ranks) {
    auto& list = by_host[host_of(r)];
    if (list.empty()) order.push_back(host_of(r));
    list.push_back(r);
  }
  std::string text;
  for (const std::string& host : order) {
    const auto& list = by_host[host];
    if (!text.empty()) text += "; ";
    text += list.size() == 1 ? "rank " : "ranks ";
    for (size_t i = 0; i < list.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(list[i]);
    if (!host.empty()) text += " on host " + host;
  }
  return text;
}

std::optional<std::vector<int>> silent_peers(double wait_s, int tag) {
  const WorldInfo& me = world();
  if (g_probe_comm == MPI_COMM_NULL || me.size < 2 || !me.thread_multiple) return std::nullopt;
  // The notes and the buffers of unanswered receives outlive this call on
  // purpose: a silent peer may never complete them (the job is ending).
  static const int note = 1;
  auto* received = new std::vector<int>(me.size, 0);
  std::vector<MPI_Request> receives(me.size, MPI_REQUEST_NULL);
  for (int r = 0; r < me.size; ++r) {
    if (r == me.rank) continue;
    MPI_Request send = MPI_REQUEST_NULL;
    if (MPI_Isend(&note, 1, MPI_INT, r, tag, g_probe_comm, &send) == MPI_SUCCESS) MPI_Request_free(&send);
    MPI_Irecv(&(*received)[r], 1, MPI_INT, r, tag, g_probe_comm, &receives[r]);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  std::vector<int> silent;
  for (;;) {
    silent.clear();
    for (int r = 0; r < me.size; ++r) {
      if (r == me.rank || receives[r] == MPI_REQUEST_NULL) continue;
      int done = 0;
      if (MPI_Test(&receives[r], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || done == 0) silent.push_back(r);
    }
    if (silent.empty()) delete received;  // every receive completed
    if (silent.empty() || std::chrono::steady_clock::now() > deadline) return silent;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string silent_peers_text(double wait_s) {
  if (g_probed.exchange(true)) return "";
  const std::optional<std::vector<int>> probed = silent_peers(wait_s);
  if (!probed) return "";
  const std::vector<int>& silent = *probed;
  const WorldInfo& me = world();
  const std::string self = "this is rank " + std::to_string(me.rank) +
                           (host_of(me.rank).empty() ? "" : " on host " + host_of(me.rank));
  if (silent.empty()) {
    return "; every other rank answered within " + std::to_string(static_cast<int>(wait_s)) +
           " s (one is slower than the timeout or skipped this collective; " + self + ")";
  }
  return "; no answer within " + std::to_string(static_cast<int>(wait_s)) + " s from " + describe_ranks(silent) +
         " (gone, stuck, or cut off from this host; " + self + ")";
}

}  // namespace da::dist
