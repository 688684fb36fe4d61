#include "io/hdf5_util.h"

namespace da::io {
namespace {

// H5Ewalk2 callback: with H5E_WALK_UPWARD the first entry is the innermost
// (where the error started), which names the real cause.
herr_t keep_first_message(unsigned n, const H5E_error2_t* error, void* client) {
  if (n == 0 && error->desc != nullptr) *static_cast<std::string*>(client) = error->desc;
  return 0;
}

}  // namespace

void silence_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string hdf5_error_detail() {
  std::string detail;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_first_message, &detail);
  H5Eclear2(H5E_DEFAULT);
  return detail;
}

std::string hdf5_error_suffix() {
  const std::string detail = hdf5_error_detail();
  return detail.empty() ? "" : " (HDF5: " + detail + ")";
}

std::vector<hsize_t> dataset_shape(hid_t dataset) {
  const hid_t space = H5Dget_space(dataset);
  if (space < 0) return {};
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  H5Sclose(space);
  return dims;
}

std::string shape_to_string(const std::vector<hsize_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string describe_type(hid_t type) {
  const size_t bits = 8 * H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "vlen";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_REFERENCE:
      return "reference";
    default:
      return "unknown type";
  }
}

bool is_unsigned_integer(hid_t type, size_t bytes) {
  return H5Tget_class(type) == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_NONE && H5Tget_size(type) == bytes;
}

bool is_float(hid_t type, size_t bytes) { return H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == bytes; }

}  // namespace da::io
