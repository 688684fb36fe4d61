#include "config/schema.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <charconv>

#include "config/suggest.h"

namespace da::config {
namespace {

std::string describe_node(const YAML::Node& node) {
  if (!node || node.IsNull()) return "nothing (null)";
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  return "'" + node.Scalar() + "'";
}

// Shortest text that reads back as the same double (the resolved config must
// round-trip exactly).
std::string format_number(double v) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, result.ptr);
}

bool parse_integer(const std::string& text, std::int64_t& out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_number(const std::string& text, double& out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

}  // namespace

std::string Bounds::describe() const {
  std::string s;
  if (min) s += std::string(min_exclusive ? " > " : " >= ") + format_number(*min);
  if (max) s += std::string(s.empty() ? " " : ",") + (max_exclusive ? " < " : " <= ") + format_number(*max);
  return s;
}

std::string join_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

YamlReader::YamlReader(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {}

void YamlReader::fail_type(const std::string& path, const char* expected, const YAML::Node& got) {
  throw ConfigError(path + ": expected " + expected + ", got " + describe_node(got));
}

YAML::Node YamlReader::find(const char* key) {
  known_.push_back(key);
  const YAML::Node& const_node = node_;  // const access never inserts a key
  return const_node[key];
}

void YamlReader::check_bounds(const char* key, double value, const Bounds& b) const {
  const bool below = b.min && (b.min_exclusive ? value <= *b.min : value < *b.min);
  const bool above = b.max && (b.max_exclusive ? value >= *b.max : value > *b.max);
  if (below || above) {
    throw ConfigError(path_of(key) + ": value " + format_number(value) + " is out of range, must be" +
                      b.describe());
  }
}

void YamlReader::flag(const char* key, bool& value, const char*) {
  const YAML::Node n = find(key);
  if (!n) return;
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) fail_type(path_of(key), "true or false", n);
  value = v;
}

void YamlReader::integer(const char* key, std::int64_t& value, const char*, Bounds bounds) {
  const YAML::Node n = find(key);
  if (!n) return;
  std::int64_t v = 0;
  if (!n.IsScalar() || !parse_integer(n.Scalar(), v)) fail_type(path_of(key), "an integer", n);
  check_bounds(key, static_cast<double>(v), bounds);
  value = v;
}

void YamlReader::number(const char* key, double& value, const char*, Bounds bounds) {
  const YAML::Node n = find(key);
  if (!n) return;
  double v = 0;
  if (!n.IsScalar() || !parse_number(n.Scalar(), v)) fail_type(path_of(key), "a number", n);
  check_bounds(key, v, bounds);
  value = v;
}

void YamlReader::text(const char* key, std::string& value, const char*) {
  const YAML::Node n = find(key);
  if (!n) return;
  if (n.IsNull()) {
    value.clear();
    return;
  }
  if (!n.IsScalar()) fail_type(path_of(key), "a string", n);
  value = n.Scalar();
}

void YamlReader::choice(const char* key, std::string& value, const std::vector<std::string>& allowed,
                        const char*) {
  const YAML::Node n = find(key);
  if (!n) return;
  if (!n.IsScalar()) fail_type(path_of(key), "a string", n);
  const std::string& v = n.Scalar();
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
    std::string msg = path_of(key) + ": unknown value '" + v + "', valid values are " + quoted_list(allowed);
    const std::string near = closest_match(v, allowed);
    if (!near.empty()) msg += " (did you mean '" + near + "'?)";
    throw ConfigError(msg);
  }
  value = v;
}

void YamlReader::texts(const char* key, std::vector<std::string>& value, const char*) {
  const YAML::Node n = find(key);
  if (!n) return;
  value.clear();
  if (n.IsNull()) return;
  if (n.IsScalar()) {
    value.push_back(n.Scalar());
    return;
  }
  if (!n.IsSequence()) fail_type(path_of(key), "a list of strings", n);
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) fail_type(path_of(key) + "[" + std::to_string(i) + "]", "a string", n[i]);
    value.push_back(n[i].Scalar());
  }
}

void YamlReader::numbers(const char* key, std::vector<double>& value, const char*, Bounds bounds) {
  const YAML::Node n = find(key);
  if (!n) return;
  value.clear();
  if (n.IsNull()) return;
  if (!n.IsSequence()) fail_type(path_of(key), "a list of numbers", n);
  for (std::size_t i = 0; i < n.size(); ++i) {
    const std::string item = std::string(key) + "[" + std::to_string(i) + "]";
    double v = 0;
    if (!n[i].IsScalar() || !parse_number(n[i].Scalar(), v)) fail_type(path_of(item.c_str()), "a number", n[i]);
    check_bounds(item.c_str(), v, bounds);
    value.push_back(v);
  }
}

void YamlReader::raw(const char* key, YAML::Node& value, const char*) {
  const YAML::Node n = find(key);
  if (!n) return;
  value = YAML::Clone(n);
}

void YamlReader::reject_unknown_keys() const {
  if (!node_.IsMap()) return;
  for (const auto& item : node_) {
    const std::string key = item.first.Scalar();
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::string msg = path_of(key.c_str()) + ": unknown key";
    const std::string near = closest_match(key, known_);
    if (!near.empty()) {
      msg += ", did you mean '" + near + "'?";
    } else {
      msg += "; valid keys" + std::string(path_.empty() ? "" : " of '" + path_ + "'") + " are " +
             quoted_list(known_);
    }
    throw ConfigError(msg);
  }
}

void YamlWriter::number(const char* key, double& value, const char*, Bounds) {
  out_ << YAML::Key << key << YAML::Value << format_number(value);
}

void YamlWriter::texts(const char* key, std::vector<std::string>& value, const char*) {
  out_ << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& v : value) out_ << YAML::DoubleQuoted << v;
  out_ << YAML::EndSeq;
}

void YamlWriter::numbers(const char* key, std::vector<double>& value, const char*, Bounds) {
  out_ << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (double v : value) out_ << format_number(v);
  out_ << YAML::EndSeq;
}

void YamlWriter::raw(const char* key, YAML::Node& value, const char*) {
  out_ << YAML::Key << key << YAML::Value;
  if (value && !value.IsNull()) {
    out_ << value;
  } else {
    out_ << YAML::Null;
  }
}

void KeyLister::choice(const char* key, std::string&, const std::vector<std::string>& allowed, const char* doc) {
  add(key, "one of " + quoted_list(allowed), doc);
}

}  // namespace da::config
