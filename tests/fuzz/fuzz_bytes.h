// Reading a fuzzer's input as a stream of small values. Every byte string is
// a valid input: a read past the end yields zeros (and empty strings), so
// the fuzzer's mutations always reach the code under test.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace da::fuzz {

class FuzzBytes {
 public:
  FuzzBytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return offset_ >= size_; }
  size_t remaining() const { return size_ - offset_; }

  template <typename T>
  T value() {  // little-endian, zero-padded at the end
    T out{};
    const size_t n = std::min(sizeof(T), remaining());
    std::memcpy(&out, data_ + offset_, n);
    offset_ += n;
    return out;
  }
  // Up to `max` bytes, their count given by one leading byte (mod max + 1).
  std::string short_string(size_t max = 255) { return bytes(value<uint8_t>() % (max + 1)); }
  // `count` bytes, fewer at the end of the input.
  std::string bytes(size_t count) {
    const size_t n = std::min(count, remaining());
    std::string out(reinterpret_cast<const char*>(data_ + offset_), n);
    offset_ += n;
    return out;
  }
  // The rest of the input up to the next `separator` byte (consumed, not returned).
  std::string until(char separator) {
    const auto* begin = data_ + offset_;
    const auto* end = std::find(begin, data_ + size_, static_cast<uint8_t>(separator));
    std::string out(reinterpret_cast<const char*>(begin), static_cast<size_t>(end - begin));
    offset_ = std::min(size_, static_cast<size_t>(end - data_) + 1);
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
};

// Appends values in the layout FuzzBytes reads them (seed corpora).
class FuzzBytesWriter {
 public:
  template <typename T>
  void value(T v) {
    const auto* p = reinterpret_cast<const char*>(&v);
    out_.append(p, sizeof(T));
  }
  void short_string(const std::string& s) {  // longer strings are cut at 255 bytes
    const size_t n = std::min<size_t>(s.size(), 255);
    value<uint8_t>(static_cast<uint8_t>(n));
    out_.append(s, 0, n);
  }
  void bytes(const std::string& s) { out_ += s; }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

}  // namespace da::fuzz
