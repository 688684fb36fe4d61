// Running a program as a child process and capturing what it says, for tests
// that check command-line behaviour (exit status and messages).
#pragma once

#include <string>
#include <vector>

namespace da::test {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal number when killed by a signal
  std::string out;
  std::string err;
};

// Runs `program` with `args` (no shell), optional environment additions
// ("KEY=VALUE"), and waits at most `timeout_s` * timeout_scale() seconds
// (then kills it).
ProcessResult run_process(const std::string& program, const std::vector<std::string>& args,
                          const std::vector<std::string>& extra_env = {}, double timeout_s = 120);

// How many times longer than a plain build's the limits on waiting are: 1,
// or more in a sanitizer build, whose code runs several times slower
// (DA_TEST_TIMEOUT_SCALE in CMakeLists.txt).
double timeout_scale();

// Path of a built binary: <build dir>/<relative>. The build, source and
// Python paths are the build's own unless DA_TEST_BINARY_DIR,
// DA_TEST_SOURCE_DIR or DA_TEST_PYTHON say where they moved to.
std::string binary_path(const std::string& relative);

// Path in the source tree: <source dir>/<relative>.
std::string source_path(const std::string& relative);

// The Python interpreter of the build (CMake's DA_PYTHON, tools/setup.sh's
// venv): the same Torch as the C++ code, plus torchvision, h5py and numpy.
std::string python_path();

// Environment for starting mpirun from a test: allowed as root, and more
// ranks than cores.
std::vector<std::string> mpirun_env();

// A fresh empty directory under the system temp dir, removed by the caller.
std::string make_temp_dir(const std::string& prefix);

// Writes `text` to `path`, creating parent directories.
void write_text(const std::string& path, const std::string& text);

// Whole contents of a file ("" when missing).
std::string read_text(const std::string& path);

}  // namespace da::test
