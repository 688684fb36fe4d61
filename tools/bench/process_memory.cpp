// ProcessMemory (bench_common.h): what /proc says about this process.
#include <dirent.h>

#include <fstream>
#include <string>

#include "tools/bench/bench_common.h"

namespace da::bench {
namespace {

// The kB value of line `key` (e.g. "Pss:") in a /proc key-value file, in MiB.
double kib_field_mib(const char* file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) / 1024.0;
  }
  return 0;
}

}  // namespace

ProcessMemory process_memory() {
  ProcessMemory memory;
  memory.pss_mib = kib_field_mib("/proc/self/smaps_rollup", "Pss:");
  memory.hwm_mib = kib_field_mib("/proc/self/status", "VmHWM:");
  if (DIR* fds = ::opendir("/proc/self/fd")) {
    while (const dirent* entry = ::readdir(fds)) memory.fds += entry->d_name[0] != '.';
    ::closedir(fds);
    --memory.fds;  // the directory stream's own
  }
  return memory;
}

}  // namespace da::bench
