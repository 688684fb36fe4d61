#include "io/pickle_scan.h"

#include <cstring>

namespace da::io {
namespace {

// How an opcode's argument is laid out (Python's pickletools).
enum class Argument { kNone, kFixed, kLine, kTwoLines, kCounted, kUnknown };

struct Layout {
  Argument argument;
  size_t bytes;  // kFixed: the argument's size; kCounted: the size of its length
  const char* what;
};

Layout layout_of(uint8_t op) {
  switch (op) {
    case '(': case '.': case '0': case '1': case '2': case 'N': case 'R': case 'a': case 'b': case 'd':
    case '}': case 'e': case 'l': case ']': case 'o': case 's': case 't': case ')': case 'u': case 'Q':
    case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8f: case 0x90: case 0x91:
    case 0x92: case 0x93: case 0x94: case 0x97: case 0x98:
      return {Argument::kNone, 0, ""};
    case 'K': case 'h': case 'q': case 0x80: case 0x82: return {Argument::kFixed, 1, ""};
    case 'M': case 0x83: return {Argument::kFixed, 2, ""};
    case 'J': case 'j': case 'r': case 0x84: return {Argument::kFixed, 4, ""};
    case 'G': return {Argument::kFixed, 8, ""};
    case 0x95: return {Argument::kFixed, 8, ""};  // FRAME: its length is checked below
    case 'I': case 'L': case 'S': case 'V': case 'F': case 'g': case 'p': case 'P':
      return {Argument::kLine, 0, ""};
    case 'c': case 'i': return {Argument::kTwoLines, 0, ""};
    case 'C': case 'U': return {Argument::kCounted, 1, "bytes"};
    case 0x8c: return {Argument::kCounted, 1, "string"};
    case 0x8a: return {Argument::kCounted, 1, "long integer"};
    case 'B': case 'T': return {Argument::kCounted, 4, "bytes"};
    case 'X': return {Argument::kCounted, 4, "string"};
    case 0x8b: return {Argument::kCounted, 4, "long integer"};
    case 0x8e: case 0x96: return {Argument::kCounted, 8, "bytes"};
    case 0x8d: return {Argument::kCounted, 8, "string"};
    default: return {Argument::kUnknown, 0, ""};
  }
}

uint64_t little_endian(const uint8_t* p, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(p[i]) << (8 * i);
  return value;
}

std::string too_long(const char* what, uint64_t length, size_t offset, size_t left) {
  return std::string("a ") + what + " of " + std::to_string(length) + " bytes at offset " + std::to_string(offset) +
         ", " + std::to_string(left) + " bytes left";
}

}  // namespace

std::string pickle_length_problem(const uint8_t* data, size_t size) {
  size_t at = 0;
  uint64_t memo_size = 0;  // entries the memo holds so far: picklers number them in order
  while (at < size) {
    const size_t offset = at;
    const uint8_t op = data[at++];
    if (op == '.') return "";
    const Layout layout = layout_of(op);
    const size_t left = size - at;
    switch (layout.argument) {
      case Argument::kUnknown:
        return "";
      case Argument::kNone:
        if (op == 0x94) ++memo_size;  // MEMOIZE
        break;
      case Argument::kFixed:
        if (left < layout.bytes) return "opcode at offset " + std::to_string(offset) + " cut short by the end";
        if (op == 0x95 && little_endian(data + at, 8) > left - 8) {
          return too_long("frame", little_endian(data + at, 8), offset, left - 8);
        }
        if (op == 'q' || op == 'r') {  // BINPUT, LONG_BINPUT: Torch grows its memo to the index
          const uint64_t index = little_endian(data + at, layout.bytes);
          if (index > memo_size) {
            return "memo index " + std::to_string(index) + " at offset " + std::to_string(offset) + ", " +
                   std::to_string(memo_size) + " entries stored";
          }
          if (index == memo_size) ++memo_size;
        }
        at += layout.bytes;
        break;
      case Argument::kLine:
      case Argument::kTwoLines:
        for (int line = 0; line < (layout.argument == Argument::kLine ? 1 : 2); ++line) {
          const void* end = std::memchr(data + at, '\n', size - at);
          if (end == nullptr) return "a line at offset " + std::to_string(offset) + " has no end";
          at = static_cast<size_t>(static_cast<const uint8_t*>(end) - data) + 1;
        }
        break;
      case Argument::kCounted: {
        if (left < layout.bytes) return "opcode at offset " + std::to_string(offset) + " cut short by the end";
        const uint64_t length = little_endian(data + at, layout.bytes);
        if (length > left - layout.bytes) return too_long(layout.what, length, offset, left - layout.bytes);
        at += layout.bytes + static_cast<size_t>(length);
        break;
      }
    }
  }
  return "";
}

}  // namespace da::io
