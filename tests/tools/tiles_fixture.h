// Shared by the da_tiles tests (synth, make, the command line, inspect):
// da_tiles run as a process, a temporary directory removed at the end of its
// scope, every tile of an archive read back, and a synthetic data set made
// by da_tiles synth.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/tile_archive.h"
#include "support/process.h"

namespace da::test {

// da_tiles with `args` as a process (at most 240 s).
ProcessResult da_tiles(const std::vector<std::string>& args);

class TempDir {
 public:
  TempDir() : path_(make_temp_dir("da_tiles_test")) {}
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Every tile's image bytes, in archive order.
std::vector<uint8_t> all_images(const io::TileArchive& archive);

// Every tile's mask bytes, in archive order.
std::vector<uint8_t> all_masks(const io::TileArchive& archive);

// Synthetic data set in `dir`: 40 train and 12 val tiles per domain, 32x32.
void synth(const std::string& dir, int seed);

}  // namespace da::test
