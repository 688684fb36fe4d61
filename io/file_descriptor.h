// A read-only file descriptor that closes itself, and what identifies the
// file behind a path (so that a file replaced during a run is noticed).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace da::io {

// Device, inode, size and modification time.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  int64_t size = 0;
  int64_t modified_ns = 0;
  bool operator==(const FileIdentity& other) const;
  bool operator!=(const FileIdentity& other) const { return !(*this == other); }
};

class FileDescriptor {
 public:
  FileDescriptor() = default;
  // Opens `path` read-only; valid() is false when it cannot.
  explicit FileDescriptor(const std::string& path);
  ~FileDescriptor();
  FileDescriptor(FileDescriptor&& other) noexcept;
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  bool valid() const { return fd_ >= 0; }
  int get() const { return fd_; }
  // The open file's identity (all zero when fstat fails).
  FileIdentity identity() const;

 private:
  int fd_ = -1;
};

}  // namespace da::io
