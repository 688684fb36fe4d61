#include "options.h"

#include <cerrno>
#include <cstdlib>

namespace da::tiles {

Options::Options(const std::vector<std::string>& args, const std::set<std::string>& valued,
                 const std::set<std::string>& flags) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) {
      positional_.push_back(arg);
      continue;
    }
    const std::string name = arg.substr(2);
    if (flags.count(name)) {
      flags_.insert(name);
    } else if (valued.count(name)) {
      if (i + 1 >= args.size()) throw UsageError("option " + arg + " needs a value");
      values_[name].push_back(args[++i]);
    } else {
      throw UsageError("unknown option " + arg);
    }
  }
}

std::vector<std::string> Options::all(const std::string& name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Options::text(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  if (it->second.size() > 1) throw UsageError("option --" + name + " given more than once");
  return it->second.front();
}

std::string Options::required_text(const std::string& name) const {
  if (!has(name)) throw UsageError("missing required option --" + name);
  return text(name);
}

int64_t Options::integer(const std::string& name, int64_t fallback, int64_t low, int64_t high) const {
  if (!has(name)) return fallback;
  const std::string value = text(name);
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || parsed < low || parsed > high) {
    throw UsageError("option --" + name + " expects an integer in [" + std::to_string(low) + ", " +
                     std::to_string(high) + "], got '" + value + "'");
  }
  return parsed;
}

double Options::number(const std::string& name, double fallback, double low, double high) const {
  if (!has(name)) return fallback;
  const std::string value = text(name);
  char* end = nullptr;
  errno = 0;
  const double parsed = std::strtod(value.c_str(), &end);
  // The negated comparison also rejects NaN.
  if (value.empty() || *end != '\0' || errno != 0 || !(parsed >= low && parsed <= high)) {
    throw UsageError("option --" + name + " expects a number in [" + std::to_string(low) + ", " + std::to_string(high) +
                     "], got '" + value + "'");
  }
  return parsed;
}

std::vector<std::string> split_list(const std::string& text, const std::string& option) {
  std::vector<std::string> items;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) throw UsageError("option --" + option + " has an empty item in '" + text + "'");
    items.push_back(item);
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

}  // namespace da::tiles
