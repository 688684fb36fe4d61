// Error types that carry what a user needs to fix their input. The CLI maps
// them to exit codes: ConfigError and UsageError -> 2, anything else -> 1.
#pragma once

#include <stdexcept>
#include <string>

#include "io/one_line.h"

namespace da::config {

// A problem with the configuration (file, YAML, key, type or value). The
// message is one line and names the YAML path.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(const std::string& message) : std::runtime_error(io::one_line(message)) {}
};

// A problem with the command line itself.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message) : std::runtime_error(io::one_line(message)) {}
};

}  // namespace da::config
