// Who is still there, asked when a collective timed out. A timed-out
// collective says only that some rank did not take part; to name it, every
// rank that times out sends a note to every other rank and waits a few
// seconds for theirs. Ranks that are alive also time out in the same
// collective (they wait for the same missing rank) and answer; a rank that
// is gone, or whose host's network is cut, does not. With host names
// (gathered when MPI starts) the message can say "ranks 2, 3 on host h2".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <mpi.h>

namespace da::dist {

// Called once by Session after MPI_Init: the host name of every rank, and a
// communicator of the probe's own, so its notes never match other messages.
void init_peer_probe(MPI_Comm world);

// The host of `rank` ("" before init_peer_probe).
const std::string& host_of(int rank);

// "ranks 2, 3 on host h2; rank 5 on host h3" (grouped by host, in rank order).
std::string describe_ranks(const std::vector<int>& ranks);

// Sends a note (MPI tag `tag`) to every other rank and returns those whose
// note with that tag did not arrive within `wait_s`; nullopt (no probe) in a
// world of one or without MPI_THREAD_MULTIPLE (the probe may run beside a
// collective on another thread).
std::optional<std::vector<int>> silent_peers(double wait_s, int tag = 0);

// What a timed-out collective adds to its message: who did not answer
// within `wait_s`, or that everyone did. Only the first call in a process
// probes (tag 0; the job is ending, a second timeout needs no second wait);
// "" for later calls and where silent_peers does not probe.
std::string silent_peers_text(double wait_s);

}  // namespace da::dist
