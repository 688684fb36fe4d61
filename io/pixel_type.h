// The pixel types a tile archive's /images may hold, and their HDF5 types.
#pragma once

#include <hdf5.h>

#include <cstddef>

namespace da::io {

enum class PixelType { kUint8, kUint16, kFloat32 };

// "uint8", "uint16", "float32".
const char* pixel_type_name(PixelType type);
size_t pixel_size(PixelType type);

// The native type to read into or write from memory, and the little-endian
// type a writer stores (what h5py writes on every common platform).
hid_t hdf5_memory_type(PixelType type);
hid_t hdf5_file_type(PixelType type);

}  // namespace da::io
