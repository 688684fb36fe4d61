// The one exception type for everything that is wrong with a tile archive.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "io/one_line.h"

namespace da::io {

// A one-line message that names the file, the object inside it (dataset path
// or attribute) and the tile index where they apply, e.g.
// "data/x.h5: /masks tile 17: value 9 outside [0, 6) and not ignore_index 255".
class ArchiveError : public std::runtime_error {
 public:
  explicit ArchiveError(const std::string& message) : std::runtime_error(one_line(message)) {}
  ArchiveError(const std::string& file, const std::string& object, const std::string& problem)
      : ArchiveError(file + ": " + (object.empty() ? "" : object + ": ") + problem) {}
  ArchiveError(const std::string& file, const std::string& object, int64_t tile, const std::string& problem)
      : ArchiveError(file + ": " + object + " tile " + std::to_string(tile) + ": " + problem) {}
};

}  // namespace da::io
