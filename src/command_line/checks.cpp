#include "command_line/checks.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdlib>
#include <optional>

#include "config/suggest.h"

namespace da::command_line {
namespace {

// The whole of `text` as an integer, or nothing (empty, trailing characters,
// out of range of long long).
std::optional<long long> whole_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno != 0) return std::nullopt;
  return value;
}

// Shortest text of a bound for messages: 1 rather than 1.000000.
std::string bound_text(double value) {
  std::string text = std::to_string(value);
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text;
}

}  // namespace

CLI::Validator integer_at_least(std::int64_t min) {
  const std::string expected = min == 1   ? "a positive integer"
                               : min == 0 ? "a non-negative integer"
                                          : "an integer >= " + std::to_string(min);
  const std::string description = min == 1 ? "POSITIVE" : min == 0 ? "NONNEGATIVE" : ">=" + std::to_string(min);
  return CLI::Validator(
      [min, expected](std::string& text) -> std::string {
        const auto value = whole_number(text);
        if (value && *value >= min) return "";
        return "expected " + expected + ", got '" + text + "'";
      },
      description);
}

CLI::Validator integer_in(std::int64_t low, std::int64_t high) {
  const std::string range = "[" + std::to_string(low) + ", " + std::to_string(high) + "]";
  return CLI::Validator(
      [low, high, range](std::string& text) -> std::string {
        const auto value = whole_number(text);
        if (value && *value >= low && *value <= high) return "";
        return "expected an integer in " + range + ", got '" + text + "'";
      },
      range);
}

CLI::Validator number_in(double low, double high) {
  const std::string range = "[" + bound_text(low) + ", " + bound_text(high) + "]";
  return CLI::Validator(
      [low, high, range](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double value = std::strtod(text.c_str(), &end);
        // NaN fails both comparisons.
        if (!text.empty() && *end == '\0' && errno == 0 && value >= low && value <= high) return "";
        return "expected a number in " + range + ", got '" + text + "'";
      },
      range);
}

CLI::Validator one_of(const std::string& noun, const std::vector<std::string>& values) {
  std::string names;
  for (const auto& value : values) names += (names.empty() ? "" : "|") + value;
  return CLI::Validator(
      [noun, values](std::string& text) -> std::string {
        for (const auto& value : values) {
          if (text == value) return "";
        }
        return "unknown " + noun + " '" + text + "', valid " + noun + "s are " + config::quoted_list(values);
      },
      names);
}

}  // namespace da::command_line
