// Synthetic scenes and the domain shift between "source" and "target".
//
// Every tile is a class map rendered through a domain's appearance model:
//
//   scene     background field (0), water blobs (3: thresholded sum of
//             Gaussians), roads (2: straight lines 2-4 px wide) and buildings
//             (1: axis-aligned rectangles), painted in that order. Both
//             domains draw scenes from the same generator, except that the
//             target has fewer buildings and more roads (a mild label shift).
//   material  each class has a linear reflectance per band, multiplied by a
//             value-noise texture (random grid, bilinearly interpolated).
//   sensor    reflectance -> channel mixing matrix -> gamma -> 8-bit, then
//             optional 3x3 blur and Gaussian sensor noise.
//
// The shift is class-conditional, not a constant offset:
//   - the target's materials differ per class (dry brown fields instead of
//     green vegetation, red tile roofs instead of grey concrete, light
//     concrete roads, greenish water), so the per-class colours move in
//     different directions;
//   - the target sensor mixes channels (cross-talk) and applies gamma 0.75,
//     a non-linear response;
//   - target textures have a finer grain (3 px noise cells instead of 8);
//   - the target is blurred (3x3 binomial) and noisier (sigma 6 DN vs 2).
// A classifier fit on source colours therefore loses accuracy on the target
// while each target class stays separable, which is what adaptation needs.
//
// Randomness comes from std::mt19937_64 (its output sequence is fixed by the
// standard) with our own uniform/normal transforms, so a seed gives the same
// bytes with every standard library. Each (file, tile) pair has its own
// stream, derived from the seed with splitmix64.
#include "synth.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>

#include "command_line/checks.h"
#include "io/tile_archive_writer.h"
#include "tile_stats.h"

namespace da::tiles {
namespace {

constexpr int kClasses = 4;
constexpr uint8_t kBackground = 0, kBuilding = 1, kRoad = 2, kWater = 3;
using Rgb = std::array<double, 3>;

class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  int integer(int low, int high) { return low + static_cast<int>(uniform() * (high - low + 1)); }  // in [low, high]
  double normal() {  // Box-Muller; 1 - u keeps the logarithm finite
    return std::sqrt(-2.0 * std::log(1.0 - uniform())) * std::cos(2.0 * M_PI * uniform());
  }

 private:
  std::mt19937_64 engine_;
};

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Domain {
  const char* name;
  std::array<Rgb, kClasses> reflectance;  // linear, per class
  std::array<Rgb, 3> mixing;              // sensor channel mixing, rows = output band
  double gamma;
  int texture_cell;  // value-noise grid spacing in pixels
  double texture_amplitude;
  bool blur;
  double noise_sigma;  // in 8-bit units
  int min_buildings, max_buildings;
  int min_roads, max_roads;
};

// Reflectance rows: background, building, road, water (red, green, blue).
// clang-format off
const Domain kSource{"source",
                     {{{0.20, 0.36, 0.14}, {0.55, 0.53, 0.50}, {0.28, 0.28, 0.30}, {0.07, 0.14, 0.32}}},
                     {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}},  // no cross-talk
                     /*gamma=*/1.0, /*texture_cell=*/8, /*texture_amplitude=*/0.15, /*blur=*/false,
                     /*noise_sigma=*/2.0, /*buildings=*/2, 5, /*roads=*/0, 2};
const Domain kTarget{"target",
                     {{{0.42, 0.34, 0.18}, {0.62, 0.30, 0.22}, {0.50, 0.48, 0.44}, {0.10, 0.24, 0.20}}},
                     {{{0.80, 0.15, 0.05}, {0.12, 0.78, 0.10}, {0.05, 0.20, 0.75}}},
                     /*gamma=*/0.75, /*texture_cell=*/3, /*texture_amplitude=*/0.25, /*blur=*/true,
                     /*noise_sigma=*/6.0, /*buildings=*/1, 3, /*roads=*/1, 3};
// clang-format on

