#include "io/checkpoint_file.h"

#include <filesystem>
#include <stdexcept>

#include <caffe2/serialize/inline_container.h>

#include "io/atomic_file.h"
#include "io/pickle_scan.h"

namespace da::io {
namespace {

// Refuses a checkpoint whose pickles declare lengths they do not hold,
// before Torch's unpickler reserves them (io/pickle_scan.h).
void check_pickles(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  for (const std::string& name : reader.getAllRecords()) {
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".pkl") != 0) continue;
    const auto [data, size] = reader.getRecord(name);
    const std::string problem = pickle_length_problem(static_cast<const uint8_t*>(data.get()), size);
    if (!problem.empty()) throw std::runtime_error("record " + name + ": " + problem);
  }
}

}  // namespace

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
    check_pickles(path);
    archive.load_from(path, device);
  } catch (const std::exception& e) {
    // c10::Error messages carry a C++ backtrace; the first line says what is wrong.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw std::runtime_error("checkpoint " + path + " is not a readable da_dist checkpoint: " + what);
  }
}

}  // namespace da::io
