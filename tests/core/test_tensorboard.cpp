// TensorBoard event files: CRC32C against known vectors, the file read back
// in C++ (both CRCs of every record, the Event messages decoded by hand), and
// an independent Python reader (tests/core/read_tfevents.py) that must agree.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "log/tensorboard_writer.h"
#include "support/process.h"

namespace da {
namespace {

namespace fs = std::filesystem;

// ------------------------------------------------------------ test reader

struct Scalar {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string tag;
  float value = 0;
};

struct EventFile {
  std::string file_version;
  double version_wall_time = 0;
  std::vector<Scalar> scalars;
  int records = 0;
};

std::string read_binary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::uint64_t le(const std::string& s, std::size_t pos, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s.at(pos + i))) << (8 * i);
  return v;
}

std::uint64_t varint(const std::string& s, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    const auto b = static_cast<unsigned char>(s.at(pos++));
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
  throw std::runtime_error("varint too long");
}

struct Field {
  int number = 0;
  int wire = 0;
  std::uint64_t scalar = 0;  // varint, fixed64, fixed32
  std::string bytes;         // length-delimited
};

std::vector<Field> fields(const std::string& msg) {
  std::vector<Field> out;
  std::size_t pos = 0;
  while (pos < msg.size()) {
    const std::uint64_t key = varint(msg, pos);
    Field f;
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    switch (f.wire) {
      case 0: f.scalar = varint(msg, pos); break;
      case 1: f.scalar = le(msg, pos, 8); pos += 8; break;
      case 2: {
        const std::uint64_t n = varint(msg, pos);
        if (pos + n > msg.size()) throw std::runtime_error("truncated field");
        f.bytes = msg.substr(pos, n);
        pos += n;
        break;
      }
      case 5: f.scalar = le(msg, pos, 4); pos += 4; break;
      default: throw std::runtime_error("wire type " + std::to_string(f.wire));
    }
    if (pos > msg.size()) throw std::runtime_error("truncated field");
    out.push_back(std::move(f));
  }
  return out;
}

double as_double(std::uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

float as_float(std::uint64_t bits) {
  const auto b32 = static_cast<std::uint32_t>(bits);
  float f;
  std::memcpy(&f, &b32, 4);
  return f;
}

// Parses the whole file; every record's length CRC and data CRC must match.
EventFile parse_event_file(const std::string& path) {
  const std::string blob = read_binary(path);
  EventFile file;
  std::size_t pos = 0;
  while (pos < blob.size()) {
    if (blob.size() - pos < 12) throw std::runtime_error("truncated header");
    const std::uint64_t length = le(blob, pos, 8);
    EXPECT_EQ(le(blob, pos + 8, 4), log::masked_crc32c(blob.data() + pos, 8)) << "length CRC at " << pos;
    pos += 12;
    if (blob.size() - pos < length + 4) throw std::runtime_error("truncated data");
    const std::string data = blob.substr(pos, length);
    EXPECT_EQ(le(blob, pos + length, 4), log::masked_crc32c(data.data(), data.size())) << "data CRC at " << pos;
    pos += length + 4;
    ++file.records;

    double wall_time = 0;
    std::int64_t step = 0;
    for (const Field& f : fields(data)) {
      if (f.number == 1 && f.wire == 1) wall_time = as_double(f.scalar);
      else if (f.number == 2 && f.wire == 0) step = static_cast<std::int64_t>(f.scalar);
      else if (f.number == 3 && f.wire == 2) {
        file.file_version = f.bytes;
        file.version_wall_time = wall_time;
      } else if (f.number == 5 && f.wire == 2) {
        for (const Field& v : fields(f.bytes)) {  // Summary
          EXPECT_EQ(v.number, 1);
          EXPECT_EQ(v.wire, 2);
          Scalar s;
          s.wall_time = wall_time;
          s.step = step;
          bool has_value = false;
          for (const Field& x : fields(v.bytes)) {  // Summary.Value
            if (x.number == 1 && x.wire == 2) s.tag = x.bytes;
            if (x.number == 2 && x.wire == 5) {
              s.value = as_float(x.scalar);
              has_value = true;
            }
          }
          EXPECT_TRUE(has_value) << s.tag;
          file.scalars.push_back(s);
        }
      } else {
        ADD_FAILURE() << "unexpected Event field " << f.number << " wire " << f.wire;
      }
    }
  }
  return file;
}

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(e.path().string());
  return out;
}

double now_seconds() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

struct Expected {
  std::string tag;
  double value;
  std::int64_t step;
};

const std::vector<Expected> kScalars = {
    {"loss/train", 0.5, 0},
    {"loss/train", 0.25, 1},
    {"lr", 3e-4, 1},
    {"da/lambda", -3.14159265358979, 2},
    {"big step", 1e30, std::int64_t{1} << 40},
    {"negative step", 7.0, -5},
};

// ------------------------------------------------------------ tests