// Class map [size, size] of one scene.
std::vector<uint8_t> make_scene(const Domain& domain, int size, Random& random) {
  std::vector<uint8_t> map(size * size, kBackground);
  // Water: 0-2 blobs, each a few Gaussians summed and thresholded.
  const int blobs = random.integer(0, 2);
  for (int b = 0; b < blobs; ++b) {
    std::vector<std::array<double, 3>> bumps(random.integer(2, 4));
    const double cx = random.uniform(0, size), cy = random.uniform(0, size);
    for (auto& bump : bumps) {
      bump = {cx + random.uniform(-size / 6.0, size / 6.0), cy + random.uniform(-size / 6.0, size / 6.0),
              random.uniform(size / 12.0, size / 6.0)};
    }
    for (int y = 0; y < size; ++y) {
      for (int x = 0; x < size; ++x) {
        double field = 0;
        for (const auto& [bx, by, radius] : bumps) {
          field += std::exp(-((x - bx) * (x - bx) + (y - by) * (y - by)) / (2 * radius * radius));
        }
        if (field > 0.6) map[y * size + x] = kWater;
      }
    }
  }
  // Roads: lines through a random point at a random angle.
  const int roads = random.integer(domain.min_roads, domain.max_roads);
  for (int r = 0; r < roads; ++r) {
    const double px = random.uniform(0, size), py = random.uniform(0, size);
    const double angle = random.uniform(0, M_PI);
    const double half_width = random.uniform(1.0, 2.0);
    const double nx = -std::sin(angle), ny = std::cos(angle);
    for (int y = 0; y < size; ++y) {
      for (int x = 0; x < size; ++x) {
        if (std::abs((x - px) * nx + (y - py) * ny) <= half_width) map[y * size + x] = kRoad;
      }
    }
  }
  // Buildings: rectangles, painted last so they sit on top.
  const int buildings = random.integer(domain.min_buildings, domain.max_buildings);
  for (int b = 0; b < buildings; ++b) {
    const int w = random.integer(size / 10 + 2, size / 4 + 2), h = random.integer(size / 10 + 2, size / 4 + 2);
    const int x0 = random.integer(0, size - w), y0 = random.integer(0, size - h);
    for (int y = y0; y < y0 + h; ++y) std::fill_n(&map[y * size + x0], w, kBuilding);
  }
  return map;
}

// Value noise in [-1, 1]: random values on a grid every `cell` pixels,
// bilinearly interpolated.
std::vector<double> value_noise(int size, int cell, Random& random) {
  const int grid = size / cell + 2;
  std::vector<double> nodes(grid * grid);
  for (double& node : nodes) node = random.uniform(-1, 1);
  std::vector<double> noise(size * size);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double fx = static_cast<double>(x) / cell, fy = static_cast<double>(y) / cell;
      const int gx = static_cast<int>(fx), gy = static_cast<int>(fy);
      const double tx = fx - gx, ty = fy - gy;
      const double top = nodes[gy * grid + gx] * (1 - tx) + nodes[gy * grid + gx + 1] * tx;
      const double bottom = nodes[(gy + 1) * grid + gx] * (1 - tx) + nodes[(gy + 1) * grid + gx + 1] * tx;
      noise[y * size + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return noise;
}

// 3x3 binomial blur of one band, edges clamped.
void blur_band(double* band, int size) {
  const std::vector<double> copy(band, band + size * size);
  const double weights[3] = {0.25, 0.5, 0.25};
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      double sum = 0;
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          const int sy = std::clamp(y + dy, 0, size - 1), sx = std::clamp(x + dx, 0, size - 1);
          sum += weights[dy + 1] * weights[dx + 1] * copy[sy * size + sx];
        }
      }
      band[y * size + x] = sum;
    }
  }
}

