// da_tiles' command line: every command answers --help with its own
// options, and usage errors are one line on stderr with exit status 2.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "support/process.h"
#include "tools/tiles_fixture.h"

namespace {

using da::test::da_tiles;
using da::test::ProcessResult;
using da::test::TempDir;

// Every command answers --help on stdout, with exit status 0, listing its own
// options and not another command's.
TEST(DaTilesCommandLine, EveryCommandAnswersHelpWithItsOptions) {
  const std::map<std::string, std::vector<std::string>> options = {
      {"synth", {"--out", "--tiles", "--val-tiles", "--size", "--seed"}},
      {"inspect", {"FILE", "--verify"}},
      {"make",
       {"--image", "--labels", "--out", "--tile-size", "--stride", "--max-nodata", "--max-ignore", "--deflate",
        "--domain", "--classes", "--bands", "--ignore-index"}}};
  for (const auto& [command, names] : options) {
    const ProcessResult result = da_tiles({command, "--help"});
    EXPECT_EQ(result.exit_code, 0) << command << ": " << result.err;
    EXPECT_EQ(result.err, "") << command;
    EXPECT_NE(result.out.find("Usage: da_tiles " + command + " [OPTIONS]"), std::string::npos) << result.out;
    for (const std::string& name : names) {
      EXPECT_NE(result.out.find("  " + name + " "), std::string::npos) << command << " " << name << "\n" << result.out;
    }
  }
  EXPECT_EQ(da_tiles({"inspect", "--help"}).out.find("--tile-size"), std::string::npos);
  // Without a command: every command with its options.
  const ProcessResult all = da_tiles({"--help"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  for (const char* text : {"synth", "inspect", "make", "--tile-size", "--verify", "--val-tiles"}) {
    EXPECT_NE(all.out.find(text), std::string::npos) << text << "\n" << all.out;
  }
}

// Usage errors: exit status 2 and one line on stderr, nothing on stdout.
TEST(DaTilesCommandLine, UsageErrorsAreOneLineWithStatusTwo) {
  TempDir dir;
  const auto expect_usage = [](const std::vector<std::string>& args, const std::string& message) {
    const ProcessResult result = da_tiles(args);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_EQ(result.err, "da_tiles: " + message + "\n");
    EXPECT_EQ(result.out, "");
  };
  expect_usage({"synth", "--outt", dir.path()},
               "unknown option '--outt' for synth, did you mean '--out'? (see --help)");
  expect_usage({"inspect", "--verfy", "a.h5"},
               "unknown option '--verfy' for inspect, did you mean '--verify'? (see --help)");
  expect_usage({"make", "--image", "a.tif", "--out", "a.h5", "--tile-size", "16", "--strid", "8"},
               "unknown option '--strid' for make, did you mean '--stride'? (see --help)");
  expect_usage({"synht", "--out", dir.path()}, "unknown command 'synht', did you mean 'synth'?");
  expect_usage({"frobnicate"}, "unknown command 'frobnicate'; commands are 'synth', 'inspect' or 'make'");
  expect_usage({}, "a command is required: 'synth', 'inspect' or 'make' (see --help)");
  expect_usage({"synth", "--out", dir.path(), "--tiles", "many"},
               "--tiles: expected an integer in [1, 1000000], got 'many'");
  expect_usage({"synth", "--out", dir.path(), "--size", "8"}, "--size: expected an integer in [16, 4096], got '8'");
  expect_usage({"make", "--image", "a.tif", "--out", "a.h5", "--tile-size", "16", "--max-nodata", "1.5"},
               "--max-nodata: expected a number in [0, 1], got '1.5'");
  expect_usage({"synth", "--out"}, "--out needs a value");
  expect_usage({"synth", "--out", dir.path(), "--out", dir.path()}, "--out given more than once");
  expect_usage({"inspect", "--verify=yes", "a.h5"}, "--verify takes no value");
  expect_usage({"synth", "--out", dir.path(), "extra"}, "unexpected argument 'extra' for synth (see --help)");
  expect_usage({"inspect"}, "FILE is required");
  // Checks after parsing name the command, as runtime errors do.
  const ProcessResult result =
      da_tiles({"make", "--image", "a.tif", "--labels", "l.tif", "--out", "a.h5", "--tile-size", "16"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(result.err, "da_tiles make: --labels needs --classes\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "source_train.h5"));
}

}  // namespace
