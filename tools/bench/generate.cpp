// `generate`: one archive of image-like tiles through io::TileArchiveWriter.
//
// Tiles are neither noise (incompressible) nor flat (trivially compressible):
// per band a smooth field (a few low-frequency separable waves), 8-24
// "objects" (rectangles with their own level) and sensor-like noise, so
// deflate finds what it finds on aerial imagery (here about 1.3-2x).
// uint8 spans 0-255; uint16 holds 12-bit values (0-4095) like most
// multispectral sensors. Deterministic in --seed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/tile_archive_writer.h"
#include "tools/bench/bench_common.h"

namespace da::bench {
namespace {

struct Xorshift {
  uint64_t state;
  uint64_t next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1DULL;
  }
  // Roughly standard normal: the sum of four 16-bit uniforms, centred and scaled.
  float normal() {
    const uint64_t r = next();
    const double sum = double(r & 0xFFFF) + double((r >> 16) & 0xFFFF) + double((r >> 32) & 0xFFFF) + double(r >> 48);
    return static_cast<float>((sum - 2.0 * 65535.0) / (65535.0 * std::sqrt(4.0 / 12.0)));
  }
};

// One band of one tile as float values in [0, 1] units of the sensor range.
void make_band(std::mt19937_64& rng, Xorshift& noise, int64_t size, float noise_sigma, std::vector<float>& out) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double pi = 3.14159265358979323846;
  const float base = static_cast<float>(0.25 + 0.4 * unit(rng));
  std::fill(out.begin(), out.end(), base);
  std::vector<float> sx(size), sy(size);
  for (int wave = 0; wave < 4; ++wave) {
    const double fx = 0.5 + 5.5 * unit(rng), fy = 0.5 + 5.5 * unit(rng);
    const double px = 2 * pi * unit(rng), py = 2 * pi * unit(rng);
    const float amplitude = static_cast<float>(0.04 + 0.08 * unit(rng));
    for (int64_t i = 0; i < size; ++i) {
      sx[i] = static_cast<float>(std::sin(2 * pi * fx * i / size + px));
      sy[i] = static_cast<float>(std::sin(2 * pi * fy * i / size + py));
    }
    for (int64_t y = 0; y < size; ++y) {
      float* row = out.data() + y * size;
      const float a = amplitude * sy[y];
      for (int64_t x = 0; x < size; ++x) row[x] += a * sx[x];
    }
  }
  const int objects = 8 + static_cast<int>(rng() % 17);
  for (int o = 0; o < objects; ++o) {
    const int64_t h = 8 + static_cast<int64_t>(rng() % 72), w = 8 + static_cast<int64_t>(rng() % 72);
    const int64_t y0 = static_cast<int64_t>(rng() % size), x0 = static_cast<int64_t>(rng() % size);
    const float level = static_cast<float>(0.15 + 0.7 * unit(rng));
    for (int64_t y = y0; y < std::min(size, y0 + h); ++y) {
      float* row = out.data() + y * size;
      for (int64_t x = x0; x < std::min(size, x0 + w); ++x) row[x] = 0.5f * row[x] + 0.5f * level;
    }
  }
  for (float& v : out) v += noise_sigma * noise.normal();
}

}  // namespace

int run_generate(const GenerateOptions& options) {
  const std::string& out = options.out;
  const int64_t bands = options.bands;
  const bool u16 = options.dtype == "uint16";
  const int64_t size = options.size;
  const int64_t tiles = options.tiles;
  const int deflate = options.deflate;
  const uint64_t seed = options.seed;

  io::TileArchiveLayout layout;
  layout.domain = "bench";
  const char* names[] = {"red", "green", "blue", "nir"};
  for (int64_t c = 0; c < bands; ++c) layout.bands.push_back(c < 4 ? names[c] : "band" + std::to_string(c));
  layout.pixel_type = u16 ? io::PixelType::kUint16 : io::PixelType::kUint8;
  layout.height = layout.width = size;
  layout.deflate_level = deflate;
  layout.shuffle = deflate > 0 && u16;  // as `da_tiles make` does

  const double range = u16 ? 4095.0 : 255.0;
  const float sigma = u16 ? 0.008f : 0.012f;  // ~33 DN at 12 bit, ~3 DN at 8 bit
  std::mt19937_64 rng(seed);
  Xorshift noise{seed * 0x9E3779B97F4A7C15ULL + 1};
  std::vector<float> band(size * size);
  std::vector<uint8_t> image8(u16 ? 0 : bands * size * size);
  std::vector<uint16_t> image16(u16 ? bands * size * size : 0);
  int64_t checksum = 0;  // sum of band 0's raw values over all tiles
  io::TileArchiveWriter writer(out, layout);
  for (int64_t t = 0; t < tiles; ++t) {
    for (int64_t c = 0; c < bands; ++c) {
      make_band(rng, noise, size, sigma, band);
      for (int64_t i = 0; i < size * size; ++i) {
        const double v = std::clamp(std::round(band[i] * range), 0.0, range);
        if (u16) {
          image16[c * size * size + i] = static_cast<uint16_t>(v);
        } else {
          image8[c * size * size + i] = static_cast<uint8_t>(v);
        }
        if (c == 0) checksum += static_cast<int64_t>(v);
      }
    }
    writer.append(u16 ? static_cast<const void*>(image16.data()) : static_cast<const void*>(image8.data()));
  }
  writer.close();
  std::printf(
      "RESULT kind=generate file=%s tiles=%lld bands=%lld dtype=%s size=%lld deflate=%d shuffle=%d checksum=%lld\n",
      out.c_str(), static_cast<long long>(tiles), static_cast<long long>(bands), options.dtype.c_str(),
      static_cast<long long>(size), deflate, layout.shuffle ? 1 : 0, static_cast<long long>(checksum));
  return 0;
}

}  // namespace da::bench
