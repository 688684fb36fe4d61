#include "log/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <filesystem>

namespace da::log {
namespace {

spdlog::level::level_enum parse_level(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  return parsed == spdlog::level::off && level != "off" ? spdlog::level::info : parsed;
}

std::string pattern(int rank) { return "[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(rank) + "] [%l] %v"; }

}  // namespace

void init(int rank, const std::string& level) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  const auto configured = parse_level(level);
  console->set_level(rank == 0 ? configured : std::max(configured, spdlog::level::warn));
  auto logger = std::make_shared<spdlog::logger>("da_dist", console);
  logger->set_level(configured);
  logger->set_pattern(pattern(rank));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

void add_run_file(const std::string& run_dir, int rank) {
  const auto dir = std::filesystem::path(run_dir) / "logs";
  std::filesystem::create_directories(dir);
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>((dir / ("rank-" + std::to_string(rank) + ".log")).string());
  file->set_pattern(pattern(rank));
  file->set_level(spdlog::default_logger()->level());
  spdlog::default_logger()->sinks().push_back(file);
}

void flush() { spdlog::default_logger()->flush(); }

}  // namespace da::log
