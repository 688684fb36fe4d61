// Every input the fuzzers found (tests/fuzz/regressions/<target>/<name>)
// replayed through its target: it must now be accepted or refused with the
// clear error in <name>.expect (a substring of the message; "accepted" for
// an input that is fine). Runs in every build, sanitizers or not.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "fuzz_targets.h"
#include "io/hdf5_util.h"
#include "support/process.h"

namespace da {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

const std::map<std::string, fuzz::FuzzTarget>& targets() {
  static const std::map<std::string, fuzz::FuzzTarget> all = {
      {"tile_archive", fuzz::fuzz_tile_archive}, {"config", fuzz::fuzz_config},
      {"checkpoint", fuzz::fuzz_checkpoint},     {"command_line", fuzz::fuzz_command_line},
#ifdef DA_WITH_GDAL
      {"raster", fuzz::fuzz_raster},
#endif
  };
  return all;
}

TEST(FuzzRegressions, EveryFoundInputIsAcceptedOrRefusedClearly) {
  io::silence_hdf5_errors();
  const fs::path root = test::source_path("tests/fuzz/regressions");
  int replayed = 0;
  for (const auto& [name, target] : targets()) {
    const fs::path dir = root / name;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() == ".expect") continue;
      const fs::path expect_path = entry.path().string() + ".expect";
      ASSERT_TRUE(fs::exists(expect_path)) << entry.path() << " has no .expect";
      const std::string expected = trimmed(read_bytes(expect_path));
      const std::string input = read_bytes(entry.path());
      SCOPED_TRACE(entry.path().string());
      fuzz::FuzzOutcome outcome;
      try {
        outcome = target(reinterpret_cast<const uint8_t*>(input.data()), input.size());
      } catch (const std::exception& e) {
        FAIL() << "unclear error: " << e.what();
      }
      if (expected == "accepted") {
        EXPECT_FALSE(outcome.refused) << outcome.error;
      } else {
        EXPECT_TRUE(outcome.refused);
        EXPECT_NE(outcome.error.find(expected), std::string::npos) << outcome.error;
      }
      ++replayed;
    }
  }
  EXPECT_GT(replayed, 0) << "no regression inputs under " << root;
}

}  // namespace
}  // namespace da
