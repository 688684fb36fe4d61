// Resuming on another number of ranks than the checkpoint was written on
// (a requeued job that got fewer or more nodes), as torchrun and Horovod
// elastic allow. The global batch is what keeps the run the same run: with
// it kept, an epoch has the same steps, the learning-rate and lambda
// schedules (functions of the global step) carry over unchanged, and since
// every rank takes every world-th entry of the epoch's shared permutation
// (io/distributed_sampler.h), step s trains on permutation entries
// [s * global batch, (s + 1) * global batch) whatever the rank count: the
// samples seen in the interrupted epoch are not seen again and none is lost.
// So the batch per rank becomes global batch / ranks.
#pragma once

#include <cstdint>
#include <string>

namespace da::setup {

// The checkpoint to resume from: `resume` itself, or for "auto"
// <run_dir>/checkpoints/last.pt when it exists ("" when not: start afresh).
std::string resume_checkpoint_path(const std::string& resume, const std::string& run_dir);

// What a checkpoint records about the ranks that wrote it (0: not recorded,
// a checkpoint from before elastic resume).
struct CheckpointGeometry {
  std::int64_t world_size = 0;
  std::int64_t batch_size = 0;  // per rank
};
CheckpointGeometry read_checkpoint_geometry(const std::string& path);

// The batch per rank to resume with on `world_size` ranks: `configured`
// when the rank count is unchanged (or not recorded), otherwise the
// checkpoint's global batch over `world_size`, which must divide it (throws
// std::runtime_error saying which rank counts would). `note` says what
// changed ("" when nothing did).
struct ElasticBatch {
  std::int64_t batch_size = 0;
  std::string note;
};
ElasticBatch elastic_batch(const CheckpointGeometry& saved, std::int64_t world_size, std::int64_t configured,
                           const std::string& path);

}  // namespace da::setup
