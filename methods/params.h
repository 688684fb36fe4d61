// A method's parameters from the configuration, read with the same rigour as
// the rest of the config: wrong types, out-of-range values and unknown names
// are errors that name the YAML path and list the method's valid parameters.
//
// Every read is also recorded (ParamSpec: name, kind and range, the default
// the code falls back to, and its ParamDoc), so the parameter list that
// `da_dist --help-config` prints (methods/describe.h) comes from the very
// calls that read the configuration: there is no second copy of a default.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace da::methods {

// A bad method name or parameter. The CLI reports it as a configuration
// error (exit status 2).
class MethodError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// What a parameter does and where its default comes from: the paper's
// section, the authors' or a reference library's code, or "ours: <why>"
// where neither gives it (and "paper: X; ours: Y because ..." where we
// deliberately differ).
struct ParamDoc {
  std::string doc;
  std::string source;
};

// Bounds of a number, checked when it is read.
struct Range {
  std::optional<double> min;
  std::optional<double> max;
  bool min_exclusive = false;
  bool max_exclusive = false;

  static Range at_least(double v) { return Range{v, std::nullopt, false, false}; }
  static Range greater_than(double v) { return Range{v, std::nullopt, true, false}; }
  static Range between(double lo, double hi) { return Range{lo, hi, false, false}; }
  // " >= 0, < 1", " > 0" or "" (none), as the config schema writes bounds.
  std::string describe() const;
};

// One parameter as a method reads it.
struct ParamSpec {
  std::string name;
  std::string kind;      // "int >= 1", "float > 0, <= 0.5", "bool", "string", "pooled | pixel", "list"
  std::string fallback;  // the default as text: "1024", "true", "''", "[0.5, 1]", "unset"
  ParamDoc doc;
};

class Params {
 public:
  // `values`: parameter name -> its scalar text; lists are given as their
  // items joined by ',' (see list()). `path` is the YAML path for messages
  // ("domain_adaptation.method").
  Params(std::map<std::string, std::string> values, std::string path);

  double number(const std::string& key, double fallback, const ParamDoc& doc, Range range = {});
  std::int64_t integer(const std::string& key, std::int64_t fallback, const ParamDoc& doc,
                       std::optional<std::int64_t> min = std::nullopt);
  bool flag(const std::string& key, bool fallback, const ParamDoc& doc);
  std::string text(const std::string& key, const std::string& fallback, const ParamDoc& doc);
  std::string choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed,
                     const ParamDoc& doc);
  // Unset unless given (e.g. "the optimizer's learning rate").
  std::optional<double> optional_number(const std::string& key, const ParamDoc& doc, Range range = {});
  std::vector<std::string> list(const std::string& key, const std::vector<std::string>& fallback,
                                const ParamDoc& doc);

  // The same without a ParamDoc: plug-ins written before it keep compiling;
  // --help-config lists their parameters without doc and source.
  double number(const std::string& key, double fallback, std::optional<double> min = std::nullopt,
                std::optional<double> max = std::nullopt) {
    return number(key, fallback, ParamDoc{}, Range{min, max, false, false});
  }
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::optional<std::int64_t> min = std::nullopt) {
    return integer(key, fallback, ParamDoc{}, min);
  }
  bool flag(const std::string& key, bool fallback) { return flag(key, fallback, ParamDoc{}); }
  std::string text(const std::string& key, const std::string& fallback) { return text(key, fallback, ParamDoc{}); }
  std::string choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed) {
    return choice(key, fallback, allowed, ParamDoc{});
  }
  std::optional<double> optional_number(const std::string& key, std::optional<double> min = std::nullopt) {
    return optional_number(key, ParamDoc{}, Range{min, std::nullopt, false, false});
  }
  std::vector<std::string> list(const std::string& key, const std::vector<std::string>& fallback) {
    return list(key, fallback, ParamDoc{});
  }

  // Call after reading every parameter: any name not asked for is an error
  // listing the valid ones.
  void finish() const;

  const std::string& path() const { return path_; }
  // Every parameter read so far, in the order the method read them.
  const std::vector<ParamSpec>& specs() const { return specs_; }

 private:
  // Records the read and returns the given text, nullptr when absent.
  const std::string* read(const std::string& key, std::string kind, std::string fallback, const ParamDoc& doc);
  double parse_number(const std::string& key, const std::string& text, const Range& range) const;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  std::map<std::string, std::string> values_;
  std::string path_;
  std::vector<ParamSpec> specs_;
};

}  // namespace da::methods
