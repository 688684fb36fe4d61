// Loading a configuration: the YAML file, its `include:` chain, the
// command-line overrides, then typed and validated options.
#pragma once

#include <string>
#include <vector>

#include "config/options.h"

namespace da::config {

// Reads `path` (following `include:`), applies `overrides` ("a.b.c=value",
// the value parsed as YAML), and returns the validated options. Throws
// ConfigError with one line naming the file or the YAML path.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Same, from YAML text (for tests and for configs stored in checkpoints).
// `origin` names the text in messages; includes resolve against `base_dir`.
Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides = {}, const std::string& base_dir = ".");

// The resolved configuration as YAML: every option, defaults included.
std::string to_yaml(const Config& config);

// Every key with its type and documentation, for --help-config and the docs.
std::vector<KeyLister::Entry> describe_keys();

// Cross-field checks that one option alone cannot express.
void validate(const Config& config);

}  // namespace da::config
