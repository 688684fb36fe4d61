#include "config/loader.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace da::config {
namespace fs = std::filesystem;
namespace {

YAML::Node parse_yaml(const std::string& text, const std::string& origin) {
  try {
    YAML::Node node = YAML::Load(text);
    if (node.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!node.IsMap()) throw ConfigError(origin + ": the top level must be a mapping of sections");
    return node;
  } catch (const YAML::ParserException& e) {
    throw ConfigError(origin + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": YAML syntax error: " + e.msg);
  }
}

std::string read_file(const fs::path& path, const std::string& what) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) throw ConfigError(what + " '" + path.string() + "' not found");
  if (ec) throw ConfigError(what + " '" + path.string() + "': " + ec.message());
  if (fs::is_directory(status)) throw ConfigError(what + " '" + path.string() + "' is a directory");
  // A device or pipe (include: /dev/zero) would be read forever.
  if (!fs::is_regular_file(status)) throw ConfigError(what + " '" + path.string() + "' is not a regular file");
  std::ifstream in(path);
  if (!in) throw ConfigError(what + " '" + path.string() + "' cannot be read");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Key-by-key merge: maps merge recursively, anything else in `over` replaces.
YAML::Node merge(const YAML::Node& base, const YAML::Node& over) {
  if (!base || !base.IsMap() || !over.IsMap()) return YAML::Clone(over);
  YAML::Node result = YAML::Clone(base);
  for (const auto& item : over) {
    const std::string key = item.first.Scalar();
    const YAML::Node& const_result = result;
    result[key] = merge(const_result[key], item.second);
  }
  return result;
}

// Replaces the `include:` key of `node` by the merged content of its bases.
YAML::Node resolve_includes(YAML::Node node, const fs::path& dir, const std::string& origin,
                            std::set<std::string>& chain) {
  const YAML::Node& const_node = node;
  const YAML::Node includes = const_node["include"];
  if (!includes) return node;
  std::vector<std::string> files;
  if (includes.IsScalar()) {
    files.push_back(includes.Scalar());
  } else if (includes.IsSequence()) {
    for (const auto& f : includes) {
      if (!f.IsScalar()) throw ConfigError(origin + ": include: expected file names");
      files.push_back(f.Scalar());
    }
  } else {
    throw ConfigError(origin + ": include: expected a file name or a list of file names");
  }
  node.remove("include");

  YAML::Node merged(YAML::NodeType::Map);
  for (const auto& file : files) {
    const fs::path path = fs::path(file).is_absolute() ? fs::path(file) : dir / file;
    std::error_code ec;
    const std::string key = fs::weakly_canonical(path, ec).string();
    if (ec) throw ConfigError(origin + ": included file '" + path.string() + "': " + ec.message());
    if (chain.count(key)) throw ConfigError(origin + ": include cycle through '" + path.string() + "'");
    const std::string text = read_file(path, origin + ": included file");
    chain.insert(key);
    YAML::Node base = resolve_includes(parse_yaml(text, path.string()), path.parent_path(), path.string(), chain);
    chain.erase(key);
    merged = merge(merged, base);
  }
  return merge(merged, node);
}

// "a.b.c=value": sets the value (parsed as YAML) at the dotted path.
void apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set '" + assignment + "': expected KEY=VALUE, e.g. --set optimizer.lr=3e-4");
  }
  const std::string dotted = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError("--set " + dotted + ": value '" + text + "' is not valid YAML: " + e.msg);
  }
  std::vector<std::string> keys;
  std::stringstream ss(dotted);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw ConfigError("--set '" + dotted + "': empty key in dotted path");
    keys.push_back(part);
  }
  // Walk down, creating maps where the path does not exist yet. yaml-cpp
  // nodes are handles: reassigning a handle re-points it, mutating through
  // operator[] edits the tree.
  std::vector<YAML::Node> path{root};
  std::string walked;
  for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
    walked = walked.empty() ? keys[i] : walked + "." + keys[i];
    YAML::Node child = path.back()[keys[i]];
    if (child.IsNull() || !child.IsDefined()) {
      child = YAML::Node(YAML::NodeType::Map);
      path.back()[keys[i]] = child;
    } else if (!child.IsMap()) {
      throw ConfigError("--set " + dotted + ": '" + walked + "' is not a section");
    }
    path.push_back(path.back()[keys[i]]);
  }
  path.back()[keys.back()] = value;
}

Config build(YAML::Node root, const std::string& origin) {
  Config config;
  YamlReader reader(root, "");
  try {
    config.fields(reader);
    reader.reject_unknown_keys();
    validate(config);
  } catch (const ConfigError& e) {
    throw ConfigError(origin + ": " + e.what());
  }
  return config;
}

Config from_text(const std::string& text, const std::string& origin, const fs::path& dir,
                 const std::vector<std::string>& overrides, std::set<std::string>& chain) {
  YAML::Node root = resolve_includes(parse_yaml(text, origin), dir, origin, chain);
  for (const auto& assignment : overrides) apply_override(root, assignment);
  Config config = build(root, origin);
  if (config.run.name.empty()) config.run.name = fs::path(origin).stem().string();
  return config;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides, const std::string& base_dir) {
  std::set<std::string> chain;
  return from_text(yaml_text, origin, base_dir, overrides, chain);
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  const std::string text = read_file(path, "config file");
  std::error_code ec;  // read_file succeeded: the path resolves
  std::set<std::string> chain{fs::weakly_canonical(path, ec).string()};
  return from_text(text, path, fs::path(path).parent_path(), overrides, chain);
}

std::string to_yaml(const Config& config) {
  Config copy = config;  // the visitors take non-const references
  YAML::Emitter out;
  out << YAML::BeginMap;
  YamlWriter writer(out);
  copy.fields(writer);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::vector<KeyLister::Entry> describe_keys() {
  Config defaults;
  KeyLister lister;
  defaults.fields(lister);
  return lister.entries();
}

void validate(const Config& c) {
  if (c.run.max_steps == 0) {
    throw ConfigError("run.max_steps: 0 would train nothing; -1 means no limit, a positive value a number of "
                      "optimizer steps");
  }
  const auto& norm = c.data.normalize;
  if (norm.mode == "config") {
    if (norm.mean.empty() || norm.std.empty()) {
      throw ConfigError("data.normalize: mode 'config' needs both mean and std");
    }
    if (norm.mean.size() != norm.std.size()) {
      throw ConfigError("data.normalize: mean has " + std::to_string(norm.mean.size()) + " values but std has " +
                        std::to_string(norm.std.size()));
    }
  }
  if (c.optimizer.betas.size() != 2) {
    throw ConfigError("optimizer.betas: expected 2 values, got " + std::to_string(c.optimizer.betas.size()));
  }
  const YAML::Node& method = c.domain_adaptation.method;
  if (method && !method.IsNull() && !method.IsMap() && !method.IsSequence()) {
    throw ConfigError("domain_adaptation.method: expected a mapping with 'name' or a list of them");
  }
}

}  // namespace da::config
