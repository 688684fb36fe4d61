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

// One tile [C, H, W] into its [C, out_h, out_w] slot unchanged but for the
// augmentation (LoaderOptions::normalize false).
template <typename T, typename Out>
void copy_tile(const void* raw, Out* out, const PixelMap& map, int64_t channels, int64_t height, int64_t width,
               int64_t out_h, int64_t out_w) {
  const T* in = static_cast<const T*>(raw);
  for (int64_t c = 0; c < channels; ++c) {
    map_plane(in + c * height * width, out + c * out_h * out_w, map, out_h, out_w,
              [](T v) { return static_cast<Out>(v); });
  }
}

bool is_identity(const TileTransform& t) { return !t.hflip && !t.vflip && t.rot90 == 0 && t.crop_size == 0; }

// The tensor type of un-normalised images of `type`.
at::ScalarType stored_image_type(PixelType type) {
  switch (type) {
    case PixelType::kUint8: return at::kByte;
    case PixelType::kUint16: return at::kShort;  // the uint16 bits (Torch 1.13 has no uint16)
    case PixelType::kFloat32: return at::kFloat;
  }
  throw std::logic_error("unknown pixel type");
}

// A tile's raw pixels normalised into `out` (its row of a float batch).
void normalise_into(const void* raw, float* out, PixelType type, const PixelMap& map, int64_t channels,
                    int64_t height, int64_t width, int64_t out_h, int64_t out_w, const std::vector<float>& mean,
                    const std::vector<float>& std) {
  switch (type) {
    case PixelType::kUint8:
      normalise_tile<uint8_t>(raw, out, map, channels, height, width, out_h, out_w, mean, std);
      break;
    case PixelType::kUint16:
      normalise_tile<uint16_t>(raw, out, map, channels, height, width, out_h, out_w, mean, std);
      break;
    case PixelType::kFloat32:
      normalise_tile<float>(raw, out, map, channels, height, width, out_h, out_w, mean, std);
      break;
  }
}

// A tile's raw pixels copied into row `offset` (elements) of an un-normalised batch.
void copy_into(const void* raw, at::Tensor& image, int64_t offset, PixelType type, const PixelMap& map,
               int64_t channels, int64_t height, int64_t width, int64_t out_h, int64_t out_w) {
  switch (type) {
    case PixelType::kUint8:
      copy_tile<uint8_t>(raw, image.data_ptr<uint8_t>() + offset, map, channels, height, width, out_h,
                         out_w);
      break;
    case PixelType::kUint16:
      copy_tile<uint16_t>(raw, reinterpret_cast<uint16_t*>(image.data_ptr<int16_t>()) + offset, map, channels,
                          height, width, out_h, out_w);
      break;
    case PixelType::kFloat32:
      copy_tile<float>(raw, image.data_ptr<float>() + offset, map, channels, height, width, out_h, out_w);
      break;
  }
}

}  // namespace

BatchReader::BatchReader(const std::vector<std::string>& paths, const LoaderOptions& options)
    : BatchReader(ArchiveSet(paths, options.max_open_shards), options) {}

BatchReader::BatchReader(const ArchiveSet& archives, const LoaderOptions& options)
    : archives_(archives), options_(options), pool_(std::make_shared<BufferPool>()) {
  const BandNormalization normalization = resolve_normalization(options_.normalization, archives_);
  const ArchiveInfo& info = archives_.info();
  if (options_.load_masks && !info.has_masks) {
    throw ArchiveError(archives_.shard_path(0), "/masks", "masks requested but the archive has none");
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
  const at::ScalarType image_type = options_.normalize ? at::kFloat : stored_image_type(info.pixel_type);
  const at::ScalarType mask_type = options_.normalize ? at::kLong : at::kByte;
  // One allocation per batch (recycled), each tile written straight into its row.
  at::Tensor image = allocate({rows, channels, height, width}, image_type);
  at::Tensor mask = options_.load_masks ? allocate({rows, height, width}, mask_type) : at::Tensor();
  const int64_t image_row = channels * height * width;
  const int64_t mask_row = height * width;
  Batch batch;
  int64_t kept = 0;
  for (const int64_t index : indices) {
    const TileTransform transform =
        draw_transform(options_.augmentation, options_.seed, epoch, index, info.height, info.width);
    // Un-normalised, untransformed tiles go from the file straight into their
    // batch row: no copy at all.
    const bool direct = !options_.normalize && is_identity(transform);
    char* image_row_bytes = static_cast<char*>(image.data_ptr()) + kept * image_row * image.element_size();
    if (archives_.read_image(index, direct ? image_row_bytes : buffer_.data(), policy) > 0) {
      ++batch.skipped;  // the next tile overwrites whatever this one left in the row
      continue;
    }
    const PixelMap map(transform, info.height, info.width);
    if (!direct && options_.normalize) {
      normalise_into(buffer_.data(), image.data_ptr<float>() + kept * image_row, info.pixel_type, map, channels,
                     info.height, info.width, height, width, mean_, std_);
    } else if (!direct) {
      copy_into(buffer_.data(), image, kept * image_row, info.pixel_type, map, channels, info.height, info.width, height,
                width);
    }
    if (options_.load_masks) {
      if (direct) {
        archives_.read_mask(index, mask.data_ptr<uint8_t>() + kept * mask_row);
      } else {
        archives_.read_mask(index, mask_buffer_.data());
        if (options_.normalize) {
          map_plane(mask_buffer_.data(), mask.data_ptr<int64_t>() + kept * mask_row, map, height, width,
                    [](uint8_t v) { return static_cast<int64_t>(v); });
        } else {
          map_plane(mask_buffer_.data(), mask.data_ptr<uint8_t>() + kept * mask_row, map, height, width,
                    [](uint8_t v) { return v; });
        }
      }
    }
    batch.indices.push_back(index);
    ++kept;
  }
  if (kept == 0) {
    // A batch whose tiles were all skipped keeps its shape.
    batch.image = at::empty({0, channels, height, width}, image_type);
    if (options_.load_masks) batch.mask = at::empty({0, height, width}, mask_type);
    return batch;
  }
  batch.image = kept == rows ? image : image.narrow(0, 0, kept);
  if (options_.load_masks) batch.mask = kept == rows ? mask : mask.narrow(0, 0, kept);
  return batch;
}

}  // namespace da::io
