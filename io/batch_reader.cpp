#include "io/batch_reader.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>

#include "io/augmentation.h"
#include "io/normalization.h"

namespace da::io {

// Memory for batch tensors, recycled instead of freed.
//
// A batch is 48-64 MiB (16 tiles of 512x512, 3-4 bands, float32). glibc
// serves blocks that large with mmap and returns them to the kernel on free,
// so every fresh batch was zeroed and page-faulted in again by the kernel:
// that, not the arithmetic, was most of the loader's time. Raising glibc's
// mmap threshold with mallopt(M_MMAP_THRESHOLD) would change allocation for
// the whole process, and would not even help here: the workers allocate from
// per-thread arenas whose heaps are at most 64 MiB, so glibc falls back to
// mmap for such blocks anyway (and trims heaps on free). Instead each
// BatchReader keeps the buffers of batches the consumer has dropped: a batch
// tensor is an at::from_blob view whose deleter gives its buffer back to the
// pool (which lives as long as the reader or any batch from it). The pool only
// ever holds as many buffers as were alive at once, capped at kMaxFree.
class BatchReader::BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  static constexpr size_t kMaxFree = 8;

  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool() {
    for (const auto& [bytes, data] : free_) std::free(data);
  }

  // An uninitialised contiguous tensor of `sizes` and `type` in pooled memory.
  at::Tensor tensor(at::IntArrayRef sizes, at::ScalarType type) {
    size_t bytes = at::elementSize(type);
    for (const int64_t size : sizes) bytes *= static_cast<size_t>(size);
    void* data = take(bytes);
    std::shared_ptr<BufferPool> self = shared_from_this();
    try {
      return at::from_blob(
          data, sizes, [self, bytes](void* p) { self->give(p, bytes); }, at::TensorOptions().dtype(type));
    } catch (...) {
      give(data, bytes);
      throw;
    }
  }

 private:
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->first == bytes) {
          void* data = it->second;
          free_.erase(it);
          return data;
        }
      }
    }
    // 64-byte aligned like ATen's own CPU allocator; aligned_alloc wants a multiple of the alignment.
    void* data = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (data == nullptr) throw std::bad_alloc();
    return data;
  }

  void give(void* data, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_.size() < kMaxFree) {
        free_.emplace_back(bytes, data);
        return;
      }
    }
    std::free(data);
  }

  std::mutex mutex_;
  std::vector<std::pair<size_t, void*>> free_;
};

namespace {

// Where output pixel (y, x) of a transformed tile comes from in the source
// plane (height x width, row-major): flips, then rot90, then crop, exactly as
// apply_transform does with at::flip, at::rot90 and narrow.
class PixelMap {
 public:
  PixelMap(const TileTransform& transform, int64_t height, int64_t width)
      : t_(transform), height_(height), width_(width) {}

  int64_t source(int64_t y, int64_t x) const {
    const int64_t i = y + t_.crop_y, j = x + t_.crop_x;  // position in the rotated tile
    int64_t p = i, q = j;                                 // position in the flipped tile
    switch (t_.rot90) {
      case 1:  // at::rot90 k=1: flip the columns, then transpose
        p = j;
        q = width_ - 1 - i;
        break;
      case 2:
        p = height_ - 1 - i;
        q = width_ - 1 - j;
        break;
      case 3:  // k=3: flip the rows, then transpose
        p = height_ - 1 - j;
        q = i;
        break;
      default:
        break;
    }
    const int64_t row = t_.vflip ? height_ - 1 - p : p;
    const int64_t column = t_.hflip ? width_ - 1 - q : q;
    return row * width_ + column;
  }

 private:
  TileTransform t_;
  int64_t height_;
  int64_t width_;
};

// out[y, x] = op(in[map(y, x)]) for an out_h x out_w plane; each output row
// is a strided walk through the source (stride 1 without rotation or flips).
template <typename In, typename Out, typename Op>
void map_plane(const In* in, Out* out, const PixelMap& map, int64_t out_h, int64_t out_w, Op op) {
  for (int64_t y = 0; y < out_h; ++y) {
    const int64_t base = map.source(y, 0);
    const int64_t step = out_w > 1 ? map.source(y, 1) - base : 1;
    const In* row = in + base;
    Out* o = out + y * out_w;
    if (step == 1) {
      for (int64_t x = 0; x < out_w; ++x) o[x] = op(row[x]);
    } else {
      for (int64_t x = 0; x < out_w; ++x) o[x] = op(row[x * step]);
    }
  }
}

// One tile [C, H, W] of raw pixels into its [C, out_h, out_w] slot of the
// batch: (float(v) - mean[c]) / std[c], the same float operations as the
// tensor expression (image - mean) / std this replaces, so values are
// bit-identical to before. (A multiply by a precomputed 1/std would save the
// division but change the last bit of some values; the loop is bound by
// memory, not by the divide.)
template <typename T>
void normalise_tile(const void* raw, float* out, const PixelMap& map, int64_t channels, int64_t height, int64_t width,
                    int64_t out_h, int64_t out_w, const std::vector<float>& mean, const std::vector<float>& std) {
  const T* in = static_cast<const T*>(raw);
  for (int64_t c = 0; c < channels; ++c) {
    const float m = mean[c], s = std[c];
    map_plane(in + c * height * width, out + c * out_h * out_w, map, out_h, out_w,
              [m, s](T v) { return (static_cast<float>(v) - m) / s; });
  }
}

}  // namespace

