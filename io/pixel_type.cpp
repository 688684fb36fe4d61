#include "io/pixel_type.h"

namespace da::io {

const char* pixel_type_name(PixelType type) {
  switch (type) {
    case PixelType::kUint8:
      return "uint8";
    case PixelType::kUint16:
      return "uint16";
    case PixelType::kFloat32:
      return "float32";
  }
  return "?";
}

size_t pixel_size(PixelType type) {
  switch (type) {
    case PixelType::kUint8:
      return 1;
    case PixelType::kUint16:
      return 2;
    case PixelType::kFloat32:
      return 4;
  }
  return 1;
}

hid_t hdf5_memory_type(PixelType type) {
  switch (type) {
    case PixelType::kUint8:
      return H5T_NATIVE_UINT8;
    case PixelType::kUint16:
      return H5T_NATIVE_UINT16;
    case PixelType::kFloat32:
      return H5T_NATIVE_FLOAT;
  }
  return H5T_NATIVE_UINT8;
}

hid_t hdf5_file_type(PixelType type) {
  switch (type) {
    case PixelType::kUint8:
      return H5T_STD_U8LE;
    case PixelType::kUint16:
      return H5T_STD_U16LE;
    case PixelType::kFloat32:
      return H5T_IEEE_F32LE;
  }
  return H5T_STD_U8LE;
}

}  // namespace da::io
