// `loader`: epochs of io::TileLoader over one archive, as the trainer would
// run them (shuffled, batches of --batch, --workers background threads,
// dtype normalisation, no augmentation, no masks; with --output stored, batches of
// the stored pixels, LoaderOptions::normalize false, left for the device to
// normalise), then one more untimed epoch that recovers every raw value of
// band 0 from the batches and prints their sum, to compare with h5py's and
// the generator's. With --world N, only rank --rank's share of the tiles
// (the trainer's sharding), so N processes together read the archive once.
// Also printed: seconds to make the loader (every shard opened once) and to
// the first batch, and, after the timed epochs, the process's memory (PSS
// and peak RSS) and open file descriptors.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "io/batch_normalize.h"
#include "io/pixel_type.h"
#include "io/tile_loader.h"
#include "tools/bench/bench_common.h"

namespace da::bench {

int run_loader(const LoaderPassOptions& pass) {
  const std::string& path = pass.file;
  io::LoaderOptions options;
  options.batch_size = pass.batch;
  options.workers = pass.workers;
  options.prefetch = pass.prefetch;
  options.seed = 1;
  options.shuffle = true;
  options.remainder = io::Remainder::kWrap;
  options.load_masks = false;
  options.normalization.mode = io::NormalizationMode::kDtype;
  options.normalize = pass.output == "normalized";
  if (pass.rank >= pass.world) throw std::runtime_error("--rank must be below --world");
  options.rank = pass.rank;
  options.world_size = pass.world;
  options.max_open_shards = static_cast<size_t>(pass.max_open);
  const int repeat = pass.repeat;
  // Intra-op threads of ATen (the normalisation arithmetic, at::stack). One
  // by default: the workers are the parallelism, and this machine has 2 cores.
  const int threads = pass.threads;
  at::set_num_threads(threads);

  const double open_start = now_s();
  io::TileLoader loader(options, {path});  // `path` may be a glob of shards
  const double open_s = now_s() - open_start;
  const io::ArchiveInfo& info = loader.info();
  const double tile_mb = info.channels() * info.height * info.width * io::pixel_size(info.pixel_type) / kMiB;
  Timings timings;
  int64_t tiles = 0;
  double first_batch_s = 0;
  for (int epoch = 0; epoch < repeat; ++epoch) {
    tiles = 0;
    const double start = now_s(), cpu_start = cpu_s();
    loader.start_epoch(epoch);
    int64_t batches = 0;
    while (std::optional<io::Batch> batch = loader.next()) {
      if (epoch == 0 && tiles == 0) first_batch_s = now_s() - start;
      tiles += batch->image.size(0);
      if (++batches == pass.max_batches) break;
    }
    timings.seconds.push_back(now_s() - start);
    timings.cpu.push_back(cpu_s() - cpu_start);
  }
  const ProcessMemory memory = process_memory();

  // Value check (untimed): band 0's raw values, back from value / range.
  const double range = info.pixel_type == io::PixelType::kUint8    ? 255.0
                       : info.pixel_type == io::PixelType::kUint16 ? 65535.0
                                                                   : 1.0;
  int64_t checksum = 0;
  int64_t checked = 0;
  if (pass.max_batches == 0) {  // with --max-batches no whole-archive checksum to compare
    loader.start_epoch(repeat);
    while (std::optional<io::Batch> batch = loader.next()) {
      const at::Tensor band = io::stored_pixels_as_float(batch->image.select(1, 0)).contiguous();
      const float* values = band.data_ptr<float>();
      const double scale = options.normalize ? range : 1.0;  // stored pixels are the raw values
      for (int64_t i = 0; i < band.numel(); ++i) checksum += std::llround(values[i] * scale);
      checked += band.size(0);
    }
  }
  std::printf(
      "RESULT kind=%s file=%s rank=%d world=%d workers=%d batch=%lld prefetch=%d intraop_threads=%d tiles=%lld repeat=%d "
      "best_s=%.4f median_s=%.4f tiles_per_s=%.1f mb_per_s=%.1f median_tiles_per_s=%.1f cpu_per_wall=%.2f "
      "checked_tiles=%lld checksum=%lld open_s=%.3f first_batch_s=%.3f pss_mib=%.1f hwm_mib=%.1f fds=%d\n",
      options.normalize ? "loader" : "loader_stored", path.c_str(), options.rank, options.world_size, options.workers, static_cast<long long>(options.batch_size), options.prefetch,
      at::get_num_threads(), static_cast<long long>(tiles), repeat, timings.best(), timings.median(),
      tiles / timings.best(), tiles * tile_mb / timings.best(), tiles / timings.median(), timings.cpu_per_wall(),
      static_cast<long long>(checked), static_cast<long long>(checksum), open_s, first_batch_s, memory.pss_mib,
      memory.hwm_mib, memory.fds);
  return 0;
}

}  // namespace da::bench
