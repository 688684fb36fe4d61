// One declaration per option. Each options struct has a template member
//
//   template <class V> void fields(V& v) {
//     v.number("lr", lr, "learning rate", greater_than(0));
//     v.choice("name", name, {"sgd", "adamw"}, "optimizer algorithm");
//     v.section("checkpoint", checkpoint, "checkpointing");
//   }
//
// and its default member initialisers are the defaults. The visitors below
// read and validate YAML (YamlReader), write the resolved YAML (YamlWriter)
// and list the keys with their documentation (KeyLister) from that one
// declaration, so parser, checks, printed config and docs cannot disagree.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/errors.h"

namespace da::config {

// Numeric limits of an option, checked when it is read.
struct Bounds {
  std::optional<double> min;
  std::optional<double> max;
  bool min_exclusive = false;
  bool max_exclusive = false;
  std::string describe() const;
};
inline Bounds at_least(double v) { return Bounds{v, std::nullopt, false, false}; }
inline Bounds greater_than(double v) { return Bounds{v, std::nullopt, true, false}; }
inline Bounds between(double lo, double hi) { return Bounds{lo, hi, false, false}; }

// Joins a parent path and a key: ("", "run") -> "run", ("run", "seed") -> "run.seed".
std::string join_path(const std::string& parent, const std::string& key);

// Reads a YAML map into an options struct, checking types, bounds, enum
// values and unknown keys. Every error is a ConfigError naming the full path.
class YamlReader {
 public:
  YamlReader(const YAML::Node& node, std::string path);

  void flag(const char* key, bool& value, const char* doc);
  void integer(const char* key, std::int64_t& value, const char* doc, Bounds bounds = {});
  void number(const char* key, double& value, const char* doc, Bounds bounds = {});
  void text(const char* key, std::string& value, const char* doc);
  void choice(const char* key, std::string& value, const std::vector<std::string>& allowed,
              const char* doc);
  // A list of strings; a single string is accepted as a list of one.
  void texts(const char* key, std::vector<std::string>& value, const char* doc);
  void numbers(const char* key, std::vector<double>& value, const char* doc, Bounds bounds = {});
  // Free-form YAML validated elsewhere (e.g. a method's own parameters).
  void raw(const char* key, YAML::Node& value, const char* doc);

  template <class Section>
  void section(const char* key, Section& value, const char*) {
    known_.push_back(key);
    const YAML::Node child = node_[key];
    if (!child || child.IsNull()) return;
    const std::string child_path = join_path(path_, key);
    if (!child.IsMap()) fail_type(child_path, "a mapping", child);
    YamlReader reader(child, child_path);
    value.fields(reader);
    reader.reject_unknown_keys();
  }

  // After fields(): every key present in the YAML must have been declared.
  void reject_unknown_keys() const;

  [[noreturn]] static void fail_type(const std::string& path, const char* expected,
                                     const YAML::Node& got);

 private:
  YAML::Node find(const char* key);
  std::string path_of(const char* key) const { return join_path(path_, key); }
  void check_bounds(const char* key, double value, const Bounds& bounds) const;

  YAML::Node node_;
  std::string path_;
  std::vector<std::string> known_;
};

// Writes an options struct as YAML (the resolved config).
class YamlWriter {
 public:
  explicit YamlWriter(YAML::Emitter& out) : out_(out) {}

  void flag(const char* key, bool& value, const char*) { out_ << YAML::Key << key << YAML::Value << value; }
  void integer(const char* key, std::int64_t& value, const char*, Bounds = {}) {
    out_ << YAML::Key << key << YAML::Value << value;
  }
  void number(const char* key, double& value, const char*, Bounds = {});
  void text(const char* key, std::string& value, const char*) {
    out_ << YAML::Key << key << YAML::Value << YAML::DoubleQuoted << value;
  }
  void choice(const char* key, std::string& value, const std::vector<std::string>&, const char*) {
    out_ << YAML::Key << key << YAML::Value << value;
  }
  void texts(const char* key, std::vector<std::string>& value, const char*);
  void numbers(const char* key, std::vector<double>& value, const char*, Bounds = {});
  void raw(const char* key, YAML::Node& value, const char*);

  template <class Section>
  void section(const char* key, Section& value, const char*) {
    out_ << YAML::Key << key << YAML::Value << YAML::BeginMap;
    value.fields(*this);
    out_ << YAML::EndMap;
  }

 private:
  YAML::Emitter& out_;
};

// Lists every key with its path and documentation (for --help-config).
class KeyLister {
 public:
  struct Entry {
    std::string path;
    std::string kind;
    std::string doc;
  };
  explicit KeyLister(std::string path = "") : path_(std::move(path)) {}

  void flag(const char* key, bool&, const char* doc) { add(key, "bool", doc); }
  void integer(const char* key, std::int64_t&, const char* doc, Bounds b = {}) {
    add(key, "int" + b.describe(), doc);
  }
  void number(const char* key, double&, const char* doc, Bounds b = {}) {
    add(key, "float" + b.describe(), doc);
  }
  void text(const char* key, std::string&, const char* doc) { add(key, "string", doc); }
  void choice(const char* key, std::string&, const std::vector<std::string>& allowed, const char* doc);
  void texts(const char* key, std::vector<std::string>&, const char* doc) { add(key, "list of strings", doc); }
  void numbers(const char* key, std::vector<double>&, const char* doc, Bounds = {}) {
    add(key, "list of floats", doc);
  }
  void raw(const char* key, YAML::Node&, const char* doc) { add(key, "mapping", doc); }

  template <class Section>
  void section(const char* key, Section& value, const char* doc) {
    add(key, "section", doc);
    KeyLister child(join_path(path_, key));
    value.fields(child);
    entries_.insert(entries_.end(), child.entries_.begin(), child.entries_.end());
  }

  const std::vector<Entry>& entries() const { return entries_; }

 private:
  void add(const char* key, std::string kind, const char* doc) {
    entries_.push_back({join_path(path_, key), std::move(kind), doc});
  }
  std::string path_;
  std::vector<Entry> entries_;
};

}  // namespace da::config
