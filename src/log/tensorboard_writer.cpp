// TensorBoard event-file writer: TFRecord framing of hand-encoded Event
// protobuf messages (see tensorboard_writer.h). Standard library only (plus
// gethostname for the file name).
#include "log/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace da::log {
namespace {

namespace fs = std::filesystem;

constexpr std::uint32_t kCrc32cPolynomial = 0x82F63B78u;  // reflected Castagnoli

constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kCrc32cPolynomial : (c >> 1);
    table[i] = c;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> kCrc32cTable = make_crc32c_table();

// Protobuf wire types.
constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire_type));
}

void put_fixed32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_fixed64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_double(std::string& out, int field, double v) {
  static_assert(sizeof(double) == 8, "IEEE double expected");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  put_tag(out, field, kFixed64);
  put_fixed64(out, bits);
}

void put_float(std::string& out, int field, float v) {
  static_assert(sizeof(float) == 4, "IEEE float expected");
  std::uint32_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  put_tag(out, field, kFixed32);
  put_fixed32(out, bits);
}

double now_seconds() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string name(buf);
  // Keep the file name a single path component.
  for (char& c : name)
    if (c == '/') c = '_';
  return name;
}

// Event{wall_time, file_version} (step 0 left out, as protobuf does).
std::string file_version_event(double wall_time) {
  std::string event;
  put_double(event, 1, wall_time);
  put_bytes(event, 3, "brain.Event:2");
  return event;
}

// Event{wall_time, step, summary{value{tag, simple_value}}}.
std::string scalar_event(double wall_time, std::int64_t step, const std::string& tag, float value) {
  std::string v;  // Summary.Value
  put_bytes(v, 1, tag);
  put_float(v, 2, value);
  std::string summary;  // Summary
  put_bytes(summary, 1, v);
  std::string event;
  put_double(event, 1, wall_time);
  put_tag(event, 2, kVarint);
  put_varint(event, static_cast<std::uint64_t>(step));  // two's complement, as protobuf int64
  put_bytes(event, 5, summary);
  return event;
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < size; ++i) crc = kCrc32cTable[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

std::uint32_t masked_crc32c(const void* data, std::size_t size) {
  const std::uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& log_dir) {
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  if (ec || !fs::is_directory(log_dir))
    throw std::runtime_error("tensorboard: cannot create directory " + log_dir +
                             (ec ? ": " + ec.message() : std::string()));
  const auto seconds = static_cast<long long>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  const std::string base =
      (fs::path(log_dir) / ("events.out.tfevents." + std::to_string(seconds) + "." + host_name())).string();
  path_ = base;
  for (int n = 1; fs::exists(path_); ++n) path_ = base + "." + std::to_string(n);
  out_.open(path_, std::ios::binary | std::ios::out | std::ios::trunc);
  if (!out_)
    throw std::runtime_error("tensorboard: cannot create " + path_ + ": " + std::strerror(errno));
  write_record(file_version_event(now_seconds()));
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  try {
    flush();
  } catch (...) {
    // A destructor must not throw; the error was reported by earlier calls
    // or is lost with the file.
  }
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, std::int64_t step) {
  const std::string event = scalar_event(now_seconds(), step, tag, static_cast<float>(value));
  std::lock_guard<std::mutex> lock(mutex_);
  write_record(event);
}

void TensorBoardWriter::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  out_.flush();
  if (!out_) throw std::runtime_error("tensorboard: cannot write " + path_);
}

// TFRecord: uint64 length, uint32 masked crc(length), data, uint32 masked
// crc(data), all little-endian. Caller holds mutex_ (or is the constructor).
void TensorBoardWriter::write_record(const std::string& data) {
  std::string record;
  record.reserve(data.size() + 16);
  put_fixed64(record, data.size());
  put_fixed32(record, masked_crc32c(record.data(), 8));
  record += data;
  put_fixed32(record, masked_crc32c(data.data(), data.size()));
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
  if (!out_) throw std::runtime_error("tensorboard: cannot write " + path_);
}

}  // namespace da::log
