#include "fuzz_targets.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace da::fuzz {

const std::string& scratch_dir() {
  static const std::string dir = [] {
    // /dev/shm when there is one: targets write a file per input.
    const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    const std::filesystem::path path = base / ("da_fuzz_" + std::to_string(getpid()));
    std::filesystem::create_directories(path);
    static struct Remover {
      std::filesystem::path path;
      ~Remover() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
      }
    } remover{path};
    return path.string();
  }();
  return dir;
}

FuzzOutcome refusal(const std::exception& error, const std::string& must_name) {
  const std::string message = error.what();
  if (message.find('\n') != std::string::npos) throw UnclearError("a message of several lines: " + message);
  if (message.find(must_name) == std::string::npos) {
    throw UnclearError("a message that does not name '" + must_name + "': " + message);
  }
  return FuzzOutcome{true, message};
}

}  // namespace da::fuzz
