#include "run/run_directory.h"

#include <filesystem>

#include "config/loader.h"
#include "io/atomic_file.h"

namespace da::run {
namespace fs = std::filesystem;

std::string run_directory(const config::Config& config) {
  return (fs::path(config.run.output_dir) / config.run.name).string();
}

void prepare_run_directory(const config::Config& config) {
  const fs::path dir = run_directory(config);
  fs::create_directories(dir / "logs");
  fs::create_directories(dir / "checkpoints");
  io::write_file_atomically((dir / "config.yaml").string(), config::to_yaml(config));
}

}  // namespace da::run
