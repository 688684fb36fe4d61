// Logging: the rank in every line, rank 0 informs and other ranks only warn
// on the console, every rank writes its own file in the run directory.
#include <gtest/gtest.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "config/loader.h"
#include "log/logging.h"
#include "run/run_directory.h"
#include "support/process.h"

namespace da {
namespace {

namespace fs = std::filesystem;

TEST(Logging, RankFileHasRankInEveryLine) {
  const std::string dir = test::make_temp_dir("da-log");
  log::init(1, "info");
  log::add_run_file(dir, 1);
  spdlog::debug("hidden at info level");
  spdlog::info("step {}", 3);
  spdlog::warn("careful");
  log::flush();
  const std::string text = test::read_text(dir + "/logs/rank-1.log");
  EXPECT_NE(text.find("[rank 1] [info] step 3"), std::string::npos) << text;
  EXPECT_NE(text.find("[rank 1] [warning] careful"), std::string::npos) << text;
  EXPECT_EQ(text.find("hidden"), std::string::npos) << text;
  // Console of a non-zero rank: warnings and errors only.
  const auto& console = spdlog::default_logger()->sinks().front();
  EXPECT_EQ(console->level(), spdlog::level::warn);
  fs::remove_all(dir);
}

TEST(Logging, RankZeroConsoleUsesConfiguredLevel) {
  log::init(0, "debug");
  EXPECT_EQ(spdlog::default_logger()->sinks().front()->level(), spdlog::level::debug);
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
}

TEST(RunDirectory, HoldsResolvedConfig) {
  const std::string dir = test::make_temp_dir("da-run");
  config::Config c = config::parse_config("run: {name: r1}\noptimizer: {lr: 0.25}\n", "x.yaml");
  c.run.output_dir = dir;
  run::prepare_run_directory(c);
  EXPECT_EQ(run::run_directory(c), dir + "/r1");
  EXPECT_TRUE(fs::is_directory(dir + "/r1/logs"));
  EXPECT_TRUE(fs::is_directory(dir + "/r1/checkpoints"));
  const std::string saved = test::read_text(dir + "/r1/config.yaml");
  EXPECT_EQ(saved, config::to_yaml(c));
  EXPECT_DOUBLE_EQ(config::parse_config(saved, "config.yaml").optimizer.lr, 0.25);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace da