BatchReader::BatchReader(const std::vector<std::string>& paths, const LoaderOptions& options)
    : archives_(paths), options_(options), pool_(std::make_shared<BufferPool>()) {
  const BandNormalization normalization = resolve_normalization(options_.normalization, archives_);
  const ArchiveInfo& info = archives_.info();
  if (options_.load_masks && !info.has_masks) {
    throw ArchiveError(archives_.shard(0).path(), "/masks", "masks requested but the archive has none");
  }
  check_augmentation(options_.augmentation, info.height, info.width);
  if (options_.pin_memory && !at::hasCUDA()) {
    throw std::invalid_argument(
        "LoaderOptions::pin_memory: pinned host memory needs a CUDA build of Torch and a GPU, and this process has "
        "none");
  }
  mean_ = normalization.mean;
  std_ = normalization.std;
  buffer_.resize(archives_.shard(0).image_bytes());
  if (options_.load_masks) mask_buffer_.resize(archives_.shard(0).mask_bytes());
}

at::Tensor BatchReader::allocate(at::IntArrayRef sizes, at::ScalarType type) const {
  // Pinned batches come from Torch's caching host allocator, not from our
  // pool: a non-blocking copy to the GPU records its stream there, so the
  // block is not reused while the copy is still reading it.
  if (options_.pin_memory) return at::empty(sizes, at::TensorOptions().dtype(type).pinned_memory(true));
  return pool_->tensor(sizes, type);
}

Batch BatchReader::read(const std::vector<int64_t>& indices, int64_t epoch) const {
  const ArchiveInfo& info = archives_.info();
  const int64_t channels = info.channels();
  const int64_t height = options_.augmentation.crop_size > 0 ? options_.augmentation.crop_size : info.height;
  const int64_t width = options_.augmentation.crop_size > 0 ? options_.augmentation.crop_size : info.width;
  const int64_t rows = static_cast<int64_t>(indices.size());
  const NonFinite policy = options_.skip_non_finite ? NonFinite::kReport : NonFinite::kRefuse;
  // One allocation per batch (recycled), each tile written straight into its row.
  at::Tensor image = allocate({rows, channels, height, width}, at::kFloat);
  at::Tensor mask = options_.load_masks ? allocate({rows, height, width}, at::kLong) : at::Tensor();
  float* image_out = image.data_ptr<float>();
  int64_t* mask_out = options_.load_masks ? mask.data_ptr<int64_t>() : nullptr;
  const int64_t image_row = channels * height * width;
  const int64_t mask_row = height * width;
  Batch batch;
  int64_t kept = 0;
  for (const int64_t index : indices) {
    if (archives_.read_image(index, buffer_.data(), policy) > 0) {
      ++batch.skipped;
      continue;
    }
    const TileTransform transform =
        draw_transform(options_.augmentation, options_.seed, epoch, index, info.height, info.width);
    const PixelMap map(transform, info.height, info.width);
    float* out = image_out + kept * image_row;
    switch (info.pixel_type) {
      case PixelType::kUint8:
        normalise_tile<uint8_t>(buffer_.data(), out, map, channels, info.height, info.width, height, width, mean_,
                                std_);
        break;
      case PixelType::kUint16:
        normalise_tile<uint16_t>(buffer_.data(), out, map, channels, info.height, info.width, height, width, mean_,
                                 std_);
        break;
      case PixelType::kFloat32:
        normalise_tile<float>(buffer_.data(), out, map, channels, info.height, info.width, height, width, mean_,
                              std_);
        break;
    }
    if (options_.load_masks) {
      archives_.read_mask(index, mask_buffer_.data());
      map_plane(mask_buffer_.data(), mask_out + kept * mask_row, map, height, width,
                [](uint8_t v) { return static_cast<int64_t>(v); });
    }
    batch.indices.push_back(index);
    ++kept;
  }
  if (kept == 0) {
    // A batch whose tiles were all skipped keeps its shape.
    batch.image = at::empty({0, channels, height, width}, at::kFloat);
    if (options_.load_masks) batch.mask = at::empty({0, height, width}, at::kLong);
    return batch;
  }
  batch.image = kept == rows ? image : image.narrow(0, 0, kept);
  if (options_.load_masks) batch.mask = kept == rows ? mask : mask.narrow(0, 0, kept);
  return batch;
}

}  // namespace da::io
