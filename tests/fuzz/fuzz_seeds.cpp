// da_fuzz_seeds OUT_DIR [ARCHIVE.h5...]: writes each fuzz target's seed
// corpus under OUT_DIR/<target>/: tile archives from our writer (and the
// archives named, h5py's: h5py_seed_archives.py) as descriptions, conf/'s
// configs, a checkpoint, command lines from the README's examples and
// GeoTIFFs GDAL writes.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "archive_description.h"
#include "fuzz_seeds.h"
#include "io/tile_archive_writer.h"

namespace fs = std::filesystem;
using namespace da;

namespace {

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Small archives covering what the writer can write: pixel types, masks,
// metadata, band statistics, compression.
void write_archive_seeds(const fs::path& scratch, std::vector<fs::path>& archives) {
  struct Variant {
    const char* name;
    io::PixelType pixel_type;
    bool masks, meta;
    int deflate;
    bool shuffle;
  };
  const Variant variants[] = {{"uint8_masks", io::PixelType::kUint8, true, false, 0, false},
                              {"uint16_deflate_shuffle_meta", io::PixelType::kUint16, true, true, 4, true},
                              {"float32_deflate_unlabelled", io::PixelType::kFloat32, false, true, 1, false}};
  for (const Variant& v : variants) {
    io::TileArchiveLayout layout;
    layout.domain = v.name;
    layout.bands = {"red", "green", "nir"};
    layout.pixel_type = v.pixel_type;
    layout.height = 4;
    layout.width = 5;
    layout.with_masks = v.masks;
    if (v.masks) layout.classes = {"background", "building", "road"};
    layout.with_origin = layout.with_source_id = layout.with_geotransform = v.meta;
    if (v.meta) {
      layout.sources = {"scene_a.tif", "scene_b.tif"};
      layout.crs = "EPSG:32632";
    }
    layout.deflate_level = v.deflate;
    layout.shuffle = v.shuffle;
    const fs::path path = scratch / (std::string(v.name) + ".h5");
    io::TileArchiveWriter writer(path.string(), layout);
    const size_t pixels = 3 * 4 * 5, bytes = pixels * io::pixel_size(v.pixel_type);
    for (int tile = 0; tile < 3; ++tile) {
      std::vector<uint8_t> image(bytes);
      if (v.pixel_type == io::PixelType::kFloat32) {
        for (size_t i = 0; i < pixels; ++i) reinterpret_cast<float*>(image.data())[i] = 0.25f * (i + tile);
      } else {
        for (size_t i = 0; i < bytes; ++i) image[i] = static_cast<uint8_t>(i * 7 + tile);
      }
      std::vector<uint8_t> mask(4 * 5);
      for (size_t i = 0; i < mask.size(); ++i) mask[i] = i % 5 == 4 ? 255 : static_cast<uint8_t>((i + tile) % 3);
      io::TileMeta meta;
      meta.origin = {tile * 4, 0};
      meta.source_id = tile % 2;
      meta.geotransform = {500000.0, 0.5, 0.0, 5600000.0 - tile * 2.0, 0.0, -0.5};
      writer.append(image.data(), v.masks ? mask.data() : nullptr, meta);
    }
    if (v.meta) writer.set_band_stats({1, 2, 3}, {0.5, 0.5, 0.5});
    writer.close();
    archives.push_back(path);
  }
}

void write_config_seeds(const fs::path& out) {
  const fs::path conf = fs::path(DA_SOURCE_DIR) / "conf";
  for (const auto& entry : fs::directory_iterator(conf)) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string text = read_file(entry.path());
    write_file(out / entry.path().filename(), text);
    // The same config included from a short main file, with overrides.
    write_file(out / ("included_" + entry.path().filename().string()),
               "include: include.yaml\nrun:\n  name: seed\n" + std::string(1, '\0') + text + std::string(1, '\0') +
                   "trainer.max_epochs=2" + std::string(1, '\0') + "method.name=dann");
  }
}

void write_command_line_seeds(const fs::path& out) {
  const std::vector<std::vector<std::string>> lines = {
      {"\x00", "--config", "conf/run.yaml", "--set", "trainer.max_epochs=3", "--resume", "auto"},
      {"\x00", "train", "--config", "conf/demo.yaml", "--print-config"},
      {"\x00", "predict", "--checkpoint", "last.pt", "--input", "target_test.h5", "--output", "pred.h5",
       "--probabilities", "--batch-size", "8"},
      {"\x00", "predict", "--checkpoint", "last.pt", "--scene", "a.tif", "--output-dir", "out", "--window", "512",
       "--overlap", "64", "--tta", "d4", "--confidence"},
      {"\x00", "evaluate", "--checkpoint", "last.pt", "--input", "t*.h5", "--json", "m.json", "--domain", "source"},
      {"\x00", "export", "--checkpoint", "last.pt", "--output", "model.pt", "--tile", "256"},
      {"\x00", "--help-config"},
      {"\x01", "synth", "--out", "data", "--tiles", "8", "--size", "32"},
      {"\x01", "inspect", "--verify", "a.h5", "b.h5"},
      {"\x01", "make", "--image", "a.tif", "--labels", "a_labels.tif", "--classes", "ground,building", "--out",
       "t.h5", "--tile-size", "256", "--stride", "128", "--shard-tiles", "100", "--threads", "2"},
      {"\x01", "make", "--help"},
  };
  int n = 0;
  for (const auto& line : lines) {
    std::string bytes(1, line[0][0]);
    for (size_t i = 1; i < line.size(); ++i) bytes += line[i] + (i + 1 < line.size() ? std::string(1, '\0') : "");
    write_file(out / ("line_" + std::to_string(n++)), bytes);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: da_fuzz_seeds OUT_DIR [ARCHIVE.h5...]\n";
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* target : {"tile_archive", "config", "checkpoint", "command_line", "raster"}) {
    fs::create_directories(out / target);
  }
  const fs::path scratch = out / "archives";
  fs::create_directories(scratch);
  std::vector<fs::path> archives;
  write_archive_seeds(scratch, archives);
  for (int i = 2; i < argc; ++i) archives.push_back(argv[i]);
  for (const fs::path& archive : archives) {
    write_file(out / "tile_archive" / archive.stem(), fuzz::describe_archive(archive.string()));
  }
  write_config_seeds(out / "config");
  fuzz::write_checkpoint_seed((out / "checkpoint" / "seed.pt").string());
  write_command_line_seeds(out / "command_line");
#ifdef DA_WITH_GDAL
  fuzz::write_raster_seeds((out / "raster").string());
#endif
  return 0;
}
