#include "inference/gdal_util.h"

#include <cpl_error.h>
#include <gdal.h>

#include <mutex>

namespace da::inference {

std::string gdal_message() {
  const char* message = CPLGetLastErrorMsg();
  return message != nullptr && *message != '\0' ? std::string(": ") + message : std::string();
}

QuietGdal::QuietGdal() {
  static std::once_flag registered;
  std::call_once(registered, [] { GDALAllRegister(); });
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
}

QuietGdal::~QuietGdal() { CPLPopErrorHandler(); }

}  // namespace da::inference
