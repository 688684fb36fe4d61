// This process's place among the processes of a launcher (mpirun, srun), from
// the variables the launchers set, so that `da_tiles make` needs no MPI:
// each process writes its own shards and nothing has to be exchanged.
#pragma once

#include <array>
#include <cstdlib>
#include <string>

namespace da::tiles {

struct LauncherRank {
  int rank = 0;
  int size = 1;
  int local_size = 1;      // processes on this host
  const char* from = "";  // the variable the rank came from; "" when launched alone
};

inline LauncherRank launcher_rank() {
  auto number = [](const char* name, int fallback) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
  };
  // Open MPI, then MPICH/Intel MPI (PMI), then a Slurm step (srun). Not the
  // batch script's own SLURM_NTASKS: there one process runs, whatever the job's task count.
  for (const auto& [rank, size, local] : {std::array<const char*, 3>{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                                                                      "OMPI_COMM_WORLD_LOCAL_SIZE"},
                                          std::array<const char*, 3>{"PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"},
                                          std::array<const char*, 3>{"SLURM_PROCID", "SLURM_STEP_NUM_TASKS",
                                                                      "SLURM_STEP_TASKS_PER_NODE"}}) {
    if (std::getenv(rank) != nullptr && std::getenv(size) != nullptr) {
      return {number(rank, 0), number(size, 1), number(local, 1), rank};
    }
  }
  return {};
}

}  // namespace da::tiles
