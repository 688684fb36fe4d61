// Small GDAL helpers shared by the inference writers and readers.
#pragma once

#include <string>

namespace da::inference {

// ": <GDAL's last error message>", or "" when there is none.
std::string gdal_message();

// GDAL registered once; while alive, GDAL's errors are kept out of stderr
// (our exceptions carry gdal_message() instead).
class QuietGdal {
 public:
  QuietGdal();
  ~QuietGdal();
  QuietGdal(const QuietGdal&) = delete;
  QuietGdal& operator=(const QuietGdal&) = delete;
};

}  // namespace da::inference
