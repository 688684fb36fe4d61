// A method's parameters from the configuration, read with the same rigour as
// the rest of the config: wrong types, out-of-range values and unknown names
// are errors that name the YAML path and list the method's valid parameters.
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

class Params {
 public:
  // `values`: parameter name -> its scalar text; lists are given as their
  // items joined by ',' (see list()). `path` is the YAML path for messages
  // ("domain_adaptation.method").
  Params(std::map<std::string, std::string> values, std::string path);

  double number(const std::string& key, double fallback, std::optional<double> min = std::nullopt,
                std::optional<double> max = std::nullopt);
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::optional<std::int64_t> min = std::nullopt);
  bool flag(const std::string& key, bool fallback);
  std::string text(const std::string& key, const std::string& fallback);
  std::string choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed);
  std::optional<double> optional_number(const std::string& key, std::optional<double> min = std::nullopt);
  std::vector<std::string> list(const std::string& key, const std::vector<std::string>& fallback);

  // Call after reading every parameter: any name not asked for is an error
  // listing the valid ones.
  void finish() const;

  const std::string& path() const { return path_; }

 private:
  const std::string* find(const std::string& key);
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  std::map<std::string, std::string> values_;
  std::string path_;
  std::vector<std::string> known_;
};

}  // namespace da::methods
