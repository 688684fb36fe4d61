#include "tools/tiles_fixture.h"

#include <gtest/gtest.h>

namespace da::test {

ProcessResult da_tiles(const std::vector<std::string>& args) {
  return run_process(binary_path("tools/da_tiles/da_tiles"), args, {}, 240);
}

std::vector<uint8_t> all_images(const io::TileArchive& archive) {
  std::vector<uint8_t> bytes(archive.image_bytes() * archive.size());
  for (int64_t t = 0; t < archive.size(); ++t) archive.read_image(t, bytes.data() + t * archive.image_bytes());
  return bytes;
}

std::vector<uint8_t> all_masks(const io::TileArchive& archive) {
  std::vector<uint8_t> bytes(archive.mask_bytes() * archive.size());
  for (int64_t t = 0; t < archive.size(); ++t) archive.read_mask(t, bytes.data() + t * archive.mask_bytes());
  return bytes;
}

void synth(const std::string& dir, int seed) {
  const ProcessResult result = da_tiles(
      {"synth", "--out", dir, "--tiles", "40", "--val-tiles", "12", "--size", "32", "--seed", std::to_string(seed)});
  ASSERT_EQ(result.exit_code, 0) << result.err;
}

}  // namespace da::test