// Renders the class map through the domain's materials and sensor: [3, size, size] uint8.
std::vector<uint8_t> render(const Domain& domain, const std::vector<uint8_t>& map, int size, Random& random) {
  const std::vector<double> texture = value_noise(size, domain.texture_cell, random);
  const double illumination = random.uniform(0.9, 1.1);
  const int pixels = size * size;
  std::vector<double> bands(3 * pixels);
  for (int i = 0; i < pixels; ++i) {
    const Rgb& material = domain.reflectance[map[i]];
    const double shade = illumination * (1 + domain.texture_amplitude * texture[i]);
    for (int out = 0; out < 3; ++out) {
      double mixed = 0;
      for (int in = 0; in < 3; ++in) mixed += domain.mixing[out][in] * material[in];
      bands[out * pixels + i] = 255.0 * std::pow(std::clamp(mixed * shade, 0.0, 1.0), domain.gamma);
    }
  }
  if (domain.blur) {
    for (int band = 0; band < 3; ++band) blur_band(&bands[band * pixels], size);
  }
  std::vector<uint8_t> image(3 * pixels);
  for (int i = 0; i < 3 * pixels; ++i) {
    image[i] =
        static_cast<uint8_t>(std::lround(std::clamp(bands[i] + domain.noise_sigma * random.normal(), 0.0, 255.0)));
  }
  return image;
}

void write_split(const std::string& path, const Domain& domain, int tiles, int size, uint64_t stream_seed) {
  io::TileArchiveLayout layout;
  layout.domain = domain.name;
  layout.bands = {"red", "green", "blue"};
  layout.height = layout.width = size;
  layout.with_masks = true;
  layout.classes = {"background", "building", "road", "water"};
  layout.deflate_level = 4;
  io::TileArchiveWriter writer(path, layout);
  BandAccumulator stats(3);
  for (int t = 0; t < tiles; ++t) {
    Random random(splitmix64(stream_seed ^ splitmix64(static_cast<uint64_t>(t))));
    const std::vector<uint8_t> mask = make_scene(domain, size, random);
    const std::vector<uint8_t> image = render(domain, mask, size, random);
    writer.append(image.data(), mask.data());
    stats.add(image.data(), io::PixelType::kUint8, static_cast<int64_t>(size) * size);
  }
  writer.set_band_stats(stats.mean(), stats.std());
  writer.close();
  std::cout << path << ": " << tiles << " tiles of " << size << "x" << size << " (" << domain.name << ")\n";
}

}  // namespace

CLI::App* add_synth_command(CLI::App& app, SynthOptions& options) {
  using command_line::integer_in;
  CLI::App* command = app.add_subcommand("synth", "A small labelled two-domain data set for demos and tests: "
                                                  "DIR/{source,target}_{train,val}.h5");
  command->add_option("--out", options.out, "output directory")->type_name("DIR")->required();
  command->add_option("--tiles", options.tiles, "training tiles per domain")->check(integer_in(1, 1000000));
  command->add_option("--val-tiles", options.val_tiles, "validation tiles per domain")->check(integer_in(1, 1000000));
  command->add_option("--size", options.size, "tile size in pixels")->check(integer_in(16, 4096));
  command->add_option("--seed", options.seed, "random seed (the same seed gives the same bytes)")
      ->check(command_line::integer_at_least(0));
  return command;
}

int run_synth(const SynthOptions& options) {
  const std::string& out = options.out;
  const int tiles = options.tiles;
  const int val_tiles = options.val_tiles;
  const int size = options.size;
  const uint64_t seed = options.seed;

  std::error_code error;
  std::filesystem::create_directories(out, error);
  if (error) throw std::runtime_error("cannot create directory " + out + ": " + error.message());
  // Each split gets its own stream so that changing one split's count leaves the others' tiles unchanged.
  const uint64_t base = splitmix64(seed);
  write_split(out + "/source_train.h5", kSource, tiles, size, splitmix64(base + 1));
  write_split(out + "/source_val.h5", kSource, val_tiles, size, splitmix64(base + 2));
  write_split(out + "/target_train.h5", kTarget, tiles, size, splitmix64(base + 3));
  write_split(out + "/target_val.h5", kTarget, val_tiles, size, splitmix64(base + 4));
  return 0;
}

}  // namespace da::tiles
