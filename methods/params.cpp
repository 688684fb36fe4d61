#include "methods/params.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace da::methods {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", '" : "'") + items[i] + "'";
  return out;
}

// Shortest text that reads back as the same double (as the config schema).
std::string format(double v) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, result.ptr);
}

std::string list_text(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return "[" + out + "]";
}

}  // namespace

std::string Range::describe() const {
  std::string s;
  if (min) s += std::string(min_exclusive ? " > " : " >= ") + format(*min);
  if (max) s += std::string(s.empty() ? " " : ",") + (max_exclusive ? " < " : " <= ") + format(*max);
  return s;
}

Params::Params(std::map<std::string, std::string> values, std::string path)
    : values_(std::move(values)), path_(std::move(path)) {}

const std::string* Params::read(const std::string& key, std::string kind, std::string fallback, const ParamDoc& doc) {
  specs_.push_back(ParamSpec{key, std::move(kind), std::move(fallback), doc});
  const auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

void Params::fail(const std::string& key, const std::string& what) const {
  throw MethodError(path_ + "." + key + ": " + what);
}

double Params::parse_number(const std::string& key, const std::string& text, const Range& range) const {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v)) {
    fail(key, "expected a number, got '" + text + "'");
  }
  const bool below = range.min && (range.min_exclusive ? v <= *range.min : v < *range.min);
  const bool above = range.max && (range.max_exclusive ? v >= *range.max : v > *range.max);
  if (below || above) fail(key, "value " + text + " is out of range, must be" + range.describe());
  return v;
}

double Params::number(const std::string& key, double fallback, const ParamDoc& doc, Range range) {
  const std::string* text = read(key, "float" + range.describe(), format(fallback), doc);
  return text ? parse_number(key, *text, range) : fallback;
}

std::optional<double> Params::optional_number(const std::string& key, const ParamDoc& doc, Range range) {
  const std::string* text = read(key, "float" + range.describe(), "unset", doc);
  if (!text) return std::nullopt;
  return parse_number(key, *text, range);
}

std::int64_t Params::integer(const std::string& key, std::int64_t fallback, const ParamDoc& doc,
                             std::optional<std::int64_t> min) {
  const std::string* text =
      read(key, "int" + (min ? " >= " + std::to_string(*min) : std::string()), std::to_string(fallback), doc);
  if (!text) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno != 0) fail(key, "expected an integer, got '" + *text + "'");
  if (min && v < *min) fail(key, "value " + *text + " is out of range, must be >= " + std::to_string(*min));
  return v;
}

bool Params::flag(const std::string& key, bool fallback, const ParamDoc& doc) {
  const std::string* text = read(key, "bool", fallback ? "true" : "false", doc);
  if (!text) return fallback;
  if (*text == "true" || *text == "yes" || *text == "on") return true;
  if (*text == "false" || *text == "no" || *text == "off") return false;
  fail(key, "expected true or false, got '" + *text + "'");
}

std::string Params::text(const std::string& key, const std::string& fallback, const ParamDoc& doc) {
  const std::string* text = read(key, "string", fallback.empty() ? "''" : fallback, doc);
  return text ? *text : fallback;
}

std::string Params::choice(const std::string& key, const std::string& fallback,
                           const std::vector<std::string>& allowed, const ParamDoc& doc) {
  std::string kind;
  for (const auto& a : allowed) kind += (kind.empty() ? "" : " | ") + a;
  const std::string* text = read(key, kind, fallback, doc);
  const std::string value = text ? *text : fallback;
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    fail(key, "unknown value '" + value + "', valid values are " + join(allowed));
  }
  return value;
}

std::vector<std::string> Params::list(const std::string& key, const std::vector<std::string>& fallback,
                                      const ParamDoc& doc) {
  const std::string* text = read(key, "list", list_text(fallback), doc);
  if (!text) return fallback;
  std::vector<std::string> items;
  std::stringstream ss(*text);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

void Params::finish() const {
  std::vector<std::string> valid;
  for (const auto& spec : specs_) valid.push_back(spec.name);
  std::sort(valid.begin(), valid.end());
  valid.erase(std::unique(valid.begin(), valid.end()), valid.end());
  for (const auto& [key, value] : values_) {
    if (!std::binary_search(valid.begin(), valid.end(), key)) {
      throw MethodError(path_ + "." + key + ": unknown parameter; valid parameters are " + join(valid));
    }
  }
}

}  // namespace da::methods
