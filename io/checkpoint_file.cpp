#include "io/checkpoint_file.h"

#include <filesystem>
#include <stdexcept>

#include "io/atomic_file.h"

namespace da::io {

void save_checkpoint_file(torch::serialize::OutputArchive& archive, const std::string& path) {
  try {
    write_atomically_with(path, [&](const std::string& temporary) { archive.save_to(temporary); });
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot write checkpoint " + path + ": " + e.what());
  }
}

void load_checkpoint_file(torch::serialize::InputArchive& archive, const std::string& path, c10::Device device) {
  if (!std::filesystem::is_regular_file(path)) throw std::runtime_error("checkpoint " + path + ": no such file");
  try {
    archive.load_from(path, device);
  } catch (const std::exception& e) {
    // c10::Error messages carry a C++ backtrace; the first line says what is wrong.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw std::runtime_error("checkpoint " + path + " is not a readable da_dist checkpoint: " + what);
  }
}

}  // namespace da::io
