// Error messages quote what they were given (a command-line argument, a
// YAML value, an attribute read from a file); anything can be in it. One
// line on a terminal or in a log stays one line: control characters are
// written as escapes (\n, \t, \r, \xNN). Bytes from 0x80 up (UTF-8) are kept.
#pragma once

#include <string>
#include <string_view>

namespace da::io {

inline std::string one_line(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (byte < 0x20 || byte == 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace da::io
