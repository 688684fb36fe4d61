// Logging: the rank in every line, rank 0 informs and other ranks only warn
// on the console, every rank writes its own file in the run directory.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <sstream>
#include <thread>

#include <filesystem>

#include "config/loader.h"
#include "log/json_text.h"
#include "log/logging.h"
#include "log/progress.h"
#include "run/run_directory.h"
#include "support/process.h"

namespace da {
namespace {

namespace fs = std::filesystem;

// The JSON layouts: escaping and numbers are the library's (NaN as null,
// bytes that are not UTF-8 replaced), the lines and indentation ours.
TEST(JsonText, LineAndDocumentLayouts) {
  const nlohmann::ordered_json nested{{"kind", "a\"b\n"}, {"x", 0.1}, {"bad", std::nan("")}, {"list", {1, 2}}};
  EXPECT_EQ(log::json_line(nested), "{\"kind\": \"a\\\"b\\n\", \"x\": 0.1, \"bad\": null, \"list\": [1, 2]}");
  EXPECT_EQ(log::json_line(nlohmann::ordered_json("caf\xe9")), "\"caf\xef\xbf\xbd\"");
  EXPECT_EQ(log::json_line(nlohmann::ordered_json::object()), "{}");

  const nlohmann::ordered_json document{{"name", "run"},
                                        {"rows", {{1, 2}, {3, 4}}},
                                        {"classes", nlohmann::ordered_json::array({{{"name", "road"}, {"iou", 0.5}}})},
                                        {"bands", {{"count", 2}, {"names", {"r", "g"}}}},
                                        {"empty", nlohmann::ordered_json::array()}};
  EXPECT_EQ(log::json_document(document),
            "{\n  \"name\": \"run\",\n  \"rows\": [\n    [1, 2],\n    [3, 4]\n  ],\n"
            "  \"classes\": [\n    {\"name\": \"road\", \"iou\": 0.5}\n  ],\n"
            "  \"bands\": {\"count\": 2, \"names\": [\"r\", \"g\"]},\n  \"empty\": []\n}\n");
  EXPECT_EQ(nlohmann::json::parse(log::json_document(document))["rows"][1][0], 3);
}

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

TEST(Progress, DurationAndLineFormats) {
  EXPECT_EQ(log::format_duration(0), "0:00");
  EXPECT_EQ(log::format_duration(245.4), "4:05");
  EXPECT_EQ(log::format_duration(3723), "1:02:03");
  EXPECT_EQ(log::format_duration(-1), "?");
  log::ProgressState state;
  state.epoch = 1;
  state.epochs = 6;
  state.step = 10;
  state.steps = 20;
  state.images_per_s = 21.34;
  state.seconds_left = 245;
  state.logs = {{"loss/total", 0.8123}, {"loss/seg", 0.1}, {"loss/da", 0.7123}, {"lambda", 0.99}};
  EXPECT_EQ(log::format_progress(state),
            "epoch 2/6 step 10/20 | 21.3 img/s | ETA 4:05 | loss 0.8123 (seg 0.1000, da 0.7123) | lambda 0.9900");
  state.logs.clear();  // before the first log step no loss has been read from the device
  EXPECT_EQ(log::format_progress(state), "epoch 2/6 step 10/20 | 21.3 img/s | ETA 4:05");
}

// Not on a terminal (a Slurm log): plain lines only on the steps marked,
// with throughput and the time left estimated from the epoch so far.
TEST(Progress, PlainLinesOnLogStepsWhenNotATerminal) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto logger = std::make_shared<spdlog::logger>("progress-test", sink);
  logger->set_pattern("%v");
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  log::ProgressLine line(false);
  line.start_epoch();
  log::ProgressState state;
  state.steps = 4;
  state.step = 1;
  line.step(state, 8, 3, false);
  EXPECT_EQ(out.str(), "");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  state.step = 2;
  line.step(state, 8, 2, true);
  line.end_epoch();
  spdlog::set_default_logger(previous);
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_EQ(text.rfind("epoch 1/1 step 2/4 | ", 0), 0u) << text;
  // 16 images in >= 50 ms: at most 320 img/s; 2 steps left at >= 25 ms each.
  const double rate = std::stod(text.substr(text.find("| ") + 2));
  EXPECT_GT(rate, 0.0);
  EXPECT_LE(rate, 320.0);
  EXPECT_EQ(text.find('\r'), std::string::npos);
}

}  // namespace
}  // namespace da