TEST(Crc32c, KnownVectors) {
  const std::string digits = "123456789";
  EXPECT_EQ(log::crc32c(digits.data(), digits.size()), 0xE3069283u);
  const std::vector<unsigned char> zeros(32, 0x00);
  EXPECT_EQ(log::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  // RFC 3720 B.4: 32 bytes of 0xFF, 32 ascending bytes.
  const std::vector<unsigned char> ones(32, 0xFF);
  EXPECT_EQ(log::crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  std::vector<unsigned char> ascending(32);
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(log::crc32c(ascending.data(), ascending.size()), 0x46DD794Eu);
  EXPECT_EQ(log::crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, ContinuesAcrossChunksAndMasks) {
  const std::string digits = "123456789";
  const std::uint32_t head = log::crc32c(digits.data(), 4);
  EXPECT_EQ(log::crc32c(digits.data() + 4, 5, head), 0xE3069283u);
  const std::uint32_t c = 0xE3069283u;
  EXPECT_EQ(log::masked_crc32c(digits.data(), digits.size()), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(TensorBoard, ScalarsReadBackInCpp) {
  const std::string root = test::make_temp_dir("da-tb");
  const std::string dir = root + "/run/tb";  // created by the writer
  const double before = now_seconds();
  std::string path;
  {
    log::TensorBoardWriter w(dir);
    path = w.path();
    for (const auto& s : kScalars) w.add_scalar(s.tag, s.value, s.step);
  }  // destructor flushes
  const double after = now_seconds();

  const auto files = event_files(dir);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], path);
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  const std::string name = fs::path(path).filename().string();
  const std::string prefix = "events.out.tfevents.";
  const std::string stamp = name.substr(prefix.size(), name.find('.', prefix.size()) - prefix.size());
  EXPECT_EQ(name, prefix + stamp + "." + host);
  const double seconds = std::stod(stamp);
  EXPECT_GE(seconds, std::floor(before));
  EXPECT_LE(seconds, after);

  const EventFile f = parse_event_file(path);
  EXPECT_EQ(f.records, 1 + static_cast<int>(kScalars.size()));
  EXPECT_EQ(f.file_version, "brain.Event:2");
  EXPECT_GE(f.version_wall_time, before);
  EXPECT_LE(f.version_wall_time, after);
  ASSERT_EQ(f.scalars.size(), kScalars.size());
  for (std::size_t i = 0; i < kScalars.size(); ++i) {
    SCOPED_TRACE(kScalars[i].tag);
    EXPECT_EQ(f.scalars[i].tag, kScalars[i].tag);
    EXPECT_EQ(f.scalars[i].step, kScalars[i].step);
    EXPECT_EQ(f.scalars[i].value, static_cast<float>(kScalars[i].value));
    EXPECT_GE(f.scalars[i].wall_time, f.version_wall_time);
    EXPECT_LE(f.scalars[i].wall_time, after);
  }
  fs::remove_all(root);
}

TEST(TensorBoard, FlushMakesRecordsVisible) {
  const std::string dir = test::make_temp_dir("da-tb");
  log::TensorBoardWriter w(dir);
  EXPECT_EQ(parse_event_file(w.path()).records, 1);  // file_version written at once
  w.add_scalar("a", 1.0, 1);
  w.add_scalar("a", 2.0, 2);
  w.flush();
  const EventFile f = parse_event_file(w.path());
  EXPECT_EQ(f.records, 3);
  ASSERT_EQ(f.scalars.size(), 2u);
  EXPECT_EQ(f.scalars[1].value, 2.0f);
  fs::remove_all(dir);
}

TEST(TensorBoard, SecondWriterInSameDirectoryGetsItsOwnFile) {
  const std::string dir = test::make_temp_dir("da-tb");
  {
    log::TensorBoardWriter a(dir);
    log::TensorBoardWriter b(dir);
    EXPECT_NE(a.path(), b.path());
    a.add_scalar("x", 1.0, 0);
    b.add_scalar("y", 2.0, 0);
  }
  const auto files = event_files(dir);
  ASSERT_EQ(files.size(), 2u);
  for (const auto& p : files) EXPECT_EQ(parse_event_file(p).scalars.size(), 1u) << p;
  fs::remove_all(dir);
}

TEST(TensorBoard, UncreatableDirectoryThrows) {
  const std::string dir = test::make_temp_dir("da-tb");
  test::write_text(dir + "/file", "not a directory\n");
  EXPECT_THROW(log::TensorBoardWriter(dir + "/file/tb"), std::runtime_error);
  fs::remove_all(dir);
}

// The Python reader (own CRC32C and protobuf decoding; tensorflow's or
// tensorboard's reader as well when importable) sees the same events.
TEST(TensorBoard, PythonReaderAgrees) {
  const std::string dir = test::make_temp_dir("da-tb");
  std::string path;
  {
    log::TensorBoardWriter w(dir);
    path = w.path();
    for (const auto& s : kScalars) w.add_scalar(s.tag, s.value, s.step);
  }
  const EventFile mine = parse_event_file(path);
  const test::ProcessResult r =
      test::run_process(test::python_path(), {test::source_path("tests/core/read_tfevents.py"), path});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  std::istringstream lines(r.out);
  std::string line;
  std::vector<std::string> got;
  while (std::getline(lines, line)) got.push_back(line);
  ASSERT_EQ(got.size(), 1 + kScalars.size()) << r.out;

  {
    std::istringstream in(got[0]);
    std::string kind, wall, version;
    in >> kind >> wall >> version;
    EXPECT_EQ(kind, "file_version");
    EXPECT_EQ(std::strtod(wall.c_str(), nullptr), mine.version_wall_time);
    EXPECT_EQ(version, "brain.Event:2");
  }
  for (std::size_t i = 0; i < kScalars.size(); ++i) {
    SCOPED_TRACE(got[i + 1]);
    std::istringstream in(got[i + 1]);
    std::string kind, wall, value, tag;
    std::int64_t step = 0;
    in >> kind >> wall >> step >> value;
    std::getline(in >> std::ws, tag);  // tags may hold spaces
    EXPECT_EQ(kind, "scalar");
    EXPECT_EQ(std::strtod(wall.c_str(), nullptr), mine.scalars[i].wall_time);
    EXPECT_EQ(step, kScalars[i].step);
    EXPECT_EQ(std::strtod(value.c_str(), nullptr), static_cast<double>(static_cast<float>(kScalars[i].value)));
    EXPECT_EQ(tag, kScalars[i].tag);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace da
