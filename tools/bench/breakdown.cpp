// `breakdown`: where a loader's time goes, in one thread, without the
// loader's threads and queues:
//   read     io::TileArchive::read_image of every tile into one buffer
//            (for deflate archives direct chunk reads + zlib, see
//            io/direct_chunk_reader.h);
//   read_h5dread  the same with direct chunk reads off (H5Dread: HDF5's
//            filter pipeline does the inflate);
//   convert  what io::BatchReader did before issue #4's fix with the raw
//            pixels of a batch (a float tensor per tile, then
//            (image - mean) / std, then at::stack), on tiles in memory;
//   fused    the same values written in one pass, straight into a fresh
//            batch tensor: out = (float(in) - mean[c]) / std[c];
//   batch_reader  io::BatchReader::read of every batch as the loader calls
//            it (read + the one-pass conversion into a recycled batch).
// `convert` and `fused` must give identical batches (checked).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "config/errors.h"
#include "io/batch_reader.h"
#include "io/pixel_type.h"
#include "io/tile_archive.h"
#include "tools/bench/bench_common.h"

namespace da::bench {
namespace {

template <typename T>
void to_float(const void* raw, float* out, int64_t count) {
  const T* in = static_cast<const T*>(raw);
  for (int64_t i = 0; i < count; ++i) out[i] = in[i];
}

template <typename T>
void fused(const void* raw, float* out, int64_t channels, int64_t plane, const std::vector<float>& mean,
           const std::vector<float>& std) {
  const T* in = static_cast<const T*>(raw);
  for (int64_t c = 0; c < channels; ++c) {
    const float m = mean[c], s = std[c];
    const T* src = in + c * plane;
    float* dst = out + c * plane;
    for (int64_t i = 0; i < plane; ++i) dst[i] = (static_cast<float>(src[i]) - m) / s;
  }
}

}  // namespace

int run_breakdown(const BreakdownOptions& breakdown) {
  const std::string& path = breakdown.file;
  const int64_t batch = breakdown.batch;
  const int repeat = breakdown.repeat;
  at::set_num_threads(breakdown.threads);
  io::TileArchive archive(path);
  const io::ArchiveInfo& info = archive.info();
  if (info.pixel_type == io::PixelType::kFloat32) throw config::UsageError("breakdown: uint8 and uint16 archives only");
  const bool u8 = info.pixel_type == io::PixelType::kUint8;
  const int64_t tiles = archive.size() / batch * batch;
  if (tiles == 0) throw config::UsageError("breakdown: fewer tiles than one batch");
  const int64_t channels = info.channels(), plane = info.height * info.width;
  const size_t tile_bytes = archive.image_bytes();
  const double tile_mb = tile_bytes / kMiB;
  // dtype normalisation, as the loader's default: mean 0, std = range.
  const std::vector<float> mean(channels, 0.0f), std(channels, u8 ? 255.0f : 65535.0f);
  const at::Tensor mean_t = at::tensor(mean, at::kFloat).view({channels, 1, 1});
  const at::Tensor std_t = at::tensor(std, at::kFloat).view({channels, 1, 1});

  // read: every tile through the archive reader, as the loader's workers do.
  std::vector<char> one(tile_bytes);
  Timings read;
  for (int r = 0; r < repeat; ++r) {
    const double start = now_s();
    for (int64_t t = 0; t < tiles; ++t) archive.read_image(t, one.data());
    read.seconds.push_back(now_s() - start);
  }
  archive.set_direct_chunk_reads(false);
  Timings read_h5dread;
  for (int r = 0; r < repeat; ++r) {
    const double start = now_s();
    for (int64_t t = 0; t < tiles; ++t) archive.read_image(t, one.data());
    read_h5dread.seconds.push_back(now_s() - start);
  }
  archive.set_direct_chunk_reads(true);
  // The first batch's raw pixels stay in memory for the conversions.
  std::vector<char> raw(batch * tile_bytes);
  for (int64_t t = 0; t < batch; ++t) archive.read_image(t, raw.data() + t * tile_bytes);

  const auto convert_batch = [&] {
    std::vector<at::Tensor> images;
    for (int64_t t = 0; t < batch; ++t) {
      at::Tensor image = at::empty({channels, info.height, info.width}, at::kFloat);
      if (u8) {
        to_float<uint8_t>(raw.data() + t * tile_bytes, image.data_ptr<float>(), channels * plane);
      } else {
        to_float<uint16_t>(raw.data() + t * tile_bytes, image.data_ptr<float>(), channels * plane);
      }
      images.push_back((image - mean_t) / std_t);
    }
    return at::stack(images);
  };
  const auto fused_batch = [&] {
    at::Tensor out = at::empty({batch, channels, info.height, info.width}, at::kFloat);
    float* data = out.data_ptr<float>();
    for (int64_t t = 0; t < batch; ++t) {
      if (u8) {
        fused<uint8_t>(raw.data() + t * tile_bytes, data + t * channels * plane, channels, plane, mean, std);
      } else {
        fused<uint16_t>(raw.data() + t * tile_bytes, data + t * channels * plane, channels, plane, mean, std);
      }
    }
    return out;
  };
  if (!at::equal(convert_batch(), fused_batch()))
    throw std::runtime_error("fused conversion differs from the loader's");
  Timings convert, fuse;
  for (int r = 0; r < repeat; ++r) {
    double start = now_s();
    for (int64_t b = 0; b < tiles / batch; ++b) convert_batch();
    convert.seconds.push_back(now_s() - start);
    start = now_s();
    for (int64_t b = 0; b < tiles / batch; ++b) fused_batch();
    fuse.seconds.push_back(now_s() - start);
  }
  // batch_reader: the loader's own read of each batch (dtype normalisation, no masks, no augmentation).
  io::LoaderOptions options;
  options.batch_size = batch;
  options.load_masks = false;
  const io::BatchReader reader({path}, options);
  Timings reader_timings;
  for (int r = 0; r <= repeat; ++r) {  // the first pass warms the pool
    const double start = now_s();
    for (int64_t b = 0; b < tiles / batch; ++b) {
      std::vector<int64_t> indices;
      for (int64_t t = b * batch; t < (b + 1) * batch; ++t) indices.push_back(t);
      reader.read(indices, 0);
    }
    if (r > 0) reader_timings.seconds.push_back(now_s() - start);
  }
  for (const auto& [name, timings] :
       {std::pair<const char*, const Timings&>{"read", read}, {"read_h5dread", read_h5dread}, {"convert", convert},
        {"fused", fuse}, {"batch_reader", reader_timings}}) {
    std::printf(
        "RESULT kind=breakdown file=%s step=%s tiles=%lld batch=%lld repeat=%d best_s=%.4f median_s=%.4f "
        "tiles_per_s=%.1f mb_per_s=%.1f median_tiles_per_s=%.1f\n",
        path.c_str(), name, static_cast<long long>(tiles), static_cast<long long>(batch), repeat, timings.best(),
        timings.median(), tiles / timings.best(), tiles * tile_mb / timings.best(), tiles / timings.median());
  }
  return 0;
}

}  // namespace da::bench
