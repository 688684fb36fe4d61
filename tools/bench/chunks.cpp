// `chunks`: is H5Dread_chunk (the stored, still compressed chunk) plus our own
// inflate and unshuffle faster than H5Dread, which runs HDF5's filter
// pipeline? The Debian HDF5 is built thread-safe: one global lock around every
// API call, so H5Dread's inflate never runs on two threads at once, while a
// direct chunk read holds the lock only for the copy of the stored bytes.
//
// Each mode decodes every tile of /images into a per-thread buffer with 1..T
// threads (thread t takes tiles t, t+T, ...; each thread opens the file
// itself). Before timing, every tile decoded by each direct mode is compared
// byte for byte with H5Dread's.
#include <hdf5.h>
#include <libdeflate.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "io/tile_archive.h"
#include "tools/bench/bench_common.h"

namespace da::bench {
namespace {

enum class Mode { kH5Dread, kDirectZlib, kDirectLibdeflate, kTileArchive };

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kH5Dread:
      return "h5dread";
    case Mode::kDirectZlib:
      return "direct_zlib";
    case Mode::kDirectLibdeflate:
      return "direct_libdeflate";
    case Mode::kTileArchive:
      return "tile_archive";
  }
  return "?";
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

// One thread's view of /images: its own file and dataset handles and buffers.
class ChunkReader {
 public:
  explicit ChunkReader(const std::string& path) : archive_(path) {
    file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    check(file_ >= 0, path + ": cannot open");
    images_ = H5Dopen2(file_, "images", H5P_DEFAULT);
    check(images_ >= 0, path + ": cannot open /images");
    const hid_t space = H5Dget_space(images_);
    check(H5Sget_simple_extent_ndims(space) == 4, path + ": /images is not [N, C, H, W]");
    H5Sget_simple_extent_dims(space, dims_, nullptr);
    H5Sclose(space);
    const hid_t type = H5Dget_type(images_);
    element_ = H5Tget_size(type);
    memory_type_ = element_ == 1 ? H5T_NATIVE_UINT8 : element_ == 2 ? H5T_NATIVE_UINT16 : H5T_NATIVE_FLOAT;
    H5Tclose(type);
    const hid_t create = H5Dget_create_plist(images_);
    hsize_t chunk[4] = {0, 0, 0, 0};
    check(H5Pget_chunk(create, 4, chunk) == 4 && chunk[0] == 1 && chunk[1] == dims_[1] && chunk[2] == dims_[2] &&
              chunk[3] == dims_[3],
          path + ": /images is not chunked one tile per chunk");
    const int filters = H5Pget_nfilters(create);
    for (int f = 0; f < filters; ++f) {
      unsigned flags = 0, config = 0;
      size_t values = 0;
      const H5Z_filter_t id =
          H5Pget_filter2(create, static_cast<unsigned>(f), &flags, &values, nullptr, 0, nullptr, &config);
      if (id == H5Z_FILTER_DEFLATE) {
        deflate_bit_ = 1u << f;
      } else if (id == H5Z_FILTER_SHUFFLE) {
        shuffle_bit_ = 1u << f;
      } else {
        throw std::runtime_error(path + ": /images has a filter other than deflate and shuffle");
      }
    }
    H5Pclose(create);
    tile_bytes_ = static_cast<size_t>(dims_[1] * dims_[2] * dims_[3]) * element_;
    stored_.resize(tile_bytes_ + 1024);
    inflated_.resize(tile_bytes_);
    decompressor_ = libdeflate_alloc_decompressor();
  }
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;
  ~ChunkReader() {
    if (decompressor_ != nullptr) libdeflate_free_decompressor(decompressor_);
    H5Dclose(images_);
    H5Fclose(file_);
  }

  int64_t tiles() const { return static_cast<int64_t>(dims_[0]); }
  size_t tile_bytes() const { return tile_bytes_; }
  bool compressed() const { return deflate_bit_ != 0; }

