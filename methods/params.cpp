#include "methods/params.h"

#include <algorithm>
#include <cerrno>
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

std::string format(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

Params::Params(std::map<std::string, std::string> values, std::string path)
    : values_(std::move(values)), path_(std::move(path)) {}

const std::string* Params::find(const std::string& key) {
  known_.push_back(key);
  const auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

void Params::fail(const std::string& key, const std::string& what) const {
  throw MethodError(path_ + "." + key + ": " + what);
}

double Params::number(const std::string& key, double fallback, std::optional<double> min, std::optional<double> max) {
  const std::string* text = find(key);
  if (!text) return fallback;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text->c_str(), &end);
  if (text->empty() || *end != '\0' || errno != 0 || !std::isfinite(v)) fail(key, "expected a number, got '" + *text + "'");
  if ((min && v < *min) || (max && v > *max)) {
    std::string range = min ? ">= " + format(*min) : "";
    if (max) range += (range.empty() ? "<= " : ", <= ") + format(*max);
    fail(key, "value " + *text + " is out of range, must be " + range);
  }
  return v;
}

std::optional<double> Params::optional_number(const std::string& key, std::optional<double> min) {
  if (values_.count(key) == 0) {
    known_.push_back(key);
    return std::nullopt;
  }
  return number(key, 0.0, min);
}

std::int64_t Params::integer(const std::string& key, std::int64_t fallback, std::optional<std::int64_t> min) {
  const std::string* text = find(key);
  if (!text) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno != 0) fail(key, "expected an integer, got '" + *text + "'");
  if (min && v < *min) fail(key, "value " + *text + " is out of range, must be >= " + std::to_string(*min));
  return v;
}

bool Params::flag(const std::string& key, bool fallback) {
  const std::string* text = find(key);
  if (!text) return fallback;
  if (*text == "true" || *text == "yes" || *text == "on") return true;
  if (*text == "false" || *text == "no" || *text == "off") return false;
  fail(key, "expected true or false, got '" + *text + "'");
}

std::string Params::text(const std::string& key, const std::string& fallback) {
  const std::string* text = find(key);
  return text ? *text : fallback;
}

std::string Params::choice(const std::string& key, const std::string& fallback,
                           const std::vector<std::string>& allowed) {
  const std::string value = text(key, fallback);
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    fail(key, "unknown value '" + value + "', valid values are " + join(allowed));
  }
  return value;
}

std::vector<std::string> Params::list(const std::string& key, const std::vector<std::string>& fallback) {
  const std::string* text = find(key);
  if (!text) return fallback;
  std::vector<std::string> items;
  std::stringstream ss(*text);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

void Params::finish() const {
  for (const auto& [key, value] : values_) {
    if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
      std::vector<std::string> valid = known_;
      std::sort(valid.begin(), valid.end());
      valid.erase(std::unique(valid.begin(), valid.end()), valid.end());
      throw MethodError(path_ + "." + key + ": unknown parameter; valid parameters are " + join(valid));
    }
  }
}

}  // namespace da::methods
