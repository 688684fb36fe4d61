// TensorBoard event files without TensorFlow or protobuf: TFRecord framing
// (length, masked CRC32C of the length, data, masked CRC32C of the data) of
// hand-encoded `tensorflow.Event` protobuf messages. Only the C++ standard
// library is used.
//
// Event: wall_time (1, double), step (2, int64 varint), file_version (3,
// string), summary (5, Summary). Summary: value (1, repeated Value). Value:
// tag (1, string), simple_value (2, float).
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <string>

namespace da::log {

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
// crc32c("123456789") == 0xE3069283. `crc` continues a previous value.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);

// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
std::uint32_t masked_crc32c(const void* data, std::size_t size);

class TensorBoardWriter {
 public:
  // Creates `log_dir` (and parents) and the file
  // log_dir/events.out.tfevents.<unix seconds>.<hostname>, whose first record
  // is the file_version event "brain.Event:2" (should that name already exist,
  // ".1", ".2", ... is appended rather than overwriting it). Throws
  // std::runtime_error when the directory or file cannot be created.
  explicit TensorBoardWriter(const std::string& log_dir);
  ~TensorBoardWriter();  // flushes

  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One event: summary value `tag` = `value` (stored as float simple_value)
  // at `step`, wall_time = now. Throws std::runtime_error on a write error.
  void add_scalar(const std::string& tag, double value, std::int64_t step);

  // Flushes the file to the operating system. Throws std::runtime_error on a
  // write error. add_scalar and flush may be called from several threads.
  void flush();

  // Path of the event file.
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);

  std::string path_;
  std::mutex mutex_;
  std::ofstream out_;
};

}  // namespace da::log
