#include "log/json_text.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace da::log {
namespace {

// nlohmann's dump with indent 0: every newline in it is structural (strings
// escape theirs), after an opening bracket, a comma or before a closing one.
std::string dump_indented(const nlohmann::ordered_json& value) {
  return value.dump(0, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

bool holds_containers(const nlohmann::ordered_json& value) {
  return value.is_array() && !value.empty() &&
         std::all_of(value.begin(), value.end(), [](const auto& item) { return item.is_structured(); });
}

}  // namespace

std::string json_line(const nlohmann::ordered_json& value) {
  const std::string text = dump_indented(value);
  std::string line;
  line.reserve(text.size());
  for (const char c : text) {
    if (c != '\n') {
      line += c;
    } else if (!line.empty() && line.back() == ',') {
      line += ' ';
    }
  }
  return line;
}

std::string json_document(const nlohmann::ordered_json& object) {
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : object.items()) {
    out += (first ? "\n  " : ",\n  ") + json_line(nlohmann::ordered_json(key)) + ": ";
    first = false;
    if (!holds_containers(value)) {
      out += json_line(value);
      continue;
    }
    out += "[";
    for (std::size_t i = 0; i < value.size(); ++i) out += (i ? ",\n    " : "\n    ") + json_line(value[i]);
    out += "\n  ]";
  }
  return out + "\n}\n";
}

}  // namespace da::log
