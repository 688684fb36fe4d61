// Fuzz target: configs as `da_dist --config main.yaml --set ...` loads them.
// Input: the main YAML, then after a NUL byte the text of `include.yaml`
// (which the main file may include), then one `--set` override per further
// NUL-separated part. An accepted config must survive its own round trip:
// the resolved YAML loads again to the same resolved YAML (checkpoints and
// --print-config rely on it).
#include <fstream>
#include <vector>

#include "config/errors.h"
#include "config/loader.h"
#include "fuzz_bytes.h"
#include "fuzz_targets.h"

namespace da::fuzz {
namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace

FuzzOutcome fuzz_config(const uint8_t* data, size_t size) {
  FuzzBytes in(data, size);
  const std::string main_path = scratch_dir() + "/main.yaml";
  write_file(main_path, in.until('\0'));
  write_file(scratch_dir() + "/include.yaml", in.until('\0'));
  std::vector<std::string> overrides;
  while (!in.empty()) overrides.push_back(in.until('\0'));
  std::string resolved;
  try {
    resolved = config::to_yaml(config::load_config(main_path, overrides));
  } catch (const config::ConfigError& error) {
    return refusal(error, "");
  }
  std::string again;
  try {
    again = config::to_yaml(config::parse_config(resolved, "resolved.yaml"));
  } catch (const config::ConfigError& error) {
    throw UnclearError("the resolved config does not load again: " + std::string(error.what()) + "\n" + resolved);
  }
  if (again != resolved) throw UnclearError("the resolved config changes when loaded again:\n" + resolved + "\n--\n" + again);
  return FuzzOutcome{};
}

}  // namespace da::fuzz
