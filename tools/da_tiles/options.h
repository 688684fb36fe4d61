// Command-line parsing shared by the da_tiles subcommands: "--name value"
// options (some repeatable), "--flag" switches and positional arguments.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace da::tiles {

// Wrong command line: main() prints it and exits with status 2.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message) : std::runtime_error(message) {}
};

class Options {
 public:
  // Parses `args` (after the subcommand). `valued` names options that take a
  // value, `flags` switches without one; anything else starting with "--" is
  // a UsageError.
  Options(const std::vector<std::string>& args, const std::set<std::string>& valued,
          const std::set<std::string>& flags);

  const std::vector<std::string>& positional() const { return positional_; }
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  // Every value given for a repeatable option, in order.
  std::vector<std::string> all(const std::string& name) const;
  // The value of an option given at most once; `fallback` when absent.
  std::string text(const std::string& name, const std::string& fallback = "") const;
  std::string required_text(const std::string& name) const;
  // Numeric values, checked to lie in [low, high].
  int64_t integer(const std::string& name, int64_t fallback, int64_t low, int64_t high) const;
  double number(const std::string& name, double fallback, double low, double high) const;

 private:
  std::vector<std::string> positional_;
  std::set<std::string> flags_;
  std::map<std::string, std::vector<std::string>> values_;
};

// "a,b,c" -> {"a", "b", "c"}; empty items are a UsageError naming `option`.
std::vector<std::string> split_list(const std::string& text, const std::string& option);

}  // namespace da::tiles
