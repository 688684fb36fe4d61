// Error types that carry what a user needs to fix their input. The CLI maps
// them to exit codes: ConfigError and UsageError -> 2, anything else -> 1.
#pragma once

#include <stdexcept>
#include <string>

namespace da::config {

// A problem with the configuration (file, YAML, key, type or value). The
// message is one line and names the YAML path.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A problem with the command line itself.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace da::config