  // Tile `index` decoded into `out` (tile_bytes()).
  void read(Mode mode, int64_t index, void* out) {
    if (mode == Mode::kTileArchive) {
      archive_.read_image(index, out);
      return;
    }
    if (mode == Mode::kH5Dread) {
      hsize_t start[4] = {static_cast<hsize_t>(index), 0, 0, 0};
      hsize_t count[4] = {1, dims_[1], dims_[2], dims_[3]};
      const hid_t file_space = H5Dget_space(images_);
      const hid_t memory_space = H5Screate_simple(4, count, nullptr);
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr);
      const herr_t status = H5Dread(images_, memory_type_, memory_space, file_space, H5P_DEFAULT, out);
      H5Sclose(memory_space);
      H5Sclose(file_space);
      check(status >= 0, "H5Dread of tile " + std::to_string(index) + " failed");
      return;
    }
    const hsize_t offset[4] = {static_cast<hsize_t>(index), 0, 0, 0};
    hsize_t stored = 0;
    check(H5Dget_chunk_storage_size(images_, offset, &stored) >= 0, "chunk size of tile " + std::to_string(index));
    check(stored > 0, "tile " + std::to_string(index) + " was never written (fill value)");
    if (stored > stored_.size()) stored_.resize(stored);
    uint32_t skipped = 0;
    check(H5Dread_chunk(images_, H5P_DEFAULT, offset, &skipped, stored_.data()) >= 0,
          "H5Dread_chunk of tile " + std::to_string(index) + " failed");
    const bool inflate = deflate_bit_ != 0 && (skipped & deflate_bit_) == 0;
    const bool unshuffle = shuffle_bit_ != 0 && (skipped & shuffle_bit_) == 0 && element_ > 1;
    unsigned char* target = unshuffle ? inflated_.data() : static_cast<unsigned char*>(out);
    if (inflate) {
      if (mode == Mode::kDirectZlib) {
        uLongf length = static_cast<uLongf>(tile_bytes_);
        check(uncompress(target, &length, stored_.data(), static_cast<uLong>(stored)) == Z_OK && length == tile_bytes_,
              "inflate of tile " + std::to_string(index) + " failed");
      } else {
        size_t length = 0;
        check(libdeflate_zlib_decompress(decompressor_, stored_.data(), stored, target, tile_bytes_, &length) ==
                      LIBDEFLATE_SUCCESS &&
                  length == tile_bytes_,
              "libdeflate of tile " + std::to_string(index) + " failed");
      }
    } else {
      check(stored == tile_bytes_, "unfiltered chunk of tile " + std::to_string(index) + " has the wrong size");
      std::memcpy(target, stored_.data(), tile_bytes_);
    }
    if (unshuffle) {  // byte b of element i was stored at b * n + i
      const size_t n = tile_bytes_ / element_;
      auto* bytes = static_cast<unsigned char*>(out);
      for (size_t b = 0; b < element_; ++b) {
        const unsigned char* plane = inflated_.data() + b * n;
        for (size_t i = 0; i < n; ++i) bytes[i * element_ + b] = plane[i];
      }
    }
  }

 private:
  io::TileArchive archive_;
  hid_t file_ = H5I_INVALID_HID;
  hid_t images_ = H5I_INVALID_HID;
  hsize_t dims_[4] = {0, 0, 0, 0};
  size_t element_ = 1;
  hid_t memory_type_ = H5I_INVALID_HID;
  unsigned deflate_bit_ = 0;
  unsigned shuffle_bit_ = 0;
  size_t tile_bytes_ = 0;
  std::vector<unsigned char> stored_;
  std::vector<unsigned char> inflated_;
  libdeflate_decompressor* decompressor_ = nullptr;
};

}  // namespace

int run_chunks(const ChunksOptions& options) {
  const std::string& path = options.file;
  const int max_threads = options.threads;
  const int repeat = options.repeat;
  const std::vector<Mode> modes{Mode::kH5Dread, Mode::kDirectZlib, Mode::kDirectLibdeflate, Mode::kTileArchive};

  // Value check: every direct mode decodes every tile exactly as H5Dread does.
  {
    ChunkReader reader(path);
    std::vector<unsigned char> expected(reader.tile_bytes()), got(reader.tile_bytes());
    for (int64_t t = 0; t < reader.tiles(); ++t) {
      reader.read(Mode::kH5Dread, t, expected.data());
      for (size_t m = 1; m < modes.size(); ++m) {
        reader.read(modes[m], t, got.data());
        check(std::memcmp(expected.data(), got.data(), got.size()) == 0,
              std::string(mode_name(modes[m])) + " differs from H5Dread at tile " + std::to_string(t));
      }
    }
    std::printf("RESULT kind=chunks_verify file=%s tiles=%lld identical=1\n", path.c_str(),
                static_cast<long long>(reader.tiles()));
  }

  for (int threads = 1; threads <= max_threads; ++threads) {
    std::vector<std::unique_ptr<ChunkReader>> readers;
    for (int t = 0; t < threads; ++t) readers.push_back(std::make_unique<ChunkReader>(path));
    const int64_t tiles = readers[0]->tiles();
    const size_t tile_bytes = readers[0]->tile_bytes();
    for (const Mode mode : modes) {
      Timings timings;
      for (int r = 0; r < repeat; ++r) {
        std::vector<std::thread> pool;
        const double start = now_s(), cpu_start = cpu_s();
        for (int t = 0; t < threads; ++t) {
          pool.emplace_back([&, t] {
            std::vector<unsigned char> out(tile_bytes);
            for (int64_t i = t; i < tiles; i += threads) readers[t]->read(mode, i, out.data());
          });
        }
        for (std::thread& thread : pool) thread.join();
        timings.seconds.push_back(now_s() - start);
        timings.cpu.push_back(cpu_s() - cpu_start);
      }
      std::printf(
          "RESULT kind=chunks file=%s mode=%s threads=%d tiles=%lld repeat=%d best_s=%.4f median_s=%.4f "
          "tiles_per_s=%.1f mb_per_s=%.1f median_tiles_per_s=%.1f cpu_per_wall=%.2f\n",
          path.c_str(), mode_name(mode), threads, static_cast<long long>(tiles), repeat, timings.best(),
          timings.median(), tiles / timings.best(), tiles * tile_bytes / kMiB / timings.best(),
          tiles / timings.median(), timings.cpu_per_wall());
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace da::bench
