#include "setup/elastic_resume.h"

#include <filesystem>
#include <stdexcept>

#include "setup/checkpoint.h"

namespace da::setup {

std::string resume_checkpoint_path(const std::string& resume, const std::string& run_dir) {
  if (resume != "auto") return resume;
  const std::string last = run_dir + "/checkpoints/last.pt";
  return std::filesystem::exists(last) ? last : "";
}

CheckpointGeometry read_checkpoint_geometry(const std::string& path) {
  const std::map<std::string, double> scalars = read_checkpoint_scalars(path);
  CheckpointGeometry geometry;
  const auto world = scalars.find(kWorldSizeScalar), batch = scalars.find(kBatchSizeScalar);
  if (world != scalars.end() && batch != scalars.end()) {
    geometry.world_size = static_cast<std::int64_t>(world->second);
    geometry.batch_size = static_cast<std::int64_t>(batch->second);
  }
  return geometry;
}

ElasticBatch elastic_batch(const CheckpointGeometry& saved, std::int64_t world_size, std::int64_t configured,
                           const std::string& path) {
  if (saved.world_size == 0 || saved.world_size == world_size) return {configured, ""};
  const std::int64_t global = saved.world_size * saved.batch_size;
  const std::string written = path + " was written by " + std::to_string(saved.world_size) + " ranks x batch " +
                              std::to_string(saved.batch_size) + " (global batch " + std::to_string(global) + ")";
  if (global % world_size != 0) {
    std::string divisors;
    for (std::int64_t n = 1; n <= global; ++n) {
      if (global % n == 0) divisors += (divisors.empty() ? "" : ", ") + std::to_string(n);
    }
    throw std::runtime_error("cannot resume on " + std::to_string(world_size) + " ranks: " + written +
                             ", which they cannot share evenly; resume on " + divisors + " ranks");
  }
  const std::int64_t batch = global / world_size;
  return {batch, written + "; resuming on " + std::to_string(world_size) + " ranks with batch " +
                     std::to_string(batch) + " per rank" +
                     (batch != configured ? " (not data.batch_size " + std::to_string(configured) + ")" : "") +
                     ": the same global batch, steps per epoch, schedules and data position"};
}

}  // namespace da::setup
